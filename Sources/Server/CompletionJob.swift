// One /v1/completions or /v1/chat/completions request: validation, one scheduler sequence per (prompt,
// n) choice, and the answer as one JSON body or as server-sent events in the endpoint's wire format
// (text_completion, or chat.completion with the chat logprobs shape). A chat request's prompt is the
// model's chat template rendered over its messages. Sinks run on the engine thread; every write is
// non-blocking, and a client that goes away cancels its sequences.
import Engine
import Foundation
import HTTP
import Jinja
import Tokenizer

final class CompletionJob: @unchecked Sendable {
    struct Choice {
        var text = ""
        var tokens: [SampledToken] = []
        var finish: FinishReason?
        var completionTokens = 0
        var promptTokens = 0
        var cachedTokens = 0
        var echo = ""
        /// echo with logprobs: the prompt's ids and the scores of ids 1... (set before the first token).
        var promptIDs: [Int32] = []
        var promptScores: [SampledToken]?
        /// UTF-16 offset of the next streamed token in the choice's text (logprobs.text_offset).
        var streamOffset = 0
    }

    let server: ZebraServer
    let model: LoadedModel
    let request: HTTPRequest
    let writer: HTTPResponseWriter
    let body: CompletionRequest
    /// The endpoint, and so the wire format.
    enum Wire { case completions, chat, responses }
    let wire: Wire
    /// Chat and Responses requests are conversations rendered by the chat template.
    var chat: Bool { wire != .completions }
    let id: String
    /// Responses: the output message's id, and the stream's event counter.
    let messageID = "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    var sequence = 0
    let created = Int(Date().timeIntervalSince1970)
    let started: Double
    let lock = Mutex()
    var choices: [Choice]
    private var sequenceIDs: [Int] = []
    private var remaining: Int
    var firstTokenAt: Double?
    private var failed = false

    private init(server: ZebraServer, model: LoadedModel, request: HTTPRequest, writer: HTTPResponseWriter,
                 body: CompletionRequest, count: Int, started: Double, wire: Wire) {
        self.server = server; self.model = model; self.request = request; self.writer = writer
        self.body = body; self.started = started; self.wire = wire
        let prefix = wire == .completions ? "cmpl-" : wire == .chat ? "chatcmpl-" : "resp_"
        id = prefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        choices = Array(repeating: Choice(), count: count)
        remaining = count
    }

    /// A chat request's prompt: the chat template over its messages; a template error (the template's own
    /// raise_exception, or a failure) is the client's 400, with the template's message.
    static func render(_ body: CompletionRequest, _ model: LoadedModel) throws(APIError) -> String {
        do {
            return try model.chatTemplate.render(messages: body.messages ?? .array([]), tools: body.tools)
        } catch {
            throw APIError(400, "chat template (\(model.chatTemplate.origin)): \(error.message)", param: "messages", code: "chat_template_error")
        }
    }

    static func start(server: ZebraServer, model: LoadedModel, request: HTTPRequest, writer: HTTPResponseWriter, started: Double,
                      wire: Wire = .completions) {
        var limits = server.config.requestLimits
        limits.vocabSize = model.tokenizer.vocab.count
        let chat = wire != .completions
        var body: CompletionRequest
        do {
            body = wire == .responses ? try CompletionRequest(responses: request.body, limits: limits)
                                      : try CompletionRequest(json: request.body, limits: limits, chat: chat)
        } catch { server.respond(writer, request, error.response, started: started); return }
        if let m = body.model, m != server.config.modelName {
            server.respond(writer, request, APIError(404, "the model '\(m)' does not exist; this server serves '\(server.config.modelName)'",
                                                     type: "invalid_request_error", param: "model", code: "model_not_found").response, started: started)
            return
        }
        var prompts: [[Int32]] = body.prompts.map {
            switch $0 {
            case let .text(s): model.tokenizer.encode(s, addSpecial: true, parseSpecial: true)
            case let .tokens(t): t
            }
        }
        let ctx = model.contextLength
        if chat {
            do { prompts = [model.chatTemplate.tokens(try render(body, model), tokenizer: model.tokenizer)] }
            catch { server.respond(writer, request, error.response, started: started); return }
            // Without max_tokens a chat answer may run to the end of the context.
            if !body.maxTokensGiven { body.maxTokens = max(1, min(limits.maxTokens, ctx - prompts[0].count)) }
        }
        for p in prompts {
            if p.isEmpty { server.respond(writer, request, APIError.invalid("prompt", "the prompt is empty (no tokens)").response, started: started); return }
            if p.count + body.maxTokens > ctx {
                let e = APIError(400, "This model's maximum context length is \(ctx) tokens. However, you requested \(p.count + body.maxTokens) tokens (\(p.count) in the \(chat ? "messages" : "prompt"), \(body.maxTokens) in max_tokens). Please reduce the \(chat ? "messages" : "prompt") or max_tokens.",
                                 param: chat && !body.maxTokensGiven ? "messages" : "max_tokens", code: "context_length_exceeded")
                server.respond(writer, request, e.response, started: started)
                return
            }
        }
        let job = CompletionJob(server: server, model: model, request: request, writer: writer, body: body,
                                count: prompts.count * body.n, started: started, wire: wire)
        job.run(prompts)
    }

