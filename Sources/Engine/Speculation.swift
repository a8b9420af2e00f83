// Prompt-lookup speculative decoding (llama.cpp's lookup decoding, vLLM's `ngram` method): a decoding
// sequence drafts the tokens that followed the last earlier occurrence of its own last few tokens (in
// its prompt or output), and one forward step computes the pending token and the draft together. One
// step streams the weights once, so when drafts are accepted a sequence gets several tokens for the
// price of one weight pass.
//
// Verification samples every row in order with the request's own sampler and keeps going while the
// sampled token equals the draft's next token. A draft is a single token (its proposal distribution is
// one-hot), so this is speculative sampling's accept/reject rule exactly: the token at each position is
// drawn from the model's distribution, whatever the draft said. With the same logits and the same draws,
// the text is identical to decoding one token at a time (greedy or seeded), and it is: a draft's rows go
// through the same row kernels and split attention as single decode tokens (rows never depend on the
// batch), and nothing is recorded for rejected rows (`BatchItem.appends`).
//
// Draft length per sequence and step: the number k that maximizes expected tokens per second,
// (1 + f (1 + a + ... + a^(k-1))) / time(step with k more rows), from the sequence's acceptance of a
// draft's first token f and of each next one a (moving averages) and the engine's measured step times (`StepCostModel`): long drafts where they are accepted
// and a step is bandwidth-bound, none where acceptance is low or extra rows cost their full share (a
// big batch is compute-bound).

/// Whether decoding sequences draft from their own context.
public enum SpeculativeMode: String, Sendable, CaseIterable {
    case ngram, off
}

public struct SpeculationConfig: Sendable, Equatable {
    public var mode = SpeculativeMode.ngram
    /// Most draft tokens per sequence and step: with the pending token, 8 rows, one tile of the AVX-512
    /// row kernels (each weight block decoded once for them all); always below Matmul.blasMinRows.
    public var maxDraft = 7
    /// Longest and shortest suffix n-gram looked up (the longest match wins).
    public var maxNgram = 4, minNgram = 2
    /// Draft rows per step across all sequences.
    public var maxDraftRows = 32
    /// A draft row's cost as a fixed share of a one-sequence step instead of the measured one (tests and
    /// A/B runs: draft lengths then depend on the text alone, not on the machine's timing).
    public var fixedRowShare: Double?
    public init() {}
}

/// Finds drafts by prompt lookup: the most recent earlier occurrence of the context's last n tokens
/// (n from `maxNgram` down to `minNgram`), and the tokens that followed it.
public struct NGramDrafter: Sendable {
    public let maxNgram: Int, minNgram: Int
    /// How far back a lookup scans (bounds a step's drafting time on long contexts).
    public let window: Int

    public init(maxNgram: Int = 4, minNgram: Int = 2, window: Int = 65_536) {
        precondition(minNgram >= 1 && maxNgram >= minNgram)
        self.maxNgram = maxNgram; self.minNgram = minNgram; self.window = window
    }

    /// Up to `limit` tokens predicted to follow `context` (empty when no n-gram recurs), and where in the
    /// context they start. `hint`: where the previous draft's source continues (its start plus the
    /// tokens appended since); when the context's last `minNgram` tokens still match the tokens before
    /// it, the draft goes on from there: a sequence copying a passage keeps following that passage,
    /// not the latest place its last few tokens occur (a legal text says "this License" everywhere).
    public func draft(_ context: [Int32], limit: Int, hint: Int? = nil) -> (tokens: ArraySlice<Int32>, source: Int) {
        let L = context.count
        guard limit > 0, L > minNgram else { return ([], 0) }
        return context.withUnsafeBufferPointer { c -> (tokens: ArraySlice<Int32>, source: Int) in
            if let h = hint, h >= minNgram, h < L {
                var n = 0
                while n < minNgram, c[h - 1 - n] == c[L - 1 - n] { n += 1 }
                if n == minNgram { return (context[h ..< min(L, h + limit)], h) }
            }
            let lo = max(0, L - window)
            // One backward scan finds, for each n, its most recent match; the longest n wins.
            var best = -1, bestN = 0
            var i = L - 2   // candidate end of a match: an occurrence ending at i, followed by c[i + 1]
            while i >= lo + minNgram - 1 {
                var n = 0
                while n < maxNgram, i - n >= lo, c[i - n] == c[L - 1 - n] { n += 1 }
                if n > bestN && n >= minNgram {
                    best = i; bestN = n
                    if n == maxNgram { break }
                }
                i -= 1
            }
            guard best >= 0 else { return ([], 0) }
            return (context[(best + 1) ..< min(L, best + 1 + limit)], best + 1)
        }
    }
}

