// Single-sequence generation: prompt in chunks, then one token per step until a stop condition.
// The CLI uses it; the finish rules are the server's (RequestOutput), on the same Transformer.
import Kernels
import Model
import Tokenizer

public enum FinishReason: String, Sendable { case stop, length }

public struct GenerationStats: Sendable {
    public var promptTokens = 0
    public var generatedTokens = 0
    public var prefillSeconds = 0.0
    public var decodeSeconds = 0.0
    public var finishReason = FinishReason.length
    /// Speculative decoding: draft tokens proposed and accepted.
    public var draftTokens = 0, acceptedTokens = 0
    public var promptTokensPerSecond: Double { prefillSeconds > 0 ? Double(promptTokens) / prefillSeconds : 0 }
    /// Decode rate, not counting the first token (produced by the prefill step).
    public var decodeTokensPerSecond: Double {
        decodeSeconds > 0 && generatedTokens > 1 ? Double(generatedTokens - 1) / decodeSeconds : 0
    }
}

public enum EngineError: Error, CustomStringConvertible {
    case model(ModelError)
    case emptyPrompt
    case promptTooLong(promptTokens: Int, maxTokens: Int, context: Int)

    public var description: String {
        switch self {
        case let .model(e): return e.description
        case .emptyPrompt: return "the prompt is empty (no tokens)"
        case let .promptTooLong(p, m, c):
            return ContextLimit.exceeded(promptTokens: p, maxTokens: m, context: c)
        }
    }
}

public final class Generator {
    public let model: Transformer
    public let tokenizer: Tokenizer
    public let cache: KVCache
    /// Prompt tokens per forward step.
    public var prefillChunk = 512
    /// Prompt-lookup speculative decoding (the same text either way).
    public var speculation = SpeculationConfig()

    public init(model: Transformer, tokenizer: Tokenizer, cache: KVCache? = nil) {
        self.model = model
        self.tokenizer = tokenizer
        self.cache = cache ?? model.makeCache()
    }

    /// Generates up to `maxTokens` tokens after `prompt`. `onToken(token, text)` gets each sampled token
    /// and the newly complete text (UTF-8 safe); return false to stop early.
    @discardableResult
    public func generate(prompt: [Int32], maxTokens: Int, params: SamplingParams, ignoreEOS: Bool = false,
                         onToken: (SampledToken, String) -> Bool) throws(EngineError) -> GenerationStats {
        guard !prompt.isEmpty else { throw .emptyPrompt }
        let ctx = model.config.contextLength
        guard prompt.count + maxTokens <= ctx else {
            throw .promptTooLong(promptTokens: prompt.count, maxTokens: maxTokens, context: ctx)
        }
        var stats = GenerationStats()
        stats.promptTokens = prompt.count
        let seq = cache.newSequence()
        defer { cache.release(seq) }
        var output = RequestOutput(GenerationRequest(prompt: prompt, maxTokens: maxTokens, params: params, ignoreEOS: ignoreEOS))
        do {
            let t0 = monotonicSeconds()
            var i = 0
            var logits: Logits? = nil
            while i < prompt.count {
                let n = min(prefillChunk, prompt.count - i)
                let last = i + n == prompt.count
                logits = try model.forward([BatchItem(seq: seq, tokens: Array(prompt[i..<i + n]), logits: last ? .last : .none)], cache: cache)
                i += n
            }
            stats.prefillSeconds = monotonicSeconds() - t0
            let t1 = monotonicSeconds()
            var row = logits!.row(0)
            // Speculation as the server's (Speculation.swift): drafts from the context, rows verified in order.
            let spec = speculation.mode == .ngram && speculation.maxDraft > 0
            let drafter = NGramDrafter(maxNgram: speculation.maxNgram, minNgram: speculation.minNgram)
            let maxDraft = min(speculation.maxDraft, model.matmul.blasMinRows - 2)
            var state = spec ? DraftState(prompt: prompt, capacity: prompt.count + maxTokens) : nil
            var cost = StepCostModel(speculation)
            var draft: ArraySlice<Int32> = [], input: Int32 = 0   // the step's draft and pending token
            // The finish rules are the server's (RequestOutput); onToken returning false stops here.
            generation: while maxTokens > 0 {
                var accepted = 0, last: Int32 = 0
                for j in 0...draft.count {
                    let (t, events) = output.next(j == 0 ? row : logits!.row(j), tokenizer: tokenizer)
                    stats.generatedTokens = output.generated
                    for ev in events {
                        switch ev {
                        case let .token(_, text):
                            if !onToken(t, text) { stats.finishReason = .stop; break generation }
                        case let .finished(reason, _, _, _):
                            stats.finishReason = reason
                            break generation
                        default: break
                        }
                    }
                    last = t.token
                    if j < draft.count && t.token == draft[draft.startIndex + j] { accepted += 1 } else { break }
                }
                if !draft.isEmpty {
                    // The verified step's rows were stored, not recorded: record the token and the accepted draft.
                    cache.append(seq, [input] + Array(draft.prefix(accepted)))
                    stats.draftTokens += draft.count
                    stats.acceptedTokens += accepted
                }
                state?.advance(draft: draft, accepted: accepted, next: last)
                draft = state?.propose(drafter, limit: min(maxDraft, maxTokens - output.generated - 1), sequences: 1,
                                       draftRows: 0, tokens: 0, cost: cost) ?? []
                input = last
                let t = monotonicSeconds()
                logits = try model.forward([BatchItem(seq: seq, tokens: [last] + draft, logits: draft.isEmpty ? .last : .all,
                                                      appends: draft.isEmpty)], cache: cache)
                cost.observe(sequences: 1, draftRows: draft.count, seconds: monotonicSeconds() - t)
                row = logits!.row(0)
            }
            stats.decodeSeconds = monotonicSeconds() - t1
        } catch {
            throw .model(error)
        }
        return stats
    }
}