    private func run(_ prompts: [[Int32]]) {
        for (i, p) in prompts.enumerated() {
            for j in 0..<body.n {
                let k = i * body.n + j
                choices[k].promptTokens = p.count
                if body.echo { choices[k].echo = model.tokenizer.decode(p); choices[k].promptIDs = p }
            }
        }
        if body.maxTokens == 0 && !scoresPrompt {
            // Nothing to generate: every choice ends at once (echo still returns the prompt).
            for k in choices.indices { choices[k].finish = .length }
            if body.stream { startStream(); for k in choices.indices { sendFinish(k) }; endStream() }
            else { sendFull() }
            return
        }
        if body.stream { startStream() }
        writer.onClose { [weak self] in self?.cancelAll() }
        for (i, p) in prompts.enumerated() {
            // The n choices of a prompt form one group: the scheduler runs the prompt once.
            let group: [(GenerationRequest, GenerationSink)] = (0..<body.n).map { j in
                let k = i * body.n + j
                let r = GenerationRequest(prompt: p, maxTokens: body.maxTokens, params: body.sampling(index: k),
                                          stop: body.stop, ignoreEOS: body.ignoreEOS,
                                          promptLogprobs: scoresPrompt ? body.logprobs : nil, cacheSalt: body.cacheSalt)
                // The sink keeps the job alive until the scheduler drops it at the end of the sequence.
                return (r, { ev in self.handle(k, ev) })
            }
            do {
                let ids = try model.scheduler.submit(group: group)
                lock.withLock { sequenceIDs += ids }
            } catch {
                cancelAll()
                let e: APIError
                switch error {
                case .queueFull: e = APIError(429, "the server is overloaded (\(error)); retry shortly", type: "rate_limit_error", code: "overloaded", headers: [("Retry-After", "1")])
                case .exceedsKVBudget: e = APIError(400, error.description, param: "max_tokens", code: "context_length_exceeded")
                case .exceedsContext: e = APIError(400, error.description, param: "max_tokens", code: "context_length_exceeded")
                case .emptyPrompt: e = APIError.invalid("prompt", error.description)
                case .stopped: e = APIError(503, error.description, type: "server_error", code: "shutting_down")
                }
                fail(e)
                return
            }
        }
    }

    /// echo with logprobs: the prompt tokens get log-probabilities too (the first one null).
    private var scoresPrompt: Bool { body.echo && body.logprobs != nil }

    private func cancelAll() {
        let ids = lock.withLock { sequenceIDs }
        for id in ids { model.scheduler.cancel(id) }
    }