/// One speculating sequence's drafting state: its context (prompt and sampled tokens, the pending one
/// included), its acceptance, and where its last draft's source goes on. The scheduler and `generate`
/// keep one per sequence and move it with `propose` before a step and `advance` after it.
public struct DraftState: Sendable {
    public private(set) var context: [Int32]
    public private(set) var acceptance = AcceptanceRate()
    private var hint: Int?

    /// A sequence about to sample its first token after `prompt`, growing to `capacity` tokens.
    public init(prompt: [Int32], capacity: Int) {
        context = []
        context.reserveCapacity(capacity)
        context.append(contentsOf: prompt)
    }

    /// The draft for the next step (empty: none pays), at most `limit` tokens, for a sequence joining a
    /// step of `sequences` decoding sequences with `draftRows` draft rows and `tokens` expected tokens
    /// before its own (`AcceptanceRate.bestDraft`).
    public mutating func propose(_ drafter: NGramDrafter, limit: Int, sequences: Int, draftRows: Int, tokens: Double,
                                 cost: StepCostModel) -> ArraySlice<Int32> {
        let (found, source) = drafter.draft(context, limit: limit, hint: hint)
        hint = found.isEmpty ? nil : source
        let k = found.isEmpty ? 0 : acceptance.bestDraft(limit: found.count, sequences: sequences, draftRows: draftRows,
                                                          tokens: tokens, cost: cost)
        if k == 0 { acceptance.idle() }
        return found.prefix(k)
    }

    /// A step without drafting (its place in a copied passage is not followed any more).
    public mutating func skip() { hint = nil }

    /// After a step: the first `accepted` tokens of `draft` (empty: none) were taken and `next` sampled.
    public mutating func advance(draft: ArraySlice<Int32>, accepted: Int, next: Int32) {
        if !draft.isEmpty { acceptance.observe(drafted: draft.count, accepted: accepted) }
        context.append(contentsOf: draft.prefix(accepted))
        context.append(next)
        hint = hint.map { $0 + 1 + accepted }
    }
}

/// A decode step's time as base(sequences) + draft rows x slope, learned from the steps that ran (steps
/// of decode rows only: a prompt chunk's time says nothing about decode rows). The base is per number
/// of decoding sequences; the slope, one draft row's cost, is shared. Both are moving averages, so they
/// follow the context growing and the batch changing; until a draft has run the slope is a prior share
/// of the base. A compute-bound batch measures a slope near a sequence's share of its base, and drafts
/// stop paying there by themselves.
public struct StepCostModel: Sendable {
    private var base: [Double]
    private var slope: Double?
    private var stepsWithoutDrafts = 0, draftSteps = 0
    /// Assumed cost of one draft row, as a share of a one-sequence step, before any draft ran.
    public let priorRowShare: Double
    /// Whether observations are ignored (the prior stands: `SpeculationConfig.fixedRowShare`).
    public let fixed: Bool

    public init(maxSequences: Int = 256, priorRowShare: Double = 0.25, fixed: Bool = false) {
        base = Array(repeating: 0, count: maxSequences + 1)
        self.priorRowShare = priorRowShare
        self.fixed = fixed
    }

    /// The model a configuration asks for: measured, or fixed at its row share.
    public init(_ c: SpeculationConfig) {
        self.init(priorRowShare: c.fixedRowShare ?? 0.25, fixed: c.fixedRowShare != nil)
    }

