// One /v1/completions, /v1/chat/completions or /v1/responses request's orchestration: validation, one
// scheduler sequence per (prompt, n) choice, cancellation, finish and errors, shared by the three
// endpoints; what goes on the wire is the endpoint's WireFormat's business (Sources/Server/Wire). A chat
// or responses request's prompt is the model's chat template rendered over its messages. Sinks run on
// the engine thread; every write is non-blocking, and a client that goes away cancels its sequences.
import Engine
import Foundation
import Grammar
import HTTP
import Jinja
import Model
import Tokenizer

final class CompletionJob: @unchecked Sendable {
    let server: ZebraServer
    let model: LoadedModel
    let request: HTTPRequest
    let writer: HTTPResponseWriter
    let body: CompletionRequest
    /// The endpoint: its request fields and its wire format.
    enum Wire {
        case completions, chat, responses
        func format() -> WireFormat {
            switch self {
            case .completions: CompletionsWire()
            case .chat: ChatWire()
            case .responses: ResponsesWire()
            }
        }
    }
    let wire: WireFormat
    let id: String
    let created = Int(Date().timeIntervalSince1970)
    let started: Double
    private let lock = Mutex()
    private var choices: [ChoiceState]
    private var sequenceIDs: [Int] = []
    private var remaining: Int
    private var firstTokenAt: Double?
    private var failed = false
    /// A streamed answer's head: not sent yet, sent (events may follow), or never (`fail` answered).
    private enum StreamState { case notOpen, open, closed }
    private let streamLock = Mutex()
    private var streamState = StreamState.notOpen

    private init(server: ZebraServer, model: LoadedModel, request: HTTPRequest, writer: HTTPResponseWriter,
                 body: CompletionRequest, count: Int, started: Double, wire: Wire) {
        self.server = server; self.model = model; self.request = request; self.writer = writer
        self.body = body; self.started = started; self.wire = wire.format()
        id = self.wire.idPrefix + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
        choices = Array(repeating: ChoiceState(), count: count)
        remaining = count
    }

    /// The conversation as the template sees it: earlier calls and tool results in the template's tool
    /// syntax, and with tools in the generic syntax the instructions that describe them (also what
    /// /apply-template shows).
    static func prepareChat(_ body: inout CompletionRequest, _ model: LoadedModel) {
        body.messages = ToolCalls.history(body.messages, syntax: model.chatTemplate.toolSyntax,
                                          objectArguments: model.chatTemplate.objectArguments)
        if body.toolChoice != .none {
            body.toolSyntax = model.chatTemplate.toolSyntax
            if body.toolSyntax == .generic { body.messages = ToolCalls.withInstructions(body) }
        }
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
        let chat = wire != .completions   // a conversation: the chat template makes the prompt
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
        // A full queue refuses before the prompt is tokenized or rendered, which can take longer than the
        // refusal itself (tens of milliseconds for an 8k-token prompt, times a burst of them).
        if model.scheduler.queueIsFull {
            server.respond(writer, request, refusal(.queueFull(waiting: model.scheduler.config.maxQueue)).response, started: started)
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
            prepareChat(&body, model)
            do { prompts = [model.chatTemplate.tokens(try render(body, model), tokenizer: model.tokenizer)] }
            catch { server.respond(writer, request, error.response, started: started); return }
            // Without max_tokens a chat answer may run to the end of the context.
            if !body.maxTokensGiven { body.maxTokens = max(1, min(limits.maxTokens, ctx - prompts[0].count)) }
        }
        for p in prompts {
            if p.isEmpty { server.respond(writer, request, APIError.invalid("prompt", "the prompt is empty (no tokens)").response, started: started); return }
            if p.count + body.maxTokens > ctx {
                // (The Responses API names its fields input and max_output_tokens.)
                let what = wire == .responses ? "input" : chat ? "messages" : "prompt"
                let limitField = wire == .responses ? "max_output_tokens" : "max_tokens"
                let e = APIError(400, ContextLimit.exceeded(promptTokens: p.count, maxTokens: body.maxTokens, context: ctx,
                                                            prompt: what, maxTokensField: limitField),
                                 param: chat && !body.maxTokensGiven ? what : limitField, code: "context_length_exceeded")
                server.respond(writer, request, e.response, started: started)
                return
            }
        }
        var constraint: GrammarConstraint?
        do {
            constraint = try model.structured.constraint(body.responseFormat, field: wire == .responses ? "text.format" : "response_format")
            if let syntax = body.toolSyntax {
                let b = body
                let key = "tools:\(syntax):\(b.toolChoice):\(b.parallelToolCalls):" + b.toolsJSON.compact
                if syntax == .generic || b.toolChoice != .auto {
                    constraint = try model.structured.constraint(key: key) { () throws(APIError) -> Grammar in
                        try ToolCalls.grammar(b.toolSpecs, choice: b.toolChoice, parallel: b.parallelToolCalls, syntax: syntax)!
                    }
                }
            }
        } catch { server.respond(writer, request, error.response, started: started); return }
        let job = CompletionJob(server: server, model: model, request: request, writer: writer, body: body,
                                count: prompts.count * body.n, started: started, wire: wire)
        job.run(prompts, constraint: constraint)
    }