    /// Engine thread. Returns false to cancel the sequence.
    private func handle(_ k: Int, _ ev: GenerationEvent) -> Bool {
        if writer.isClosed { return false }
        switch ev {
        case .prefilling:
            if body.stream { return writer.sendComment("ping") }
            return true
        case let .promptLogprobs(scores):
            let c: Choice = lock.withLock { choices[k].promptScores = scores; return choices[k] }
            if body.stream {
                return writer.sendEvent(chunk([["text": c.echo, "index": k, "logprobs": logprobsJSON(k, choice: c, generated: []),
                                                "finish_reason": NSNull()] as [String: Any]]))
            }
            return true
        case let .token(t, text):
            lock.withLock {
                if firstTokenAt == nil { firstTokenAt = server.now() }
                choices[k].tokens.append(t)
                choices[k].text += text
                choices[k].completionTokens += 1
            }
            if body.stream && (!text.isEmpty || body.logprobs != nil) {
                return sendDelta(k, text: text, token: t)
            }
            return true
        case let .finished(reason, _, completion, cached):
            let last: Bool = lock.withLock {
                choices[k].finish = reason
                choices[k].completionTokens = completion
                choices[k].cachedTokens = cached
                remaining -= 1
                return remaining == 0
            }
            if body.stream { sendFinish(k); if last { endStream() } }
            else if last { sendFull() }
            return true
        case let .failed(message):
            fail(APIError(500, "generation failed: \(message)", type: "server_error", code: "generation_failed"))
            return false
        }
    }

    private func fail(_ e: APIError) {
        let first: Bool = lock.withLock { defer { failed = true }; return !failed }
        guard first else { return }
        cancelAll()
        if body.stream {
            writer.sendEvent(e.json)
            writer.finish()
            server.logRequest(request, status: e.status, started: started, id: String(id))
        } else {
            server.respond(writer, request, e.response, started: started)
        }
    }

    // MARK: JSON shapes

    /// The legacy logprobs object for `generated` tokens of choice k (offsets after its echo), preceded,
    /// with echo, by the prompt's tokens (the first has no log-probability: null).
    private func logprobsJSON(_ k: Int, choice c: Choice, generated: [SampledToken], offset: Int? = nil) -> Any {
        guard body.logprobs != nil else { return NSNull() }
        var textOffset = 0
        var strs: [String] = [], lps: [Any] = [], tops: [Any] = [], offs: [Int] = []
        func add(_ token: Int32, _ scored: SampledToken?) {
            let s = String(decoding: model.tokenizer.pieceBytes(token), as: UTF8.self)
            strs.append(s)
            offs.append(textOffset)
            textOffset += s.utf16.count
            guard let t = scored else { lps.append(NSNull()); tops.append(NSNull()); return }
            lps.append(Double(t.logprob))
            var top: [String: Double] = [:]
            for alt in t.top { top[String(decoding: model.tokenizer.pieceBytes(alt.token), as: UTF8.self)] = Double(alt.logprob) }
            tops.append(top)
        }
        if let scores = c.promptScores {
            for (i, id) in c.promptIDs.enumerated() { add(id, i == 0 ? nil : scores[i - 1]) }
        }
        textOffset = offset ?? c.echo.utf16.count
        for t in generated { add(t.token, t) }
        return ["tokens": strs, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs]
    }

    /// OpenAI's usage object; `prompt_tokens_details.cached_tokens`: prompt tokens taken from the prefix
    /// cache instead of computed.
    func usage() -> [String: Any] {
        lock.withLock {
            // Prompt tokens count once per prompt, not once per n.
            var p = 0, cached = 0
            for (i, c) in choices.enumerated() where i % body.n == 0 { p += c.promptTokens; cached += c.cachedTokens }
            let c = choices.reduce(0) { $0 + $1.completionTokens }
            return ["prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c,
                    "prompt_tokens_details": ["cached_tokens": cached]]
        }
    }

    func encode(_ o: Any) -> String {
        String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
    }

    /// Chat's logprobs: {content: [{token, logprob, bytes, top_logprobs: [{token, logprob, bytes}]}]}.
    private func chatLogprobs(_ tokens: [SampledToken]) -> Any {
        guard body.logprobs != nil else { return NSNull() }
        func entry(_ id: Int32, _ lp: Float) -> [String: Any] {
            let b = model.tokenizer.pieceBytes(id)
            return ["token": String(decoding: b, as: UTF8.self), "logprob": Double(lp), "bytes": b.map(Int.init)]
        }
        return ["content": tokens.map { t -> [String: Any] in
            var e = entry(t.token, t.logprob)
            e["top_logprobs"] = t.top.map { entry($0.token, $0.logprob) }
            return e
        }]
    }

    private var object: String { chat ? "chat.completion" : "text_completion" }

