// Turns a row of logits into the next token. Order: logit bias, penalties, then greedy arg-max, or
// temperature -> top-k -> top-p -> min-p -> a draw from the seeded generator. Log-probabilities are
// reported from the model's own distribution (log-softmax of the raw logits), as vLLM does.
import CKernels

public struct SampledToken: Sendable, Equatable {
    public let token: Int32
    /// log p(token) under the model's raw distribution.
    public let logprob: Float
    /// The top-N alternatives (token, logprob), best first; empty unless logprobs > 0.
    public let top: [(token: Int32, logprob: Float)]
    public static func == (a: Self, b: Self) -> Bool {
        a.token == b.token && a.logprob == b.logprob && a.top.map(\.token) == b.top.map(\.token)
    }
}

/// Which tokens a constrained request may sample next (structured outputs).
public protocol TokenFilter {
    /// Whether one token is allowed (cheap: checked first for greedy sampling).
    func allows(_ token: Int32) -> Bool
    /// The allowed tokens as a bitmask (bit t of word t / 64).
    func mask() -> [UInt64]
}

public struct Sampler: Sendable {
    public let params: SamplingParams
    private var rng: SeededGenerator
    /// Occurrences of each token in the output so far (presence/frequency penalties).
    private var outputCounts: [Int32: Int] = [:]
    /// Tokens of the prompt and output (repetition penalty).
    private var seen: Set<Int32> = []
    private var work: [Float] = []
    private var cand: [Int32] = []

    public init(params: SamplingParams, prompt: [Int32] = []) {
        self.params = params
        var sys = SystemRandomNumberGenerator()
        rng = SeededGenerator(seed: params.seed ?? sys.next())
        if params.repetitionPenalty != 1 { seen = Set(prompt) }
    }

    /// Records a token as generated (done by `sample`; call it for forced tokens).
    public mutating func accept(_ token: Int32) {
        outputCounts[token, default: 0] += 1
        if params.repetitionPenalty != 1 { seen.insert(token) }
    }

