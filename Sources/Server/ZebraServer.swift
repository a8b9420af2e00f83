// The API surface: routes, bearer-token auth, health, models, tokenize/detokenize, metrics, and
// completions (CompletionJob). HTTP knows nothing of models; this is where the two meet.
//
// Access policy: with API keys set, every request needs one except those to `publicPaths` (probes and
// scrapes) and CORS preflights (answered by the HTTP layer before routing); unknown paths too, so
// nothing about the API answers without a key, and a route added later is guarded by default.
import Engine
import Foundation
import HTTP
import Jinja
import Kernels
import Logging
import Model
import Tokenizer

public struct ServerConfig: Sendable {
    /// The model id clients send and see in /v1/models.
    public var modelName: String
    /// Accepted bearer tokens; empty: no auth. When set, every path but `ZebraServer.publicPaths` needs
    /// `Authorization: Bearer <one of them>`.
    public var apiKeys: [String]
    public var requestLimits = CompletionRequest.Limits()
    public init(modelName: String, apiKeys: [String] = []) { self.modelName = modelName; self.apiKeys = apiKeys }
}

/// What the server serves once the model is loaded.
public struct LoadedModel: Sendable {
    public let scheduler: Scheduler
    public let tokenizer: Tokenizer
    public let chatTemplate: ChatTemplate
    /// Compiled response schemas and their token masks.
    public let structured: StructuredOutputs
    public var contextLength: Int { scheduler.model.config.contextLength }
    /// `chatTemplate` nil: the model's own (GGUF `tokenizer.chat_template`), else the built-in for its
    /// architecture (also when the model's does not parse: `defaultChatTemplate` says why).
    public init(scheduler: Scheduler, tokenizer: Tokenizer, chatTemplate: ChatTemplate? = nil) {
        self.scheduler = scheduler
        self.tokenizer = tokenizer
        self.chatTemplate = chatTemplate ?? Self.defaultChatTemplate(scheduler: scheduler, tokenizer: tokenizer).template
        structured = StructuredOutputs(tokenizer: tokenizer)
    }

    /// The model's own chat template, or the built-in for its architecture, and a note on any fallback.
    public static func defaultChatTemplate(scheduler: Scheduler, tokenizer: Tokenizer) -> (template: ChatTemplate, note: String?) {
        let file = scheduler.model.weights.file
        let arch = (try? file.string("general.architecture")) ?? ""
        let builtin = ChatTemplate.builtinName(architecture: arch)
        func fallback() -> ChatTemplate {
            try! ChatTemplate(source: ChatTemplate.builtins[builtin]!, origin: "built-in '\(builtin)' (for architecture '\(arch)')", tokenizer: tokenizer)
        }
        guard let source = try? file.string("tokenizer.chat_template") else {
            return (fallback(), "the model has no chat template: using the built-in '\(builtin)' for architecture '\(arch)'")
        }
        do throws(JinjaError) {
            return (try ChatTemplate(source: source, origin: "the model's tokenizer.chat_template", tokenizer: tokenizer), nil)
        } catch {
            return (fallback(), "the model's chat template does not parse (\(error)): using the built-in '\(builtin)'")
        }
    }
}

public final class ZebraServer: @unchecked Sendable {
    public let config: ServerConfig
    let keys: APIKeys
    let logger: Logger
    let created = Int(Date().timeIntervalSince1970)
    let counters = HTTPCounters()
    private let lock = Mutex()
    private var model: LoadedModel?

    public init(config: ServerConfig, logger: Logger) {
        self.config = config
        self.keys = APIKeys(config.apiKeys)
        self.logger = logger
    }

    /// Paths open without a key: health probes and metrics scrapes.
    public static let publicPaths: Set<String> = ["/health", "/metrics"]

    /// Marks the model as loaded: /health turns 200 and completions are accepted.
    public func setModel(_ m: LoadedModel) { lock.withLock { model = m } }
    var loaded: LoadedModel? { lock.withLock { model } }