    private func sendFull() {
        if wire == .responses { return sendResponse() }
        let snapshot = lock.withLock { choices }
        var arr: [Any] = []
        for (k, c) in snapshot.enumerated() {
            if chat {
                arr.append(["index": k, "message": ["role": "assistant", "content": c.text] as [String: Any],
                            "logprobs": chatLogprobs(c.tokens), "finish_reason": c.finish?.rawValue ?? "length"] as [String: Any])
            } else {
                arr.append(["text": c.echo + c.text, "index": k, "logprobs": logprobsJSON(k, choice: c, generated: c.tokens),
                            "finish_reason": c.finish?.rawValue ?? "length"] as [String: Any])
            }
        }
        let u = usage()
        let o: [String: Any] = ["id": String(id), "object": object, "created": created, "model": server.config.modelName,
                                "choices": arr, "usage": u]
        writer.respond(.json(200, encode(o)))
        let ttft = lock.withLock { firstTokenAt.map { $0 - started } }
        server.logRequest(request, status: 200, started: started, id: String(id), promptTokens: u["prompt_tokens"] as? Int,
                          completionTokens: u["completion_tokens"] as? Int, ttft: ttft)
    }

    private func chunk(_ choices: [Any], usage: [String: Any]? = nil) -> String {
        var o: [String: Any] = ["id": String(id), "object": chat ? "chat.completion.chunk" : "text_completion", "created": created,
                                "model": server.config.modelName, "choices": choices]
        if let u = usage { o["usage"] = u }
        return encode(o)
    }

    private func startStream() {
        writer.startEventStream()
        if wire == .responses { return startResponseStream() }
        if chat {   // each choice opens with the assistant's role
            for k in 0..<lock.withLock({ choices.count }) {
                writer.sendEvent(chunk([["index": k, "delta": ["role": "assistant", "content": ""], "logprobs": NSNull(),
                                         "finish_reason": NSNull()] as [String: Any]]))
            }
            return
        }
        if body.echo && !scoresPrompt {  // (with logprobs, the echo goes out with the prompt's scores)
            for (k, c) in lock.withLock({ choices }).enumerated() where !c.echo.isEmpty {
                writer.sendEvent(chunk([["text": c.echo, "index": k, "logprobs": NSNull(), "finish_reason": NSNull()] as [String: Any]]))
            }
        }
    }

    private func sendDelta(_ k: Int, text: String, token: SampledToken) -> Bool {
        if wire == .responses { return sendResponseDelta(text) }
        if chat {
            return writer.sendEvent(chunk([["index": k, "delta": ["content": text], "logprobs": chatLogprobs([token]),
                                            "finish_reason": NSNull()] as [String: Any]]))
        }
        var lp: Any = NSNull()
        if body.logprobs != nil {
            let off = lock.withLock { () -> Int in
                let o = choices[k].echo.utf16.count + choices[k].streamOffset
                choices[k].streamOffset += String(decoding: model.tokenizer.pieceBytes(token.token), as: UTF8.self).utf16.count
                return o
            }
            lp = logprobsJSON(k, choice: Choice(), generated: [token], offset: off)
        }
        return writer.sendEvent(chunk([["text": text, "index": k, "logprobs": lp, "finish_reason": NSNull()] as [String: Any]]))
    }

    private func sendFinish(_ k: Int) {
        let reason = lock.withLock { choices[k].finish?.rawValue ?? "length" }
        if wire == .responses { return }   // the output item closes in endStream
        if chat {
            writer.sendEvent(chunk([["index": k, "delta": [String: Any](), "logprobs": NSNull(), "finish_reason": reason] as [String: Any]]))
            return
        }
        writer.sendEvent(chunk([["text": "", "index": k, "logprobs": NSNull(), "finish_reason": reason] as [String: Any]]))
    }

    private func endStream() {
        if wire == .responses { endResponseStream(); logDone(); return }
        let u = usage()
        if body.includeUsage { writer.sendEvent(chunk([], usage: u)) }
        writer.sendEvent("[DONE]")
        writer.finish()
        let ttft = lock.withLock { firstTokenAt.map { $0 - started } }
        server.logRequest(request, status: 200, started: started, id: String(id), promptTokens: u["prompt_tokens"] as? Int,
                          completionTokens: u["completion_tokens"] as? Int, ttft: ttft)
    }
}
