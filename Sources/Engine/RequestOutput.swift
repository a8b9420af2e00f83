// The output processor of one request: from rows of logits to the events its client sees. It owns the
// request's sampler (bias, penalties, temperature, top-k/p, min-p, seed), the streaming detokenizer,
// stop-string matching and the finish rules, stated once for the server's scheduler and `generate`:
//   - an end-of-generation token (unless ignore_eos) finishes with "stop", after the text held back;
//   - a stop string finishes with "stop", the text before it sent, the rest dropped;
//   - the max_tokens-th token finishes with "length", with everything held back;
//   - max_tokens 0 (prompt scoring only) finishes with "length" without sampling;
//   - with a grammar constraint, only allowed tokens are sampled, and the token that completes the text
//     finishes with "stop" when nothing may follow it (an end-of-generation token, allowed exactly when the
//     text is complete, finishes it otherwise); max_tokens before that is "length", the only way a
//     constrained output is incomplete.
import Grammar
import Model
import Tokenizer

public struct RequestOutput: Sendable {
    public let request: GenerationRequest
    private var sampler: Sampler
    private var decoder = StreamingDecoder()
    private var stopper: StopMatcher
    /// Tokens sampled so far.
    public private(set) var generated = 0
    /// Prompt tokens taken from the prefix cache (reported when the request finishes).
    public var cachedTokens = 0
    /// Scores of prompt tokens 1... so far (requests with `promptLogprobs`).
    public private(set) var promptScores: [SampledToken] = []
    /// The grammar's parser state (constrained requests).
    private let matcher: GrammarMatcher?

    public init(_ request: GenerationRequest) {
        self.request = request
        sampler = Sampler(params: request.params, prompt: request.prompt)
        stopper = StopMatcher(request.stop)
        matcher = request.constraint.map { GrammarMatcher($0.grammar) }
    }

    /// A constrained request's allowed tokens.
    struct GrammarFilter: TokenFilter {
        let constraint: GrammarConstraint
        let matcher: GrammarMatcher
        let tokenizer: Tokenizer
        func allows(_ token: Int32) -> Bool { constraint.allows(matcher, token: token, bytes: tokenizer.pieceBytes(token)) }
        func mask() -> [UInt64] { constraint.mask(matcher) }
    }

    /// Scores the prompt tokens that follow a chunk of `count` positions from `start` (row j of the chunk
    /// predicts the token after position start + j).
    public mutating func score(_ logits: Logits, firstRow: Int, start: Int, count: Int) {
        guard let top = request.promptLogprobs else { return }
        let p = request.prompt
        for j in 0..<count where start + j + 1 < p.count {
            promptScores.append(Sampler.score(logits.row(firstRow + j), token: p[start + j + 1], top: top))
        }
    }

    /// A group member takes its leader's prompt scores (the prompt ran once, for the leader).
    public mutating func adoptPromptScores(from leader: RequestOutput) { promptScores = leader.promptScores }

    /// The events of the prompt's end, before the first token: its scores (when asked), and for a
    /// score-only request (max_tokens 0) its finish.
    public func promptDone() -> [GenerationEvent] {
        var out: [GenerationEvent] = []
        if request.promptLogprobs != nil { out.append(.promptLogprobs(promptScores)) }
        if request.maxTokens == 0 { out.append(finished(.length)) }
        return out
    }

    /// Samples the next token from `row` and applies the finish rules. Returns the token and the events
    /// to send in order; the last is `.finished` when the request is done.
    public mutating func next(_ row: UnsafeBufferPointer<Float>, tokenizer: Tokenizer) -> (SampledToken, [GenerationEvent]) {
        var filter: GrammarFilter?
        if let c = request.constraint, let m = matcher {
            filter = GrammarFilter(constraint: c, matcher: m, tokenizer: tokenizer)
        }
        let t = sampler.sample(row, filter: filter)
        generated += 1
        if tokenizer.isEndOfGeneration(t.token) && (!request.ignoreEOS || matcher != nil) {
            let rest = stopper.push(decoder.flush()).emit + stopper.flush()
            return (t, [.token(t, text: rest), finished(.stop)])
        }
        let bytes = tokenizer.pieceBytes(t.token)
        if let m = matcher, !m.accept(bytes) {
            // The mask allowed only what the grammar takes: reaching here is a bug, reported, not sent.
            return (t, [.failed("constrained decoding: token \(t.token) does not continue the grammar")])
        }
        let (text, stopped) = stopper.push(decoder.append(bytes))
        if stopped { return (t, [.token(t, text: text), finished(.stop)]) }
        if matcher?.isFinished == true {
            let rest = text + stopper.push(decoder.flush()).emit + stopper.flush()
            return (t, [.token(t, text: rest), finished(.stop)])
        }
        if generated >= request.maxTokens {
            let rest = text + stopper.push(decoder.flush()).emit + stopper.flush()
            return (t, [.token(t, text: rest), finished(.length)])
        }
        return (t, [.token(t, text: text)])
    }

    private func finished(_ reason: FinishReason) -> GenerationEvent {
        .finished(reason, promptTokens: request.prompt.count, completionTokens: generated, cachedTokens: cachedTokens)
    }
}