    public mutating func observe(sequences n: Int, draftRows d: Int, seconds t: Double) {
        guard !fixed, n > 0, n < base.count, d >= 0, t > 0 else { return }
        let b = baseTime(n)
        if d > 0 && base[n] > 0 {
            // The first steps with drafts grow scratch buffers (every row's logits): not their cost.
            draftSteps += 1
            if draftSteps > 2 {
                let sample = min(max(0, (t - b) / Double(d)), b)
                slope = slope.map { 0.9 * $0 + 0.1 * sample } ?? sample
            }
        }
        stepsWithoutDrafts = d > 0 ? 0 : stepsWithoutDrafts + 1
        if stepsWithoutDrafts > 32, let s = slope {
            // A long run without drafts drifts the slope back toward the prior, so one slow measurement
            // (a noisy neighbour, a page fault) cannot stop drafting for good: drafts resume and re-measure.
            slope = 0.98 * s + 0.02 * priorRowShare * baseTime(1)
        }
        // The base comes only from steps without drafts: from a step with d draft rows, base and slope
        // cannot be told apart (a sequence that always drafts one token would let an underestimated
        // slope inflate the base and keep drafting where it loses; measured: 0.89x plain on sampled text).
        if d == 0 { base[n] = base[n] == 0 ? t : 0.9 * base[n] + 0.1 * t }
    }

    /// Estimated seconds of a step of `n` decoding sequences with `d` draft rows in all (relative units
    /// before anything was measured).
    public func time(sequences n: Int, draftRows d: Int) -> Double { baseTime(n) + Double(d) * rowTime(n) }

    private func rowTime(_ n: Int) -> Double { slope ?? priorRowShare * baseTime(1) }

    /// The measured base for `n` sequences, else the nearest measured one scaled by n (compute share)
    /// toward it, else 1.
    private func baseTime(_ n: Int) -> Double {
        let n = min(max(n, 1), base.count - 1)
        if base[n] > 0 { return base[n] }
        for dist in 1..<base.count {
            if n - dist >= 1, base[n - dist] > 0 { return base[n - dist] * (1 + priorRowShare * Double(dist)) }
            if n + dist < base.count, base[n + dist] > 0 { return base[n + dist] / (1 + priorRowShare * Double(dist)) }
            if n - dist < 1 && n + dist >= base.count { break }
        }
        return 1 + priorRowShare * Double(n - 1)
    }
}

/// A sequence's acceptance of drafted tokens, as two moving averages: of a draft's first token, and of
/// each later token given the one before it was taken. Drafts from prompt lookup are bursty — either
/// the sequence is copying a passage and the draft runs on, or the lookup picked the wrong place and
/// the first token fails — so one per-token rate would undervalue long drafts exactly where they pay.
/// Both drift back toward the prior while the sequence does not draft, so a sequence whose text starts
/// repeating is tried again.
public struct AcceptanceRate: Sendable {
    /// Chance the first draft token is taken, and each later one given its predecessor was.
    public private(set) var first: Double, rate: Double
    public init(prior: Double = 0.5) { first = prior; rate = prior }
    /// A draft of `drafted` tokens whose first `accepted` were taken (tokens after a rejection say
    /// nothing: they followed a wrong token).
    public mutating func observe(drafted: Int, accepted: Int) {
        guard drafted > 0 else { return }
        first = 0.85 * first + 0.15 * (accepted > 0 ? 1 : 0)
        for i in stride(from: 1, to: min(drafted, accepted + 1), by: 1) {
            rate = 0.85 * rate + 0.15 * (i < accepted ? 1 : 0)
        }
    }
    public mutating func idle() {
        first += (0.5 - first) * 0.02
        rate += (0.5 - rate) * 0.02
    }

    /// The draft length in 0...limit that maximizes expected tokens per second for a sequence joining a
    /// step of `sequences` decoding sequences with `draftRows` draft rows before its own, which yields
    /// `tokens` expected tokens without it.
    public func bestDraft(limit: Int, sequences: Int, draftRows: Int, tokens: Double, cost: StepCostModel) -> Int {
        var best = 0, bestRate = (tokens + 1) / cost.time(sequences: sequences, draftRows: draftRows)
        var expected = 1.0, term = first
        for k in stride(from: 1, through: limit, by: 1) {
            expected += term
            term *= rate
            let r = (tokens + expected) / cost.time(sequences: sequences, draftRows: draftRows + k)
            if r > bestRate { best = k; bestRate = r }
        }
        return best
    }

    /// Expected tokens from a step with a draft of k tokens.
    public func expectedTokens(draft k: Int) -> Double {
        var e = 1.0, term = first
        for _ in stride(from: 0, to: k, by: 1) { e += term; term *= rate }
        return e
    }
}
