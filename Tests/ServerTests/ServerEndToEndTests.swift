// The real server on an ephemeral loopback port, over TCP: the synthetic model for speed, Gemma 3 for
// the contract, and the official `openai` Python package as a client.
import Engine
import Foundation
import HTTP
import Kernels
import Logging
import Model
import Testing
import TestSupport
import Tokenizer
@testable import Server

struct Running {
    let http: HTTPServer
    let api: ZebraServer
    let scheduler: Scheduler?
    var port: Int { http.port }
    func stop() { http.shutdown(timeout: 1); http.wait(); scheduler?.stop() }
}

func startAPI(model path: String? = nil, apiKeys: [String] = [], cors: CORSPolicy? = nil, loaded: Bool = true,
              logger: Logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }),
              configure: (inout SchedulerConfig) -> Void = { _ in }) throws -> Running {
    let api = ZebraServer(config: ServerConfig(modelName: "test-model", apiKeys: apiKeys), logger: logger)
    let http = HTTPServer(config: HTTPServerConfig(hosts: ["127.0.0.1"], port: 0, cors: cors), router: api.router)
    try http.start()
    var scheduler: Scheduler?
    if loaded {
        let model = try Transformer(path: path ?? SyntheticModel.write(context: 512), pool: KernelPool(threads: 2))
        var c = SchedulerConfig()
        c.kvBudgetBytes = 256 << 20
        configure(&c)
        scheduler = Scheduler(model: model, tokenizer: try Tokenizer(file: model.weights.file), config: c)
        api.setModel(LoadedModel(scheduler: scheduler!, tokenizer: try Tokenizer(file: model.weights.file)))
    }
    return Running(http: http, api: api, scheduler: scheduler)
}

func object(_ r: TestClient.Response?) -> [String: Any] {
    (r.flatMap { try? JSONSerialization.jsonObject(with: Data($0.body)) as? [String: Any] }) ?? [:]
}

/// The `data:` payloads of an SSE body, in order.
func events(_ r: TestClient.Response?) -> [String] {
    (r?.text ?? "").components(separatedBy: "\n\n").compactMap { block in
        let lines = block.split(separator: "\n").filter { $0.hasPrefix("data: ") }
        return lines.isEmpty ? nil : lines.map { String($0.dropFirst(6)) }.joined(separator: "\n")
    }
}

@Suite(.serialized) struct ServerEndToEndTests {
    @Test func nonStreamingCompletionShape() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let r = c.request("POST", "/v1/completions", json: #"{"prompt":"the","max_tokens":5,"temperature":0,"ignore_eos":true,"logprobs":2}"#)
        #expect(r?.status == 200)
        let o = object(r)
        #expect((o["id"] as? String)?.hasPrefix("cmpl-") == true && o["object"] as? String == "text_completion")
        #expect(o["model"] as? String == "test-model" && o["created"] is Int)
        let ch = (o["choices"] as? [[String: Any]])?.first ?? [:]
        #expect(ch["index"] as? Int == 0 && ch["finish_reason"] as? String == "length" && ch["text"] is String)
        let lp = ch["logprobs"] as? [String: Any] ?? [:]
        #expect((lp["tokens"] as? [String])?.count == 5 && (lp["token_logprobs"] as? [Double])?.count == 5)
        #expect((lp["top_logprobs"] as? [[String: Double]])?.first?.count == 2 && (lp["text_offset"] as? [Int])?.first == 0)
        let u = (o["usage"] as? [String: Any] ?? [:]).compactMapValues { $0 as? Int }
        #expect(u["completion_tokens"] == 5 && (u["prompt_tokens"] ?? 0) > 0 && u["total_tokens"] == (u["prompt_tokens"] ?? 0) + 5)
        #expect(((o["usage"] as? [String: Any])?["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int == 0)
    }