    private func run(_ prompts: [[Int32]], constraint: GrammarConstraint?) {
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
            if body.stream { openStream(); for k in choices.indices { sendFinish(k) }; endStream() }
            else { sendFull() }
            return
        }
        writer.onClose { [weak self] in self?.clientLeft() }
        // The n choices of a prompt form one group: the scheduler runs the prompt once.
        let groups: [[(GenerationRequest, GenerationSink)]] = prompts.enumerated().map { i, p in
            (0..<body.n).map { j in
                let k = i * body.n + j
                var r = GenerationRequest(prompt: p, maxTokens: body.maxTokens, params: body.sampling(index: k),
                                          stop: body.stop, ignoreEOS: body.ignoreEOS,
                                          promptLogprobs: scoresPrompt ? body.logprobs : nil, cacheSalt: body.cacheSalt,
                                          constraint: constraint)
                r.speculative = body.speculative
                // The sink keeps the job alive until the scheduler drops it at the end of the sequence.
                return (r, { ev in self.handle(k, ev) })
            }
        }
        // All prompts are queued or none, and a stream opens only once they are: a refusal (a full
        // queue's 429 with Retry-After) is a plain response with its status, streaming or not.
        do {
            let ids = try model.scheduler.submit(groups: groups)
            lock.withLock { sequenceIDs += ids.joined() }
        } catch {
            fail(Self.refusal(error))
            return
        }
        if body.stream { openStream() }
    }

    /// The answer to a submission the scheduler refused.
    static func refusal(_ error: SchedulerError) -> APIError {
        switch error {
        case .queueFull: APIError(429, "the server is overloaded (\(error)); retry shortly", type: "rate_limit_error", code: "overloaded", headers: [("Retry-After", "1")])
        case .exceedsKVBudget: APIError(400, error.description, param: "max_tokens", code: "context_length_exceeded")
        case .exceedsContext: APIError(400, error.description, param: "max_tokens", code: "context_length_exceeded")
        case .emptyPrompt: APIError.invalid("prompt", error.description)
        case .stopped: APIError(503, error.description, type: "server_error", code: "shutting_down")
        }
    }

    /// echo with logprobs: the prompt tokens get log-probabilities too (the first one null).
    private var scoresPrompt: Bool { body.echo && body.logprobs != nil }

    /// The client closed the connection before the answer was done: its sequences are cancelled and the
    /// request gets its log line, with nginx's 499 (client closed request) and the tokens made so far.
    private func clientLeft() {
        let (unfinished, tokens): (Bool, Int) = lock.withLock {
            defer { failed = true }
            return (!failed && remaining > 0, choices.reduce(0) { $0 + $1.completionTokens })
        }
        cancelAll()
        guard unfinished else { return }
        server.logRequest(request, status: 499, started: started, id: String(id), completionTokens: tokens)
    }

    private func cancelAll() {
        let ids = lock.withLock { sequenceIDs }
        for id in ids { model.scheduler.cancel(id) }
    }

    /// Engine thread. Returns false to cancel the sequence.
    private func handle(_ k: Int, _ ev: GenerationEvent) -> Bool {
        if writer.isClosed { return false }
        switch ev {
        case .prefilling:
            if body.stream { openStream(); return writer.sendComment("ping") }
            return true
        case let .promptLogprobs(scores):
            lock.withLock { choices[k].promptScores = scores }
            return body.stream ? send(wire.promptScores(answer(), choice: k)) : true
        case let .token(t, text):
            // (A streamed token's text_offset in the legacy logprobs: only those need the piece's length.)
            let piece = body.stream && body.logprobs != nil
                ? String(decoding: model.tokenizer.pieceBytes(t.token), as: UTF8.self).utf16.count : 0
            lock.withLock {
                if firstTokenAt == nil { firstTokenAt = server.now() }
                choices[k].tokens.append(t)
                choices[k].text += text
                choices[k].completionTokens += 1
                choices[k].streamOffset += piece
            }
            if body.stream && body.toolSyntax == nil && (!text.isEmpty || body.logprobs != nil) {
                return send(wire.delta(answer(), choice: k, text: text, token: t))
            }
            // With tools: stream what surely is not a call; the rest and the calls go when the answer ends.
            if body.stream, let syntax = body.toolSyntax, body.toolChoice == .auto, !text.isEmpty {
                let delta: String = lock.withLock {
                    let safe = ToolCalls.streamablePrefix(choices[k].text, syntax: syntax)
                    guard safe.count > choices[k].sentContent.count else { return "" }
                    let d = String(safe.dropFirst(choices[k].sentContent.count))
                    choices[k].sentContent = safe
                    return d
                }
                if !delta.isEmpty { return send(wire.delta(answer(), choice: k, text: delta, token: t)) }
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
        // Before the stream opened (a refused submission) the error is a plain response with its status
        // and headers; afterwards it can only be the stream's last event.
        let streaming = body.stream && streamLock.withLock {
            defer { streamState = .closed }
            return streamState == .open
        }
        if streaming {
            writer.sendEvent(e.json)
            writer.finish()
            server.logRequest(request, status: e.status, started: started, id: String(id))
        } else {
            server.respond(writer, request, e.response, started: started)
        }
    }

    // MARK: the wire

    /// The answer so far, for the wire format.
    private func answer() -> Answer {
        lock.withLock { Answer(id: id, created: created, model: server.config.modelName, body: body, choices: choices, tokenizer: model.tokenizer) }
    }

    /// Sends events, opening the stream first if it is not yet; false when the client is gone.
    @discardableResult
    private func send(_ events: [ServerEvent]) -> Bool {
        openStream()
        return write(events)
    }

    private func write(_ events: [ServerEvent]) -> Bool {
        for e in events where !writer.sendEvent(e.data, name: e.name) { return false }
        return true
    }

    private func sendFull() {
        let a = answer()
        writer.respond(.json(200, encodeJSON(wire.full(a))))
        logDone(a)
    }

    /// Opens the event stream once: the 200 head and the endpoint's opening events. The HTTP thread
    /// calls it once the scheduler accepted the request, but the engine thread may have an event
    /// first, so whichever comes first opens it; nothing opens it after `fail` answered.
    private func openStream() {
        streamLock.withLock {
            guard streamState == .notOpen else { return }
            streamState = .open
            writer.startEventStream()
            _ = write(wire.streamStart(answer()))   // answer() takes `lock`; nothing takes streamLock under it
        }
    }

    private func sendFinish(_ k: Int) { send(wire.choiceDone(answer(), choice: k)) }

    private func endStream() {
        let a = answer()
        send(wire.streamEnd(a))
        writer.finish()
        logDone(a)
    }

    private func logDone(_ a: Answer) {
        let u = a.usage
        let ttft = lock.withLock { firstTokenAt.map { $0 - started } }
        server.logRequest(request, status: 200, started: started, id: String(id), promptTokens: u["prompt_tokens"] as? Int,
                          completionTokens: u["completion_tokens"] as? Int, ttft: ttft)
    }
}