    public var router: HTTPRouter {
        var r = HTTPRouter()
        if !keys.isEmpty {
            r.gate = { [self] req, w in
                guard !Self.publicPaths.contains(req.path), !keys.accepts(authorization: req.headers["authorization"]) else { return true }
                respond(w, req, APIError(401, "invalid or missing API key (send 'Authorization: Bearer <key>')", type: "authentication_error",
                                         code: "invalid_api_key", headers: [("WWW-Authenticate", "Bearer")]).response, started: now())
                return false
            }
        }
        r.add("GET", "/health", inline: true) { [self] req, w in
            if loaded == nil { respond(w, req, .json(503, "{\"status\":\"loading\"}"), started: now()) }
            else { respond(w, req, .json(200, "{\"status\":\"ok\"}"), started: now()) }
        }
        r.add("GET", "/metrics", inline: true) { [self] req, w in
            let stats = loaded?.scheduler.snapshot ?? SchedulerStats()
            var h = HTTPHeaders(); h.add("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            respond(w, req, HTTPResponse(status: 200, headers: h, body: Array(Metrics.render(stats, http: counters, structured: loaded?.structured.stats ?? .init()).utf8)), started: now())
        }
        r.add("GET", "/v1/models", inline: true) { [self] req, w in
            guarded(req, w) { _ throws(APIError) in
                .json(200, "{\"object\":\"list\",\"data\":[{\"id\":\(jsonString(config.modelName)),\"object\":\"model\",\"created\":\(created),\"owned_by\":\"zebra\"}]}")
            }
        }
        r.add("POST", "/tokenize") { [self] req, w in
            guarded(req, w) { m throws(APIError) in try tokenize(req, m) }
        }
        r.add("POST", "/detokenize") { [self] req, w in
            guarded(req, w) { m throws(APIError) in try detokenize(req, m) }
        }
        for (path, wire) in [("/v1/completions", CompletionJob.Wire.completions), ("/v1/chat/completions", .chat), ("/v1/responses", .responses)] {
            r.add("POST", path) { [self] req, w in
                let t0 = now()
                guard let m = loaded else {
                    respond(w, req, APIError(503, "the model is still loading", type: "server_error", code: "model_loading", headers: [("Retry-After", "5")]).response, started: t0)
                    return
                }
                CompletionJob.start(server: self, model: m, request: req, writer: w, started: t0, wire: wire)
            }
        }
        r.add("POST", "/apply-template") { [self] req, w in
            guarded(req, w) { m throws(APIError) in
                var body = try CompletionRequest(json: req.body, limits: config.requestLimits, chat: true)
                CompletionJob.prepareChat(&body, m)   // exactly the prompt a chat request renders
                let text = try CompletionJob.render(body, m)
                return .json(200, "{\"prompt\":\(jsonString(text))}")
            }
        }
        return r
    }

    /// Loaded-model check, then a synchronous handler; APIError becomes its response.
    private func guarded(_ req: HTTPRequest, _ w: HTTPResponseWriter, _ body: (LoadedModel) throws(APIError) -> HTTPResponse) {
        let t0 = now()
        guard let m = loaded else {
            respond(w, req, APIError(503, "the model is still loading", type: "server_error", code: "model_loading", headers: [("Retry-After", "5")]).response, started: t0)
            return
        }
        do { respond(w, req, try body(m), started: t0) }
        catch { respond(w, req, error.response, started: t0) }
    }

    func respond(_ w: HTTPResponseWriter, _ req: HTTPRequest, _ r: HTTPResponse, started: Double) {
        w.respond(r)
        logRequest(req, status: r.status, started: started)
    }

    func logRequest(_ req: HTTPRequest, status: Int, started: Double, id: String? = nil, promptTokens: Int? = nil,
                    completionTokens: Int? = nil, ttft: Double? = nil) {
        counters.add(status)
        // What was asked and how it went, never what was said: no prompt, message or completion text.
        var md: Logger.Metadata = ["method": "\(req.method)", "path": "\(req.path)", "status": "\(status)",
                                   "request_id": "\(req.id)", "total_ms": "\(Int((now() - started) * 1000))"]
        if let id { md["id"] = "\(id)" }
        if let p = promptTokens { md["prompt_tokens"] = "\(p)" }
        if let c = completionTokens { md["completion_tokens"] = "\(c)" }
        if let t = ttft { md["ttft_ms"] = "\(Int(t * 1000))" }
        // Probes (health checks, scrapes) would drown the log: they go at debug level.
        if req.path == "/health" || req.path == "/metrics" { logger.debug("request", metadata: md) }
        else { logger.info("request", metadata: md) }
    }

    func now() -> Double { monotonicSeconds() }

    // MARK: tokenize / detokenize (llama.cpp server's shapes)

    func jsonObject(_ req: HTTPRequest) throws(APIError) -> [String: Any] {
        guard let o = try? JSONSerialization.jsonObject(with: Data(req.body)) as? [String: Any] else {
            throw APIError(400, "request body must be a JSON object", code: "invalid_json")
        }
        return o
    }

    func tokenize(_ req: HTTPRequest, _ m: LoadedModel) throws(APIError) -> HTTPResponse {
        let o = try jsonObject(req)
        let r = Reader(o)
        guard let content = try r.string("content") else { throw .invalid("content", "'content' is required and must be a string") }
        let add = try r.bool("add_special") ?? false
        let ids = m.tokenizer.encode(content, addSpecial: add, parseSpecial: true)
        return .json(200, "{\"tokens\":[\(ids.map(String.init).joined(separator: ","))]}")
    }

    func detokenize(_ req: HTTPRequest, _ m: LoadedModel) throws(APIError) -> HTTPResponse {
        let o = try jsonObject(req)
        guard let arr = o["tokens"] as? [Any] else { throw .invalid("tokens", "'tokens' is required and must be an array of token ids") }
        var ids: [Int32] = []
        for e in arr {
            guard let n = e as? NSNumber, !Reader.isBool(n), let i = Int(exactly: n.doubleValue), i >= 0, i < m.tokenizer.vocab.count else {
                throw .invalid("tokens", "'tokens' must hold integers in [0, \(m.tokenizer.vocab.count))")
            }
            ids.append(Int32(i))
        }
        return .json(200, "{\"content\":\(jsonString(m.tokenizer.decode(ids, special: true)))}")
    }
}