    /// Samples from `logits`; with a filter, from the allowed tokens only (the mask applies after bias
    /// and penalties and before temperature, top-k/p and min-p). Without building the whole mask where
    /// the result is the same: greedy takes the arg-max if it is allowed (it is then the masked
    /// arg-max); plain temperature sampling draws until a draw is allowed (rejection sampling: exactly
    /// the masked distribution), falling back to the mask after 16 refusals.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>, filter: (any TokenFilter)? = nil) -> SampledToken {
        let v = logits.count
        // Raw log-softmax normaliser, for reported log-probabilities.
        let logZ = params.chosenLogprob || params.logprobs > 0 ? zk_logsumexp(logits.baseAddress!, Int64(v)) : .nan
        let token = filter == nil && params.temperature <= 0 && params.logitBias.isEmpty && params.repetitionPenalty == 1
            && params.presencePenalty == 0 && params.frequencyPenalty == 0
            ? Int32(zk_argmax(logits.baseAddress!, Int64(v)))  // plain greedy: no working copy
            : adjustedDraw(logits, filter: filter)
        accept(token)
        var top: [(Int32, Float)] = []
        if params.logprobs > 0 { top = Self.topN(logits, params.logprobs).map { ($0, logits[Int($0)] - logZ) } }
        return SampledToken(token: token, logprob: logits[Int(token)] - logZ, top: top)
    }

    /// The token from `logits` after bias and penalties, masked by `filter`, by the sampling parameters.
    private mutating func adjustedDraw(_ logits: UnsafeBufferPointer<Float>, filter: (any TokenFilter)?) -> Int32 {
        let v = logits.count
        if work.count != v { work = Array(repeating: 0, count: v) }

        work.withUnsafeMutableBufferPointer { w in
            _ = w.initialize(from: logits)
            for (t, b) in params.logitBias where t >= 0 && Int(t) < v { w[Int(t)] += b }
            if params.repetitionPenalty != 1 {
                for t in seen { let i = Int(t); w[i] = w[i] > 0 ? w[i] / params.repetitionPenalty : w[i] * params.repetitionPenalty }
            }
            if params.presencePenalty != 0 || params.frequencyPenalty != 0 {
                for (t, c) in outputCounts { w[Int(t)] -= params.presencePenalty + Float(c) * params.frequencyPenalty }
            }
        }
        let token: Int32
        if let filter {
            if params.temperature <= 0 {
                let t = argmax()
                if filter.allows(t) { token = t } else { applyMask(filter.mask(), refused: -.infinity); token = argmax() }
            } else if params.topK == 0 && params.topP >= 1 && params.minP == 0 {
                token = draw(rejecting: filter)
            } else {
                applyMask(filter.mask(), refused: -.infinity)
                token = draw()
            }
        } else {
            token = params.temperature <= 0 ? argmax() : draw()
        }
        return token
    }

    /// The log-probability of `token` under a row of raw logits, with the `top` most likely tokens
    /// (prompt scoring: no penalties or bias apply).
    public static func score(_ logits: UnsafeBufferPointer<Float>, token: Int32, top n: Int) -> SampledToken {
        let logZ = zk_logsumexp(logits.baseAddress!, Int64(logits.count))
        let top = n > 0 ? topN(logits, n).map { ($0, logits[Int($0)] - logZ) } : []
        return SampledToken(token: token, logprob: logits[Int(token)] - logZ, top: top)
    }

    /// A draw from the probabilities in `work` at or above `floor` (zeros never), walking ids in order.
    private mutating func pick(floor: Float) -> Int32 {
        let r = rng.nextUnitFloat()
        return work.withUnsafeBufferPointer { w in
            var mass: Float = 0
            for x in w where x >= floor { mass += x }
            var u = r * mass
            var last: Int32 = 0
            for i in 0..<w.count where w[i] >= floor {
                let x = w[i]
                if x > 0 { last = Int32(i) }
                u -= x
                if u < 0 { return Int32(i) }
            }
            return last
        }
    }

    /// Sets `work` to `refused` (-inf for logits, 0 for probabilities) for every token the mask leaves out.
    private mutating func applyMask(_ mask: [UInt64], refused: Float) {
        work.withUnsafeMutableBufferPointer { w in
            for i in 0..<w.count where i >> 6 >= mask.count || mask[i >> 6] >> UInt64(i & 63) & 1 == 0 { w[i] = refused }
        }
    }

    private func argmax() -> Int32 {
        work.withUnsafeBufferPointer { Int32(zk_argmax($0.baseAddress!, Int64($0.count))) }
    }

    /// Indices of the n largest values, best first (ties: lower id first).
    public static func topN(_ x: UnsafeBufferPointer<Float>, _ n: Int) -> [Int32] {
        var best: [(Float, Int32)] = []
        for (i, val) in x.enumerated() {
            if best.count < n || val > best[best.count - 1].0 {
                var j = best.count
                if best.count < n { best.append((val, Int32(i))) } else { j = best.count - 1; best[j] = (val, Int32(i)) }
                while j > 0 && best[j - 1].0 < best[j].0 { best.swapAt(j - 1, j); j -= 1 }
            }
        }
        return best.map(\.1)
    }

    private mutating func draw(rejecting filter: (any TokenFilter)? = nil) -> Int32 {
        let invT = 1 / params.temperature
        let v = work.count
        let mx = work.withUnsafeBufferPointer { zk_max($0.baseAddress!, Int64(v)) }
        guard mx > -Float.infinity else { return 0 }
        // Probabilities (unnormalised) at temperature T.
        let total = work.withUnsafeMutableBufferPointer { zk_exp_shifted($0.baseAddress!, Int64(v), mx, invT) }
        // Plain temperature sampling (and min-p alone) need no order: draw walking ids in order.
        if params.topK == 0 && params.topP >= 1 {
            let floor = params.minP > 0 ? params.minP : 0   // max probability is 1 after the shift
            if let filter {
                for _ in 0..<16 {
                    let t = pick(floor: floor)
                    if filter.allows(t) { return t }
                }
                applyMask(filter.mask(), refused: 0)
            }
            return pick(floor: floor)
        }
        let w0 = work
        // Top-k / top-p keep a prefix of the tokens sorted by probability. Sort only the tokens above a
        // threshold, lowered until that set surely contains the prefix.
        let k = params.topK > 0 ? min(params.topK, v) : 0
        var threshold: Float = 1e-3
        while true {
            cand.removeAll(keepingCapacity: true)
            var mass: Float = 0
            for i in 0..<v where w0[i] >= threshold { cand.append(Int32(i)); mass += w0[i] }
            if k > 0 ? cand.count >= k : mass >= params.topP * total { break }
            if threshold < 1e-37 { break }
            threshold *= 1e-4
        }
        let w = work
        cand.sort { w[Int($0)] != w[Int($1)] ? w[Int($0)] > w[Int($1)] : $0 < $1 }
        if k > 0 && cand.count > k { cand.removeLast(cand.count - k) }
        if params.topP < 1 {
            // Renormalised over the top-k survivors, as llama.cpp and vLLM do.
            var kept: Float = total
            if k > 0 { kept = 0; for t in cand { kept += w[Int(t)] } }
            var acc: Float = 0
            var keep = cand.count
            for (j, t) in cand.enumerated() {
                acc += w[Int(t)]
                if acc >= params.topP * kept { keep = j + 1; break }
            }
            cand.removeLast(cand.count - keep)
        }
        if params.minP > 0, let first = cand.first {
            let floor = params.minP * w[Int(first)]
            cand.removeAll { w[Int($0)] < floor }
        }
        var mass: Float = 0
        for t in cand { mass += w[Int(t)] }
        var u = rng.nextUnitFloat() * mass
        for t in cand {
            u -= w[Int(t)]
            if u < 0 { return t }
        }
        return cand.last ?? 0
    }
}

#if canImport(Glibc)
import Glibc
#endif