    /// echo with logprobs scores the prompt (the legacy way to score text): the prompt's tokens come
    /// first, the first with null log-probability; max_tokens 0 scores only; streaming sends the echo
    /// with its scores in the first chunk; the scores are the same either way.
    @Test func echoWithLogprobsScoresThePrompt() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let prompt = [2, 260, 270, 265, 280, 290, 261]
        func logprobs(_ ch: [String: Any]) -> (tokens: [String], lps: [Any], tops: [Any], offsets: [Int]) {
            let lp = ch["logprobs"] as? [String: Any] ?? [:]
            return (lp["tokens"] as? [String] ?? [], lp["token_logprobs"] as? [Any] ?? [], lp["top_logprobs"] as? [Any] ?? [], lp["text_offset"] as? [Int] ?? [])
        }
        var scored: [Double] = []
        for maxTokens in [0, 3] {
            let o = object(c.request("POST", "/v1/completions", json: #"{"prompt":\#(prompt),"max_tokens":\#(maxTokens),"temperature":0,"ignore_eos":true,"echo":true,"logprobs":2}"#))
            let ch = (o["choices"] as? [[String: Any]])?.first ?? [:]
            let (tokens, lps, tops, offsets) = logprobs(ch)
            #expect(tokens.count == prompt.count + maxTokens && lps.count == tokens.count && tops.count == tokens.count)
            #expect(lps.first is NSNull && tops.first is NSNull)
            let values = lps.dropFirst().compactMap { $0 as? Double }
            #expect(values.count == tokens.count - 1 && values.allSatisfy { $0 <= 0 })
            #expect((tops.last as? [String: Double])?.count == 2)
            #expect(offsets == tokens.indices.map { i in tokens[..<i].reduce(0) { $0 + $1.utf16.count } })
            #expect((ch["text"] as? String) == tokens.joined())
            #expect((o["usage"] as? [String: Any])?["completion_tokens"] as? Int == maxTokens)
            if scored.isEmpty { scored = Array(values.prefix(prompt.count - 1)) } else { #expect(Array(values.prefix(prompt.count - 1)) == scored) }
        }
        let r = c.request("POST", "/v1/completions", json: #"{"prompt":\#(prompt),"max_tokens":2,"temperature":0,"ignore_eos":true,"echo":true,"logprobs":1,"stream":true}"#)
        let chunks = events(r).dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let first = (chunks.first?["choices"] as? [[String: Any]])?.first ?? [:]
        let (tokens, lps, _, _) = logprobs(first)
        #expect(tokens.count == prompt.count && lps.first is NSNull && Array(lps.dropFirst().compactMap { $0 as? Double }) == scored)
    }

    @Test func streamingAsServerSentEvents() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let r = c.request("POST", "/v1/completions", json: #"{"prompt":"the","max_tokens":6,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true},"n":2}"#)
        #expect(r?.headers["content-type"] == "text/event-stream")
        let ev = events(r)
        #expect(ev.last == "[DONE]")
        let chunks = ev.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let usage = chunks.last!
        #expect((usage["choices"] as? [Any])?.isEmpty == true && (usage["usage"] as? [String: Any])?["completion_tokens"] as? Int == 12)
        var text = ["", ""], finishes = [0, 0]
        for ch in chunks.dropLast() {
            #expect(ch["object"] as? String == "text_completion")
            for c in ch["choices"] as! [[String: Any]] {
                let i = c["index"] as! Int
                #expect(finishes[i] == 0, "nothing after a choice's finish_reason")
                text[i] += c["text"] as! String
                if c["finish_reason"] as? String != nil { finishes[i] += 1 }
            }
        }
        #expect(finishes == [1, 1])
        let plain = object(c.request("POST", "/v1/completions", json: #"{"prompt":"the","max_tokens":6,"temperature":0,"ignore_eos":true}"#))
        #expect(text[0] == ((plain["choices"] as! [[String: Any]])[0]["text"] as! String) && text[0] == text[1])
    }

    @Test func stopStringsCutTheText() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let full = (object(c.request("POST", "/v1/completions", json: #"{"prompt":"the","max_tokens":30,"temperature":0,"ignore_eos":true}"#))["choices"] as! [[String: Any]])[0]["text"] as! String
        #expect(full.count > 10)
        let stop = String(Array(full)[6..<8])
        let cut = String(full[..<full.range(of: stop)!.lowerBound])
        for stream in [false, true] {
            let body = #"{"prompt":"the","max_tokens":30,"temperature":0,"ignore_eos":true,"stop":[\#(jsonString(stop))],"stream":\#(stream)}"#
            let r = c.request("POST", "/v1/completions", json: body)
            if stream {
                let chunks = events(r).dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                let text = chunks.flatMap { $0["choices"] as! [[String: Any]] }.map { $0["text"] as! String }.joined()
                #expect(text == cut)
                #expect(chunks.last.flatMap { ($0["choices"] as! [[String: Any]]).first?["finish_reason"] as? String } == "stop")
            } else {
                let ch = (object(r)["choices"] as! [[String: Any]])[0]
                #expect(ch["text"] as? String == cut && ch["finish_reason"] as? String == "stop")
            }
        }
    }

    @Test func sixteenParallelStreamsAllComplete() throws {
        let s = try startAPI(); defer { s.stop() }
        let solo = (object(try TestClient(port: s.port).request("POST", "/v1/completions", json: #"{"prompt":"th","max_tokens":12,"temperature":0,"ignore_eos":true}"#))["choices"] as! [[String: Any]])[0]["text"] as! String
        let results = NSMutableArray()
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            guard let c = try? TestClient(port: s.port, timeout: 30) else { return }
            let r = c.request("POST", "/v1/completions", json: #"{"prompt":"th","max_tokens":12,"temperature":0,"ignore_eos":true,"stream":true}"#)
            let text = events(r).dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                .flatMap { $0["choices"] as! [[String: Any]] }.map { $0["text"] as! String }.joined()
            objc_sync(results) { results.add((events(r).last ?? "", text)) }
        }
        #expect(results.count == 16)
        var matched = 0
        for case let (last, text) as (String, String) in results {
            matched += 1
            #expect(last == "[DONE]")
            #expect(text == solo)
        }
        #expect(matched == 16, "every stream's result was checked")
    }

    @Test func disconnectCancelsAndFreesKV() throws {
        let s = try startAPI(); defer { s.stop() }
        do {
            let c = try TestClient(port: s.port)
            let body = #"{"prompt":"the","max_tokens":400,"stream":true,"ignore_eos":true,"n":1}"#
            c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
            while !String(decoding: c.buffer, as: UTF8.self).contains("\"text\"") { guard c.fill() else { break } }
            #expect(String(decoding: c.buffer, as: UTF8.self).hasPrefix("HTTP/1.1 200"), "the stream started")
        }
        var running = 1
        for _ in 0..<200 where running > 0 { usleep(10_000); running = s.scheduler!.snapshot.running }
        #expect(running == 0 && s.scheduler!.snapshot.kvLive == 0)
        // Stopped by the disconnect, not by reaching max_tokens (400) on its own within the wait.
        let generated = s.scheduler!.snapshot.generatedTokens
        #expect(generated < 200, "\(generated) tokens generated after the client went away")
        // The request still got its log line, as a 499 (client closed request), once.
        let metrics = try TestClient(port: s.port).request("GET", "/metrics")?.text ?? ""
        #expect(metrics.contains("zebra_http_requests_total{status=\"499\"} 1"), "\(metrics.split(separator: "\n").filter { $0.contains("http_requests") })")
    }

    @Test func errorStatuses() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        func err(_ r: TestClient.Response?) -> [String: Any] { object(r)["error"] as? [String: Any] ?? [:] }
        var r = c.request("POST", "/v1/completions", json: "{nope")
        #expect(r?.status == 400 && err(r)["type"] as? String == "invalid_request_error")
        r = c.request("POST", "/v1/completions", json: #"{"prompt":"x","temperature":"hot"}"#)
        #expect(r?.status == 400 && err(r)["param"] as? String == "temperature" && (err(r)["message"] as? String)?.contains("temperature") == true)
        r = c.request("POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":600}"#)
        #expect(r?.status == 400 && err(r)["code"] as? String == "context_length_exceeded")
        #expect((err(r)["message"] as? String)?.contains("600 in max_tokens") == true && (err(r)["message"] as? String)?.contains("in the prompt") == true)
        r = c.request("POST", "/v1/completions", json: #"{"prompt":"x","model":"gpt-9"}"#)
        #expect(r?.status == 404 && err(r)["code"] as? String == "model_not_found")
        #expect(c.request("GET", "/v1/nothing")?.status == 404)
        #expect(c.request("GET", "/v1/completions")?.status == 405)
        // Overload: a full queue answers 429 with Retry-After (the scheduler tests cover filling it up).
        let full = try startAPI { $0.maxQueue = 0 }
        defer { full.stop() }
        r = try TestClient(port: full.port).request("POST", "/v1/completions", json: #"{"prompt":"x"}"#)
        #expect(r?.status == 429 && r?.headers["retry-after"] == "1" && err(r)["type"] as? String == "rate_limit_error")
        // ...streaming too, on every endpoint: the refusal comes before the stream opens, so it is a plain
        // 429 with Retry-After, not a 200 event stream that ends in an error event.
        for (path, body) in [("/v1/completions", #"{"prompt":"x","stream":true}"#),
                             ("/v1/completions", #"{"prompt":["x","y"],"stream":true}"#),
                             ("/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}],"stream":true}"#),
                             ("/v1/responses", #"{"input":"x","stream":true}"#)] {
            r = try TestClient(port: full.port).request("POST", path, json: body)
            #expect(r?.status == 429 && r?.headers["retry-after"] == "1" && err(r)["code"] as? String == "overloaded", "\(path) \(body)")
            #expect(r?.headers["content-type"]?.hasPrefix("application/json") == true)
        }
        // A streamed request the whole KV budget could never hold: a 400 before any stream.
        let small = try startAPI { $0.kvBudgetBytes = 64 << 10 }
        defer { small.stop() }
        r = try TestClient(port: small.port).request("POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":500,"stream":true}"#)
        #expect(r?.status == 400 && err(r)["code"] as? String == "context_length_exceeded")
    }

    @Test func authHealthModelsTokenizeMetrics() throws {
        let s = try startAPI(apiKeys: ["sekret"]); defer { s.stop() }
        let c = try TestClient(port: s.port)
        #expect(c.request("GET", "/health")?.status == 200)
        #expect(c.request("GET", "/metrics")?.status == 200)
        let denied = c.request("POST", "/v1/completions", json: #"{"prompt":"x"}"#)
        #expect(denied?.status == 401 && (object(denied)["error"] as? [String: Any])?["type"] as? String == "authentication_error")
        #expect(c.request("GET", "/v1/models", headers: ["Authorization: Bearer wrong"])?.status == 401)
        #expect(c.request("POST", "/tokenize", json: #"{"content":"x"}"#)?.status == 401)
        let auth = ["Authorization: Bearer sekret"]
        let models = object(c.request("GET", "/v1/models", headers: auth))
        #expect(((models["data"] as? [[String: Any]])?.first?["id"]) as? String == "test-model")
        let tok = object(c.request("POST", "/tokenize", json: #"{"content":"the a","add_special":true}"#, headers: auth))
        let ids = tok["tokens"] as? [Int] ?? []
        #expect(ids.first == 2)
        let detok = object(c.request("POST", "/detokenize", json: "{\"tokens\":\(ids.dropFirst())}", headers: auth))
        #expect(detok["content"] as? String == "the a")
        // Special tokens round-trip as their text (llama-server's detokenizer), the BOS included.
        let turn = object(c.request("POST", "/tokenize", json: #"{"content":"<start_of_turn>user\nthe a","add_special":true}"#, headers: auth))["tokens"] as? [Int] ?? []
        let back = object(c.request("POST", "/detokenize", json: "{\"tokens\":\(turn)}", headers: auth))
        #expect(turn.count > 2 && back["content"] as? String == "<bos><start_of_turn>user\nthe a", "\(turn) \(back)")
        #expect(c.request("POST", "/tokenize", json: #"{"content":5}"#, headers: auth)?.status == 400)
        _ = c.request("POST", "/v1/completions", json: #"{"prompt":"x","max_tokens":3,"ignore_eos":true}"#, headers: auth)
        // Stats are published at the end of each engine step, just after the response went out.
        var m = ""
        for _ in 0..<100 {
            m = c.request("GET", "/metrics")?.text ?? ""
            if m.contains("zebra_generated_tokens_total 3") { break }
            usleep(10_000)
        }
        for name in ["zebra_requests_running", "zebra_requests_waiting", "zebra_prompt_tokens_total", "zebra_generated_tokens_total",
                     "zebra_time_to_first_token_seconds_bucket", "zebra_inter_token_latency_seconds_count", "zebra_batch_size_bucket",
                     "zebra_kv_cache_bytes{kind=\"sliding\"}", "zebra_kv_cache_bytes{kind=\"global\"}", "zebra_kv_cache_capacity_bytes"] {
            #expect(m.contains(name), "\(name)")
        }
        #expect(m.contains("zebra_generated_tokens_total 3"))
    }

    /// A follow-up on the same long prompt reports the tokens it took from the prefix cache (OpenAI's
    /// usage.prompt_tokens_details.cached_tokens, streamed or not), /metrics counts them under our names
    /// and vLLM's, and cache_salt keeps requests apart.
    @Test func prefixCacheHitsAreReported() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let doc = String(repeating: "the a ", count: 40)
        func usage(_ prompt: String, stream: Bool = false, salt: String? = nil) -> [String: Any] {
            var body: [String: Any] = ["prompt": prompt, "max_tokens": 2, "temperature": 0, "ignore_eos": true, "stream": stream]
            if stream { body["stream_options"] = ["include_usage": true] }
            if let salt { body["cache_salt"] = salt }
            let json = String(decoding: try! JSONSerialization.data(withJSONObject: body), as: UTF8.self)
            let r = c.request("POST", "/v1/completions", json: json)
            #expect(r?.status == 200, "\(r?.text ?? "")")
            if !stream { return object(r)["usage"] as? [String: Any] ?? [:] }
            let last = events(r).dropLast().last.flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            return last?["usage"] as? [String: Any] ?? [:]
        }
        func cached(_ u: [String: Any]) -> Int? { (u["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int }
        let first = usage(doc + "question one")
        #expect(cached(first) == 0)
        let promptTokens = first["prompt_tokens"] as? Int ?? 0
        let second = usage(doc + "question two", stream: true)
        let hit = cached(second) ?? 0
        #expect(hit > 0 && hit % 64 == 0 && hit < promptTokens, "cached \(hit) of \(promptTokens)")
        #expect(cached(usage(doc + "question two", salt: "tenant")) == 0)
        #expect(c.request("POST", "/v1/completions", json: #"{"prompt":"x","cache_salt":""}"#)?.status == 400)
        var m = ""
        for _ in 0..<100 {
            m = c.request("GET", "/metrics")?.text ?? ""
            if m.contains("zebra_prefix_cache_hits_tokens_total \(hit)") { break }
            usleep(10_000)
        }
        #expect(m.contains("zebra_prefix_cache_hits_tokens_total \(hit)") && m.contains("vllm:prefix_cache_hits_total \(hit)"))
        for name in ["zebra_prefix_cache_queries_tokens_total", "zebra_prefix_cache_evictions_total", "zebra_kv_cache_cached_bytes",
                     "vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc",
                     "vllm:cache_config_info{block_size=\"64\",cache_dtype=\"f16\",enable_prefix_caching=\"true\"} 1"] {
            #expect(m.contains(name), "\(name)")
        }
    }

    /// /v1/chat/completions on the synthetic model (a gemma3 GGUF without a template: the built-in
    /// Gemma turns): OpenAI's shapes plain and streamed, the same tokens as the rendered prompt through
    /// /v1/completions, and template or message errors as 400s naming their cause.
    @Test func chatCompletionsShapesAndErrors() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let msgs = #"[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"the a"}]}]"#
        let plain = object(c.request("POST", "/v1/chat/completions", json: #"{"messages":\#(msgs),"max_tokens":6,"temperature":0,"ignore_eos":true}"#))
        #expect((plain["id"] as? String)?.hasPrefix("chatcmpl-") == true && plain["object"] as? String == "chat.completion")
        let ch = (plain["choices"] as? [[String: Any]])?.first ?? [:]
        let msg = ch["message"] as? [String: Any] ?? [:]
        #expect(msg["role"] as? String == "assistant" && ch["finish_reason"] as? String == "length")
        let text = msg["content"] as? String ?? "<missing>"
        #expect((plain["usage"] as? [String: Any])?["completion_tokens"] as? Int == 6)
        // The prompt the template makes, through the completions endpoint as token ids: the same answer.
        let prompt = object(c.request("POST", "/apply-template", json: #"{"messages":\#(msgs)}"#))["prompt"] as? String ?? ""
        #expect(prompt.hasSuffix("<start_of_turn>user\nBe brief.\n\nthe a<end_of_turn>\n<start_of_turn>model\n"), "\(prompt)")
        let promptJSON = String(decoding: try JSONSerialization.data(withJSONObject: ["content": prompt, "add_special": false]), as: UTF8.self)
        let ids = object(c.request("POST", "/tokenize", json: promptJSON))["tokens"] as? [Int] ?? []
        let viaCompletions = object(c.request("POST", "/v1/completions", json: #"{"prompt":\#(ids),"max_tokens":6,"temperature":0,"ignore_eos":true}"#))
        #expect(((viaCompletions["choices"] as? [[String: Any]])?.first?["text"] as? String) == text)
        // Streamed: the role first, then content deltas, a finish, the usage, [DONE].
        let r = c.request("POST", "/v1/chat/completions", json: #"{"messages":\#(msgs),"max_tokens":6,"temperature":0,"ignore_eos":true,"stream":true,"stream_options":{"include_usage":true}}"#)
        let evs = events(r)
        #expect(evs.last == "[DONE]")
        let chunks = evs.dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(chunks.allSatisfy { $0["object"] as? String == "chat.completion.chunk" })
        let deltas = chunks.compactMap { ($0["choices"] as? [[String: Any]])?.first?["delta"] as? [String: Any] }
        #expect(deltas.first?["role"] as? String == "assistant")
        #expect(deltas.compactMap { $0["content"] as? String }.joined() == text)
        #expect(((chunks.last?["usage"] as? [String: Any])?["completion_tokens"] as? Int) == 6)
        // Errors: the template's own (Gemma's roles must alternate), then the messages' shapes.
        let bad = c.request("POST", "/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"a"},{"role":"user","content":"b"}]}"#)
        let err = object(bad)["error"] as? [String: Any] ?? [:]
        #expect(bad?.status == 400 && err["code"] as? String == "chat_template_error")
        #expect((err["message"] as? String)?.contains("Conversation roles must alternate") == true)
        for (body, param) in [(#"{"messages":[]}"#, "messages"), (#"{"max_tokens":3}"#, "messages"),
                              (#"{"messages":[{"role":"robot","content":"x"}]}"#, "messages[0].role"),
                              (#"{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"x"}}]}]}"#, "messages[0].content[0]"),
                              (#"{"messages":[{"role":"user","content":"x"}],"tool_choice":"required"}"#, "tool_choice"),
                              (#"{"messages":[{"role":"user","content":"x"}],"logprobs":true,"top_logprobs":30}"#, "top_logprobs")] {
            let r = c.request("POST", "/v1/chat/completions", json: body)
            #expect(r?.status == 400 && (object(r)["error"] as? [String: Any])?["param"] as? String == param, "\(body)")
        }
    }

    /// /v1/responses (stateless): the chat path under the Responses wire format, plain and as named
    /// events; what it cannot honour is a 400 naming the field.
    @Test func responsesShapesAndRefusals() throws {
        let s = try startAPI(); defer { s.stop() }
        let c = try TestClient(port: s.port)
        let input = #""input":[{"role":"user","content":[{"type":"input_text","text":"the a"}]}],"instructions":"Be brief.""#
        let chat = object(c.request("POST", "/v1/chat/completions", json: #"{"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"the a"}],"max_tokens":5,"temperature":0,"ignore_eos":true}"#))
        let chatText = (((chat["choices"] as? [[String: Any]])?.first?["message"] as? [String: Any])?["content"] as? String) ?? "<missing>"
        let o = object(c.request("POST", "/v1/responses", json: "{\(input),\"max_output_tokens\":5,\"temperature\":0}"))
        #expect((o["id"] as? String)?.hasPrefix("resp_") == true && o["object"] as? String == "response")
        let item = (o["output"] as? [[String: Any]])?.first ?? [:]
        let part = (item["content"] as? [[String: Any]])?.first ?? [:]
        #expect(item["type"] as? String == "message" && item["role"] as? String == "assistant" && part["type"] as? String == "output_text")
        #expect(part["text"] as? String == chatText)
        #expect((o["usage"] as? [String: Any])?["output_tokens"] as? Int == 5)
        #expect(o["status"] as? String == "incomplete" || o["status"] as? String == "completed")
        let r = c.request("POST", "/v1/responses", json: "{\(input),\"max_output_tokens\":5,\"temperature\":0,\"stream\":true}")
        let names = (r?.text ?? "").split(separator: "\n").filter { $0.hasPrefix("event: ") }.map { String($0.dropFirst(7)) }
        #expect(names.first == "response.created" && names.contains("response.output_text.delta")
                && (names.last == "response.completed" || names.last == "response.incomplete"), "\(names)")
        let deltas = events(r).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .filter { $0["type"] as? String == "response.output_text.delta" }.compactMap { $0["delta"] as? String }
        #expect(deltas.joined() == chatText)
        for (body, param) in [(#"{"input":"x","previous_response_id":"resp_1"}"#, "previous_response_id"),
                              (#"{"input":"x","store":true}"#, "store"), (#"{"input":"x","background":true}"#, "background"),
                              (#"{"input":"x","tools":[{"type":"web_search"}]}"#, "tools[0]"),
                              (#"{"input":"x","text":{"format":{"type":"xml"}}}"#, "text.format.type"),
                              (#"{"input":[{"type":"input_image"}]}"#, "input[0].type"), (#"{}"#, "input")] {
            let r = c.request("POST", "/v1/responses", json: body)
            #expect(r?.status == 400 && (object(r)["error"] as? [String: Any])?["param"] as? String == param, "\(body)")
        }
    }

    @Test func healthIs503UntilTheModelLoads() throws {
        let s = try startAPI(loaded: false); defer { s.stop() }
        let c = try TestClient(port: s.port)
        #expect(c.request("GET", "/health")?.status == 503)
        #expect(c.request("POST", "/v1/completions", json: #"{"prompt":"x"}"#)?.status == 503)
    }

    @Test func gemmaContractAndTheOpenAISDK() throws {
        let s = try startAPI(model: TestModels.gemma); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 60)
        let o = object(c.request("POST", "/v1/completions", json: #"{"model":"test-model","prompt":"The capital of France is","max_tokens":8,"temperature":0}"#))
        // llama.cpp's greedy text up to its first near-tie (see GeneratorTests).
        #expect(((o["choices"] as? [[String: Any]])?.first?["text"] as? String)?.hasPrefix(" the capital of the") == true)
        let script = """
        import openai
        c = openai.OpenAI(base_url="http://127.0.0.1:\(s.port)/v1", api_key="unused", timeout=120, max_retries=0)
        r = c.completions.create(model="test-model", prompt="The capital of France is", max_tokens=8, temperature=0)
        assert r.object == "text_completion" and r.usage.completion_tokens == 8, r
        text = "".join(ch.choices[0].text for ch in c.completions.create(model="test-model", prompt="The capital of France is",
                       max_tokens=8, temperature=0, stream=True) if ch.choices)
        assert text == r.choices[0].text, (text, r.choices[0].text)
        msgs = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is the capital of France?"}]
        chat = c.chat.completions.create(model="test-model", messages=msgs, max_tokens=12, temperature=0, logprobs=True, top_logprobs=2)
        assert chat.object == "chat.completion" and chat.choices[0].message.role == "assistant", chat
        assert chat.usage.completion_tokens == len(chat.choices[0].logprobs.content), chat
        assert len(chat.choices[0].logprobs.content[0].top_logprobs) == 2, chat
        streamed = "".join(ch.choices[0].delta.content or "" for ch in c.chat.completions.create(
            model="test-model", messages=msgs, max_tokens=12, temperature=0, stream=True) if ch.choices)
        assert streamed == chat.choices[0].message.content, (streamed, chat.choices[0].message.content)
        resp = c.responses.create(model="test-model", instructions="Answer briefly.", input="What is the capital of France?",
                                  max_output_tokens=12, temperature=0)
        assert resp.object == "response" and resp.output_text == chat.choices[0].message.content, (resp, chat)
        assert resp.usage.output_tokens == chat.usage.completion_tokens, resp.usage
        deltas, final = [], None
        for ev in c.responses.create(model="test-model", instructions="Answer briefly.", input="What is the capital of France?",
                                     max_output_tokens=12, temperature=0, stream=True):
            if ev.type == "response.output_text.delta": deltas.append(ev.delta)
            if ev.type in ("response.completed", "response.incomplete"): final = ev.response
        assert "".join(deltas) == resp.output_text and final is not None and final.output_text == resp.output_text, (deltas, final)
        print("ok", repr(text), repr(chat.choices[0].message.content))
        """
        let (status, o2, e2) = try runPython(script)
        #expect(status == 0, "\(e2)")
        #expect(o2.hasPrefix("ok ' the capital of the"), "\(o2)")
    }
}

func objc_sync(_ o: AnyObject, _ body: () -> Void) {
    let l = syncLock
    l.lock(); defer { l.unlock() }
    body()
}
let syncLock = NSLock()
