// The sampler: greedy, seeded determinism, top-k / top-p / min-p supports, penalties, bias, logprobs.
import Foundation
import Testing
@testable import Engine

func sample(_ logits: [Float], _ p: SamplingParams, prompt: [Int32] = [], n: Int = 1) -> [SampledToken] {
    var s = Sampler(params: p, prompt: prompt)
    return (0..<n).map { _ in logits.withUnsafeBufferPointer { s.sample($0) } }
}

let logits: [Float] = [1.0, 3.0, 2.5, -1.0, 0.5, 2.9, -5, 0]

@Test func greedyPicksArgmax() {
    #expect(sample(logits, .greedy)[0].token == 1)
}

@Test func sameSeedSameTokensDifferentSeedDiffers() {
    let a = sample(logits, SamplingParams(temperature: 1.5, seed: 42), n: 200).map(\.token)
    let b = sample(logits, SamplingParams(temperature: 1.5, seed: 42), n: 200).map(\.token)
    let c = sample(logits, SamplingParams(temperature: 1.5, seed: 43), n: 200).map(\.token)
    #expect(a == b)
    #expect(a != c)
}

@Test func topKRestrictsSupport() {
    let toks = Set(sample(logits, SamplingParams(temperature: 5, topK: 2, seed: 1), n: 300).map(\.token))
    #expect(toks == [1, 5])
}

@Test func topPRestrictsSupport() {
    // Probabilities at T=1: token 1 ~0.36, 5 ~0.33, 2 ~0.22: top-p 0.6 keeps {1, 5}.
    let toks = Set(sample(logits, SamplingParams(topP: 0.6, seed: 3), n: 300).map(\.token))
    #expect(toks == [1, 5])
    let one = Set(sample(logits, SamplingParams(topP: 0.01, seed: 3), n: 50).map(\.token))
    #expect(one == [1])
}

@Test func minPRestrictsSupport() {
    // min-p 0.5: keep tokens with p >= 0.5 * p(1): e^2.9, e^2.5 qualify (ratios 0.90, 0.61); e^1 (0.14) not.
    let toks = Set(sample(logits, SamplingParams(minP: 0.5, seed: 5), n: 300).map(\.token))
    #expect(toks == [1, 2, 5])
}

@Test func samplingFollowsTheDistribution() {
    let l: [Float] = [0, log(3)]   // p = 0.25, 0.75
    let n = 4000
    let ones = sample(l, SamplingParams(seed: 9), n: n).filter { $0.token == 1 }.count
    #expect(abs(Double(ones) / Double(n) - 0.75) < 0.03)
}

@Test func logitBiasAndPenalties() {
    #expect(sample(logits, SamplingParams(temperature: 0, logitBias: [3: 10]))[0].token == 3)
    #expect(sample(logits, SamplingParams(temperature: 0, logitBias: [1: -100]))[0].token == 5)
    // Frequency penalty: after emitting token 1 twice, its logit drops by 2 * 1.0 -> token 5 wins.
    var s = Sampler(params: SamplingParams(temperature: 0, frequencyPenalty: 1.0))
    let picks = (0..<2).map { _ in logits.withUnsafeBufferPointer { s.sample($0).token } }
    #expect(picks == [1, 5])
    // Presence penalty applies once per token seen.
    var p = Sampler(params: SamplingParams(temperature: 0, presencePenalty: 0.5))
    _ = logits.withUnsafeBufferPointer { p.sample($0) }            // 1
    #expect(logits.withUnsafeBufferPointer { p.sample($0).token } == 5)
    // Repetition penalty covers the prompt: 3.0 / 2 = 1.5 < 2.9.
    #expect(sample(logits, SamplingParams(temperature: 0, repetitionPenalty: 2), prompt: [1])[0].token == 5)
}

@Test func logprobsAreTheModelsDistribution() {
    let r = sample(logits, SamplingParams(temperature: 0, logprobs: 3))[0]
    let z = log(logits.map { exp(Double($0)) }.reduce(0, +))
    #expect(abs(Double(r.logprob) - (3.0 - z)) < 1e-5)
    #expect(r.top.map(\.token) == [1, 5, 2])
    #expect(abs(Double(r.top[1].logprob) - (2.9 - z)) < 1e-5)
}

/// Without a request for log-probabilities the vocabulary-wide normaliser is skipped: the same tokens
/// (greedy on the logits themselves, and through bias and penalties), the log-probability NaN.
@Test func chosenLogprobOnlyWhenAsked() {
    var off = SamplingParams(temperature: 0)
    off.chosenLogprob = false
    let r = sample(logits, off)[0]
    #expect(r.token == 1 && r.logprob.isNaN && r.top.isEmpty)
    #expect(!sample(logits, .greedy)[0].logprob.isNaN)
    var biased = SamplingParams(temperature: 0, logitBias: [5: 0.2])
    biased.chosenLogprob = false
    #expect(sample(logits, biased)[0].token == 5)
    off.logprobs = 2  // top alternatives need the normaliser: computed
    #expect(!sample(logits, off)[0].logprob.isNaN)
}

/// Allows the tokens of a set (and counts how often the whole mask was asked for).
final class SetFilter: TokenFilter {
    let allowed: Set<Int32>
    var masks = 0
    init(_ a: Set<Int32>) { allowed = a }
    func allows(_ t: Int32) -> Bool { allowed.contains(t) }
    func mask() -> [UInt64] {
        masks += 1
        var m = [UInt64](repeating: 0, count: 1)
        for t in allowed { m[0] |= 1 << UInt64(t) }
        return m
    }
}

@Test func filteredSamplingIsTheMaskedDistribution() {
    // Allowed {0, 2, 4, 7}: at T=1 their masked probabilities are e^x / (e^1 + e^2.5 + e^0.5 + e^0).
    let f = SetFilter([0, 2, 4, 7])
    let z = [1.0, 2.5, 0.5, 0].map { exp($0) }.reduce(0, +)
    let want: [Int32: Double] = [0: exp(1) / z, 2: exp(2.5) / z, 4: exp(0.5) / z, 7: 1 / z]
    // Rejection sampling (plain temperature) and the masked path (top-k no narrower than the vocabulary)
    // must both give the masked distribution.
    for p in [SamplingParams(temperature: 1, seed: 9), SamplingParams(temperature: 1, topK: 8, seed: 9)] {
        var s = Sampler(params: p)
        var counts: [Int32: Int] = [:]
        let n = 20000
        for _ in 0..<n { counts[logits.withUnsafeBufferPointer { s.sample($0, filter: f) }.token, default: 0] += 1 }
        #expect(Set(counts.keys).isSubset(of: f.allowed))
        for (t, q) in want { #expect(abs(Double(counts[t] ?? 0) / Double(n) - q) < 0.015, "token \(t)") }
    }
    // Greedy: the best allowed token; the mask is built only when the arg-max is refused.
    var g = Sampler(params: .greedy)
    let g1 = SetFilter([1, 3])
    #expect(logits.withUnsafeBufferPointer { g.sample($0, filter: g1) }.token == 1 && g1.masks == 0)
    let g2 = SetFilter([3, 4])
    #expect(logits.withUnsafeBufferPointer { g.sample($0, filter: g2) }.token == 4 && g2.masks == 1)
}
