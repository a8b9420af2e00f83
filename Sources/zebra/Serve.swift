// `zebra serve`: the HTTP server with the OpenAI API. Every flag can also be set as a ZEBRA_*
// environment variable (the flag wins); `zebra serve --help` lists the defaults.
import ArgumentParser
import Engine
import Foundation
import HTTP
import Kernels
import Logging
import Model
import Server
import Tokenizer

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve the OpenAI completions API over HTTP/1.1 (and HTTPS with --tls-cert/--tls-key).")
    @OptionGroup var options: ModelOptions
    @Option(help: "Listen address, $ZEBRA_HOST (default: '::' = all IPv6 and IPv4 addresses).") var host: String?
    @Option(help: "Listen port, $ZEBRA_PORT (default: 8080).") var port: Int?
    @Option(name: .customLong("model-name"), help: "Model id served in the API, $ZEBRA_MODEL_NAME (default: the GGUF file name without .gguf).") var modelName: String?
    @Option(name: .customLong("api-key"), help: "Require 'Authorization: Bearer KEY' on every path but /health and /metrics, $ZEBRA_API_KEY (default: none).") var apiKey: String?
    @Option(name: .customLong("api-key-file"), help: "Accept each key in this file (one per line; blank lines and # comments skipped), with --api-key if given, $ZEBRA_API_KEY_FILE.") var apiKeyFile: String?
    @Option(name: .customLong("cors-origin"), help: "Let browser pages from this origin (e.g. https://app.example.com, or *) call the API; repeatable, $ZEBRA_CORS_ORIGINS (comma-separated; default: no CORS).") var corsOrigins: [String] = []
    @Option(name: .customLong("kv-budget"), help: "KV cache bytes for all sequences, e.g. 2G or 512M, $ZEBRA_KV_BUDGET (default: half of available memory).") var kvBudget: String?
    @Option(name: .customLong("prefix-cache"), help: "'on' keeps finished requests' KV blocks to reuse for later prompts with the same prefix, 'off' frees them, $ZEBRA_PREFIX_CACHE (default: on).") var prefixCache: String?
    @Option(name: .customLong("chat-template"), help: "Chat template for /v1/chat/completions: a Jinja file, or a built-in (gemma, chatml, llama3), $ZEBRA_CHAT_TEMPLATE (default: the model's own, else the built-in for its architecture).") var chatTemplate: String?
    @Option(name: .customLong("max-queue"), help: "Requests waiting for admission before 429, $ZEBRA_MAX_QUEUE (default: 256).") var maxQueue: Int?
    @Option(name: .customLong("max-running"), help: "Sequences decoding at once, $ZEBRA_MAX_RUNNING (default: 64).") var maxRunning: Int?
    @Option(name: .customLong("max-batch-tokens"), help: "Tokens per forward step, $ZEBRA_MAX_BATCH_TOKENS (default: 512).") var maxBatchTokens: Int?
    @Option(name: .customLong("speculative"), help: "'ngram' lets decoding sequences draft tokens from their own prompt and output and verify them in one step (same text, more tokens per weight pass where text repeats), 'off' decodes one token a step, $ZEBRA_SPECULATIVE (default: ngram).") var speculative: String?
    @Option(name: .customLong("max-tokens-limit"), help: "Largest max_tokens a request may ask for, $ZEBRA_MAX_TOKENS_LIMIT (default: the model's context).") var maxTokensLimit: Int?
    @Option(name: .customLong("max-connections"), help: "Open connections before 503, $ZEBRA_MAX_CONNECTIONS (default: 1024).") var maxConnections: Int?
    @Option(name: .customLong("shutdown-timeout"), help: "Seconds to finish in-flight responses on SIGTERM/SIGINT, $ZEBRA_SHUTDOWN_TIMEOUT (default: 30).") var shutdownTimeout: Double?
    @Option(name: .customLong("tls-cert"), help: "PEM certificate chain for HTTPS, $ZEBRA_TLS_CERT.") var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "PEM private key for HTTPS, $ZEBRA_TLS_KEY.") var tlsKey: String?
    @Option(name: .customLong("log-format"), help: "'text' or 'json', $ZEBRA_LOG_FORMAT (default: text).") var logFormat: String?

    func env(_ k: String) -> String? {
        guard let v = ProcessInfo.processInfo.environment["ZEBRA_" + k], !v.isEmpty else { return nil }
        return v
    }
    func int(_ flag: Int?, _ k: String, _ d: Int) -> Int {
        if let f = flag { return f }
        guard let e = env(k) else { return d }
        guard let v = Int(e) else { fail("error: ZEBRA_\(k)=\(e) is not an integer") }
        return v
    }

    static func parseBytes(_ s: String) -> Int? {
        let units: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40]
        var t = s.uppercased()
        if t.hasSuffix("IB") { t.removeLast(2) } else if t.hasSuffix("B") { t.removeLast() }
        if let u = t.last, let m = units[u], let v = Double(t.dropLast()) { return Int(v * Double(m)) }
        return Int(t)
    }

    static func availableMemory() -> Int {
        guard let s = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8) else { return 8 << 30 }
        for line in s.split(separator: "\n") where line.hasPrefix("MemAvailable:") {
            if let kb = line.split(separator: " ").dropFirst().first.flatMap({ Int($0) }) { return kb * 1024 }
        }
        return 8 << 30
    }

    func run() throws {
        setvbuf(stdout, nil, _IOLBF, 0)
        let format = logFormat ?? env("LOG_FORMAT") ?? "text"
        guard format == "text" || format == "json" else { fail("error: --log-format must be 'text' or 'json'") }
        LoggingSystem.bootstrap { label in LineLogHandler(label: label, json: format == "json") }
        let logger = Logger(label: "zebra")

        var limits = HTTPLimits()
        limits.maxConnections = int(maxConnections, "MAX_CONNECTIONS", 1024)
        let cert = tlsCert ?? env("TLS_CERT"), key = tlsKey ?? env("TLS_KEY")
        guard (cert == nil) == (key == nil) else { fail("error: --tls-cert and --tls-key go together") }
        let path = options.modelPath
        let name = modelName ?? env("MODEL_NAME") ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        let shutdown = shutdownTimeout ?? env("SHUTDOWN_TIMEOUT").flatMap(Double.init) ?? 30
        let origins = corsOrigins.isEmpty
            ? (env("CORS_ORIGINS") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            : corsOrigins
        for o in origins where !CORSPolicy.isValidOrigin(o) {
            fail("error: --cors-origin '\(o)' is not '*' or an origin like https://app.example.com (scheme://host[:port], no path)")
        }
        let httpConfig = HTTPServerConfig(hosts: [host ?? env("HOST") ?? "::"], port: int(port, "PORT", 8080), limits: limits,
                                          shutdownTimeout: shutdown,
                                          tls: cert.map { TLSConfig(certificatePath: $0, privateKeyPath: key!) },
                                          cors: origins.isEmpty ? nil : CORSPolicy(origins: origins))
        var serverConfig = ServerConfig(modelName: name, apiKeys: apiKeys())
        serverConfig.requestLimits.maxTokens = int(maxTokensLimit, "MAX_TOKENS_LIMIT", Int.max)
        let api = ZebraServer(config: serverConfig, logger: logger)
        let http = HTTPServer(config: httpConfig, router: api.router)
        http.shutdownOnSignals()
        do { try http.start() } catch {
            // "::" is unavailable where IPv6 is disabled (some containers): fall back to IPv4.
            guard httpConfig.hosts == ["::"], host == nil, env("HOST") == nil else { fail("error: \(error)") }
            var v4 = httpConfig
            v4.hosts = ["0.0.0.0"]
            let h4 = HTTPServer(config: v4, router: api.router)
            h4.shutdownOnSignals()
            do { try h4.start() } catch { fail("error: \(error)") }
            return serve(h4, api: api, logger: logger, path: path, name: name, tls: cert != nil)
        }
        serve(http, api: api, logger: logger, path: path, name: name, tls: cert != nil)
    }

    /// --api-key and the keys of --api-key-file; a key file that cannot be read or holds no key stops
    /// the server before it listens, rather than letting it start open to everyone.
    func apiKeys() -> [String] {
        var keys: [String] = []
        if let k = apiKey ?? env("API_KEY") {
            guard !k.trimmingCharacters(in: .whitespaces).isEmpty else { fail("error: --api-key is empty") }
            keys.append(k)
        }
        if let file = apiKeyFile ?? env("API_KEY_FILE") {
            do { keys += try APIKeys.load(path: file) } catch { fail("error: --api-key-file: \(error)") }
        }
        return keys
    }

    func serve(_ http: HTTPServer, api: ZebraServer, logger: Logger, path: String, name: String, tls: Bool) {
        let cors = http.config.cors.map { $0.origins.sorted().joined(separator: ",") } ?? "off"
        logger.info("listening", metadata: ["address": "\(http.config.hosts.joined(separator: ","))", "port": "\(http.port)",
                                            "scheme": "\(tls ? "https" : "http")",
                                            "auth": "\(api.config.apiKeys.isEmpty ? "off" : "\(api.config.apiKeys.count) key(s)")",
                                            "cors": "\(cors)"])
        let m = Loaded(options)
        var sc = SchedulerConfig()
        sc.maxQueue = int(maxQueue, "MAX_QUEUE", 256)
        sc.maxRunning = int(maxRunning, "MAX_RUNNING", 64)
        sc.maxBatchTokens = int(maxBatchTokens, "MAX_BATCH_TOKENS", 512)
        sc.kvCacheType = m.kvCacheType
        if let b = kvBudget ?? env("KV_BUDGET") {
            guard let v = Self.parseBytes(b), v > 0 else { fail("error: --kv-budget '\(b)' is not a size like 2G or 512M") }
            sc.kvBudgetBytes = v
        } else {
            sc.kvBudgetBytes = max(256 << 20, Self.availableMemory() / 2)
        }
        switch prefixCache ?? env("PREFIX_CACHE") ?? "on" {
        case "on": sc.prefixCaching = true
        case "off": sc.prefixCaching = false
        case let v: fail("error: --prefix-cache '\(v)' must be 'on' or 'off'")
        }
        let spec = speculative ?? env("SPECULATIVE") ?? "ngram"
        guard let mode = SpeculativeMode(rawValue: spec) else { fail("error: --speculative '\(spec)' must be 'ngram' or 'off'") }
        sc.speculation.mode = mode
        let scheduler = Scheduler(model: m.model, tokenizer: m.tokenizer, config: sc)
        let template: ChatTemplate
        if let t = chatTemplate ?? env("CHAT_TEMPLATE") {
            do {
                if let builtin = ChatTemplate.builtins[t] {
                    template = try ChatTemplate(source: builtin, origin: "built-in '\(t)'", tokenizer: m.tokenizer)
                } else {
                    guard let source = try? String(contentsOfFile: t, encoding: .utf8) else {
                        fail("error: --chat-template '\(t)' is neither a readable file nor a built-in (\(ChatTemplate.builtins.keys.sorted().joined(separator: ", ")))")
                    }
                    template = try ChatTemplate(source: source, origin: "file \(t)", tokenizer: m.tokenizer)
                }
            } catch {
                fail("error: --chat-template '\(t)': \(error)")
            }
        } else {
            let (t, note) = LoadedModel.defaultChatTemplate(scheduler: scheduler, tokenizer: m.tokenizer)
            if let note { logger.info("chat template", metadata: ["note": "\(note)"]) }
            template = t
        }
        let loaded = LoadedModel(scheduler: scheduler, tokenizer: m.tokenizer, chatTemplate: template)
        loaded.structured.warm()
        api.setModel(loaded)
        let c = m.model.config
        logger.info("model loaded", metadata: [
            "model": "\(name)", "path": "\(path)", "layers": "\(c.slidingLayerCount) sliding + \(c.globalLayerCount) global",
            "context": "\(c.contextLength)", "kv_budget_bytes": "\(sc.kvBudgetBytes)", "kv_cache": "\(sc.kvCacheType.rawValue)",
            "chat_template": "\(template.origin)",
            "prefix_cache": "\(sc.prefixCaching ? "on" : "off") (blocks of \(sc.kvBlockTokens) tokens)", "speculative": "\(mode.rawValue)", "threads": "\(m.model.pool.threadCount)",
            "kernels": "\(kernelPath)", "decode_gemm": "\(m.model.matmul.rowsGemmDescription)", "packed_weights": "\(m.model.weights.packedDescription)", "blas_core": "\(BLASCore.name)"])
        http.wait()
        scheduler.stop()
        logger.info("stopped")
    }
}

/// One line per log event on stderr, as text or JSON.
struct LineLogHandler: LogHandler {
    /// ISO 8601 UTC with milliseconds, without allocating a formatter per line.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var tm = tm()
        gmtime_r(&t, &tm)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(tm.tm_year) + 1900, Int(tm.tm_mon) + 1, Int(tm.tm_mday),
                      Int(tm.tm_hour), Int(tm.tm_min), Int(tm.tm_sec), ts.tv_nsec / 1_000_000)
    }

    let label: String
    let json: Bool
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata md: Logger.Metadata?, source: String, file: String, function: String, line: UInt) {
        let all = metadata.merging(md ?? [:]) { $1 }
        let ts = Self.timestamp()
        var s: String
        if json {
            var o: [String: String] = ["ts": ts, "level": "\(level)", "msg": "\(message)"]
            for (k, v) in all { o[k] = "\(v)" }
            s = String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
        } else {
            s = "\(ts) \(level) \(message)"
            for (k, v) in all.sorted(by: { $0.key < $1.key }) { s += " \(k)=\(v)" }
        }
        Console.standardError.write(s + "\n")
    }
}
