// Parity with llama.cpp on the real models (fixtures made by scripts/make_fixtures.py with llama-cpp-python):
// arg-max agreement at every position of 6 prompts (two longer than 1500 tokens, so Gemma's window matters),
// and greedy 64-token continuations identical up to llama.cpp's first near-tie.
// The bar is llama.cpp's agreement with itself (scripts/llamacpp_self_agreement.py: batch 512 against
// batch 1 on the same file, llamacpp-self-agreement.json): 8-bit activation rounding makes any change of
// summation order flip some logits by up to ~4, so even llama.cpp agrees with itself at only ~96%.
import Foundation
import GGUF
import Kernels
import Testing
import TestSupport
@testable import Model

struct LogitsCase: Decodable { let tokens: [Int32]; let top_ids: [[Int]]; let top_logits: [[Float]] }
struct LogitsFixture: Decodable { let cases: [LogitsCase] }
struct GreedyCase: Decodable { let prompt: String; let prompt_tokens: [Int32]; let tokens: [Int32]; let margins: [Double] }
struct GreedyFixture: Decodable { let cases: [GreedyCase] }
struct SelfAgreement: Decodable {
    let argmax_agreement: Double
    let max_abs_logit_diff_top5: Float
    let greedy_identical: Int
}

/// llama.cpp against itself for the model behind `fixture` ("gemma3-..." or "smollm2-...").
func selfAgreement(_ fixture: String) throws -> SelfAgreement {
    let all = try JSONDecoder().decode([String: SelfAgreementOrNote].self, from: TestModels.fixture("ModelTests", "llamacpp-self-agreement.json"))
    guard case let .measure(m)? = all[String(fixture.prefix { $0 != "-" })] else { throw ModelError.invalidConfig("no self-agreement measure for \(fixture)") }
    return m
}

enum SelfAgreementOrNote: Decodable {
    case measure(SelfAgreement), note(String)
    init(from d: Decoder) throws {
        if let s = try? d.singleValueContainer().decode(String.self) { self = .note(s) } else { self = .measure(try SelfAgreement(from: d)) }
    }
}

let parityPool = KernelPool(threads: 2)

func load(_ path: String) throws -> Transformer { try Transformer(path: path, pool: parityPool) }

func argmax(_ r: UnsafeBufferPointer<Float>) -> Int {
    var b = 0
    for i in 1..<r.count where r[i] > r[b] { b = i }
    return b
}

/// Arg-max agreement and max |logit diff| (over llama.cpp's top-5 ids) at every position of every case.
func compareLogits(_ model: Transformer, _ f: LogitsFixture, clearMargin: Float, kv: KVCacheType = .f16) throws
    -> (agree: Int, total: Int, maxDiff: Float, clearMisses: Int, missesOverOne: Int) {
    var agree = 0, total = 0, clearMisses = 0, missesOverOne = 0
    var maxDiff: Float = 0
    for c in f.cases {
        let cache = model.makeCache(type: kv)
        let seq = cache.newSequence()
        var i = 0
        while i < c.tokens.count {
            let n = min(128, c.tokens.count - i)
            let l = try model.forward([BatchItem(seq: seq, tokens: Array(c.tokens[i..<i + n]), logits: .all)], cache: cache)
            for j in 0..<n {
                let row = l.row(j), want = c.top_ids[i + j], wantLogits = c.top_logits[i + j]
                let margin = wantLogits[0] - wantLogits[1]
                if argmax(row) == want[0] { agree += 1 } else {
                    if margin >= 1 { missesOverOne += 1 }
                    if margin >= clearMargin { clearMisses += 1; print("disagreement at margin \(margin), position \(i + j) of \(c.tokens.count)") }
                }
                total += 1
                for (id, v) in zip(want, wantLogits) { maxDiff = max(maxDiff, abs(row[id] - v)) }
            }
            i += n
        }
    }
    return (agree, total, maxDiff, clearMisses, missesOverOne)
}

/// Both sides quantize activations to 8 bits inside quantized matmuls, in the same formats, but any
/// tiny f32 difference before a rounding flips it, and the flips move logits by as much as llama.cpp
/// moves against itself (its self-agreement fixture: up to 3.9 on Gemma, 1.7 on SmolLM2). A
/// disagreement where llama.cpp's top1-top2 margin exceeds that noise would be a real error; below
/// it, either implementation may break the near-tie either way (we also report those over 1.0).
func checkLogits(_ path: String, _ fixture: String) throws {
    let model = try load(path)
    let f = try JSONDecoder().decode(LogitsFixture.self, from: TestModels.fixture("ModelTests", fixture))
    #expect(f.cases.count == 6)
    #expect(f.cases.filter { $0.tokens.count > 1500 }.count >= 2)
    let me = try selfAgreement(fixture)
    let r = try compareLogits(model, f, clearMargin: me.max_abs_logit_diff_top5)
    let rate = Double(r.agree) / Double(r.total)
    print("\(fixture): arg-max agreement \(r.agree)/\(r.total) = \(String(format: "%.4f", rate)), max |logit diff| on llama.cpp's top-5 = \(r.maxDiff), disagreements where llama.cpp's margin >= 1.0: \(r.missesOverOne), >= its own noise (\(me.max_abs_logit_diff_top5)): \(r.clearMisses)")
    print("\(fixture): llama.cpp against itself: \(String(format: "%.4f", me.argmax_agreement)), max |logit diff| \(me.max_abs_logit_diff_top5)")
    // As close to llama.cpp as llama.cpp is to itself (within a point), logit noise of the same size,
    // and never a different arg-max where llama.cpp's margin is beyond that noise.
    #expect(rate >= me.argmax_agreement - 0.01)
    #expect(r.maxDiff <= 1.5 * me.max_abs_logit_diff_top5)
    #expect(r.clearMisses == 0)
}

func checkGreedy(_ path: String, _ fixture: String) throws {
    let model = try load(path)
    let f = try JSONDecoder().decode(GreedyFixture.self, from: TestModels.fixture("ModelTests", fixture))
    #expect(f.cases.count == 10)
    var fullMatches = 0, agreedSteps = 0
    var divergences: [String] = []
    for c in f.cases {
        let cache = model.makeCache()
        let seq = cache.newSequence()
        var l = try model.forward([BatchItem(seq: seq, tokens: c.prompt_tokens, logits: .last)], cache: cache)
        var ours: [Int32] = []
        for _ in 0..<c.tokens.count {
            let t = Int32(argmax(l.row(0)))
            ours.append(t)
            l = try model.forward([BatchItem(seq: seq, tokens: [t], logits: .last)], cache: cache)
        }
        // Must agree on every step before llama.cpp's first near-tie (at the tie either choice is correct).
        let tie = c.margins.firstIndex { $0 < Double(greedyTieMargin) } ?? c.tokens.count
        #expect(Array(ours[..<tie]) == Array(c.tokens[..<tie]), "\(fixture) \(c.prompt.debugDescription): diverges before llama.cpp's first near-tie (step \(tie))")
        if ours == c.tokens { fullMatches += 1 }
        if let d = ours.indices.first(where: { ours[$0] != c.tokens[$0] }) { divergences.append("(\(d), \(String(format: "%.3f", c.margins[d])))") }
        agreedSteps += zip(ours, c.tokens).prefix { $0 == $1 }.count
    }
    // Past the first near-tie too: feed llama.cpp's own tokens (both sides then share every step's
    // history) and compare our arg-max with its token at every step. Measured on AVX-512 VNNI: every
    // difference is at a margin under 0.2, where llama.cpp parts with itself too (at 0.20); at margins of
    // 0.5 and more (room for the prompt pass's other summation order on AVX2 CPUs) there must be none.
    var compared = 0, forcedMisses: [String] = [], nearTieMisses = 0
    for c in f.cases {
        let cache = model.makeCache()
        let seq = cache.newSequence()
        var l = try model.forward([BatchItem(seq: seq, tokens: c.prompt_tokens, logits: .last)], cache: cache)
        for (step, t) in c.tokens.enumerated() {
            let differs = Int32(argmax(l.row(0))) != t
            if c.margins[step] >= Double(greedyNoiseMargin) {
                compared += 1
                if differs { forcedMisses.append("\(c.prompt.debugDescription) step \(step) margin \(c.margins[step])") }
            } else if differs {
                nearTieMisses += 1
            }
            l = try model.forward([BatchItem(seq: seq, tokens: [t], logits: .last)], cache: cache)
        }
    }
    print("\(fixture): teacher-forced over all \(f.cases.count * 64) steps: \(compared) with llama.cpp's margin >= \(greedyNoiseMargin) compared, \(forcedMisses.count) different; \(nearTieMisses) different below it")
    #expect(compared >= f.cases.count * 64 * 8 / 10, "most steps are compared")
    #expect(forcedMisses.isEmpty, "\(fixture): a different arg-max where llama.cpp's margin is beyond a near-tie")
    print("\(fixture): \(fullMatches)/\(f.cases.count) continuations identical over all 64 tokens (llama.cpp against itself: \(try selfAgreement(fixture).greedy_identical)/10); \(agreedSteps)/\(f.cases.count * 64) steps before the first difference; first differences at (step, llama.cpp's margin): \(divergences.joined(separator: " "))")
}

/// Margin (log-probability) under which a greedy step counts as a near-tie that either implementation
/// may break either way (the issue's bar). Every continuation must match llama.cpp's up to its first
/// such step; measured, all of ours do, although llama.cpp against itself parts once at 0.20.
let greedyTieMargin: Float = 0.1
/// Margin well beyond llama.cpp's own greedy noise (it parts with itself at margins up to 0.20): under
/// teacher forcing, our arg-max must equal its token at every step with a larger margin.
let greedyNoiseMargin: Float = 0.5

@Test func smolLMF32LogitsMatchLlamaCppClosely() throws {
    // No quantized activations on either side: the model math itself must agree.
    let path = try F32Copy.write(from: TestModels.smollm)
    defer { try? FileManager.default.removeItem(atPath: path) }
    let f = try JSONDecoder().decode(LogitsFixture.self, from: TestModels.fixture("ModelTests", "smollm2-f32-logits.json"))
    let r = try compareLogits(try load(path), f, clearMargin: 0)
    print("smollm2 F32: arg-max agreement \(r.agree)/\(r.total), max |logit diff| \(r.maxDiff)")
    #expect(r.agree == r.total)
    #expect(r.maxDiff < 0.05)
}

@Test func gemmaLogitsMatchLlamaCpp() throws { try checkLogits(TestModels.gemma, "gemma3-logits.json") }
@Test func smolLMLogitsMatchLlamaCpp() throws { try checkLogits(TestModels.smollm, "smollm2-logits.json") }
/// The 8-bit KV cache against llama.cpp with q8_0 K and V caches (`-ctk q8_0 -ctv q8_0 -fa on`), same
/// prompts (gemma3-q8kv-logits.json). Both round keys and values the same way, but llama.cpp's flash
/// attention differs from ours in its arithmetic (it accumulates values in f16), so the noise is
/// llama.cpp's own f16-against-q8_0 cache difference, measured from the two fixtures.
@Test func gemmaQ8CacheLogitsMatchLlamaCpp() throws {
    let model = try load(TestModels.gemma)
    let q8 = try JSONDecoder().decode(LogitsFixture.self, from: TestModels.fixture("ModelTests", "gemma3-q8kv-logits.json"))
    let f16 = try JSONDecoder().decode(LogitsFixture.self, from: TestModels.fixture("ModelTests", "gemma3-logits.json"))
    // llama.cpp q8_0 against llama.cpp f16: arg-max agreement and max |diff| over f16's top-5 ids present in both.
    var same = 0, n = 0
    var cacheNoise: Float = 0
    for (a, b) in zip(q8.cases, f16.cases) {
        #expect(a.tokens == b.tokens)
        for i in a.tokens.indices {
            if a.top_ids[i][0] == b.top_ids[i][0] { same += 1 }
            n += 1
            for (id, v) in zip(b.top_ids[i], b.top_logits[i]) {
                if let k = a.top_ids[i].firstIndex(of: id) { cacheNoise = max(cacheNoise, abs(a.top_logits[i][k] - v)) }
            }
        }
    }
    let llamaRate = Double(same) / Double(n)
    let me = try selfAgreement("gemma3-logits.json")
    let noise = max(cacheNoise, me.max_abs_logit_diff_top5)
    let r = try compareLogits(model, q8, clearMargin: noise, kv: .q8_0)
    let rate = Double(r.agree) / Double(r.total)
    print("gemma3 q8_0 KV: arg-max agreement with llama.cpp's q8_0 KV \(r.agree)/\(r.total) = \(String(format: "%.4f", rate)), max |logit diff| \(r.maxDiff), misses at margin >= 1.0: \(r.missesOverOne), >= noise (\(noise)): \(r.clearMisses); llama.cpp q8_0 KV against its f16 KV: \(String(format: "%.4f", llamaRate)), max diff \(cacheNoise)")
    #expect(rate >= min(me.argmax_agreement, llamaRate) - 0.01)
    #expect(r.maxDiff <= 1.5 * noise)
    #expect(r.clearMisses == 0)
}

@Test func gemmaGreedyMatchesLlamaCpp() throws { try checkGreedy(TestModels.gemma, "gemma3-greedy.json") }
@Test func smolLMGreedyMatchesLlamaCpp() throws { try checkGreedy(TestModels.smollm, "smollm2-greedy.json") }

@Test func gemmaFastPathMatchesReference() throws {
    let file = try GGUFFile(path: TestModels.gemma)
    let config = try ModelConfig(file: file)
    #expect(config.layers.filter { $0.kind == .global }.count == 3)
    #expect(config.layers[5].kind == .global && config.layers[11].kind == .global && config.layers[17].kind == .global)
    #expect(config.layers[0] == LayerSpec(kind: .sliding(window: 512), ropeBase: 10000))
    #expect(config.layers[5].ropeBase == 1_000_000)
    let model = Transformer(config: config, weights: try ModelWeights(file: file, config: config), pool: parityPool)
    let tokens: [Int32] = [2, 818, 5279, 529, 7001, 563]
    // The model's arithmetic, with f32 activations on both sides: agreement to 1e-3.
    model.matmul.int8Activations = false
    defer { model.matmul.int8Activations = true }
    var cache = model.makeCache()
    var l = try model.forward([BatchItem(seq: cache.newSequence(), tokens: tokens, logits: .all)], cache: cache)
    var want = ReferenceModel(file: file, config: config, int8Activations: false).logits(tokens.map(Int.init))
    for i in tokens.indices { #expect(relDiff(Array(l.row(i)), want[i]) < 1e-3, "f32 position \(i)") }
    // With 8-bit activations (the default) the reference rounds the same values the same way, but
    // Gemma's outlier channels make a 1e-6 difference before a rounding flip a step of max|x|/127, so
    // the bound is looser; the arg-max must still agree everywhere.
    model.matmul.int8Activations = true
    cache = model.makeCache()
    l = try model.forward([BatchItem(seq: cache.newSequence(), tokens: tokens, logits: .all)], cache: cache)
    want = ReferenceModel(file: file, config: config).logits(tokens.map(Int.init))
    for i in tokens.indices {
        let row = Array(l.row(i))
        #expect(relDiff(row, want[i]) < 0.1, "int8 position \(i)")
        #expect(row.indices.max { row[$0] < row[$1] } == want[i].indices.max { want[i][$0] < want[i][$1] }, "int8 position \(i)")
    }
}

/// Gemma 3's output matrix (Q8_0) is packed into GEMM panels at load; the logits are the file layout's,
/// bit for bit: a prompt's every position, then a decode step of several sequences (the GEMM route).
@Test func gemmaPackedWeightsGiveTheSameLogits() throws {
    let file = try GGUFFile(path: TestModels.gemma)
    let config = try ModelConfig(file: file)
    let packedWeights = try ModelWeights(file: file, config: config)
    #expect(packedWeights.output.packed != nil && !packedWeights.packed.isEmpty)
    #expect(packedWeights.tokenEmbedding.packed == nil)  // lookups read the file's rows
    var results: [[Float]] = []
    for weights in [packedWeights, try ModelWeights(file: file, config: config, pack: false)] {
        let model = Transformer(config: config, weights: weights, pool: parityPool)
        let cache = model.makeCache()
        let seqs = (0..<9).map { _ in cache.newSequence() }
        let prompt: [Int32] = [2, 818, 5279, 529, 7001, 563, 496, 1274, 529, 506, 1902]
        var out = Array(try model.forward([BatchItem(seq: seqs[0], tokens: prompt, logits: .all)], cache: cache).row(prompt.count - 1))
        for s in seqs.dropFirst() { _ = try model.forward([BatchItem(seq: s, tokens: Array(prompt.prefix(4)), logits: .last)], cache: cache) }
        let step = try model.forward(seqs.enumerated().map { BatchItem(seq: $1, tokens: [Int32(100 + $0)], logits: .last) }, cache: cache)
        for i in seqs.indices { out += Array(step.row(i)) }
        results.append(out)
    }
    let same = results[0] == results[1]
    #expect(same, "packed and unpacked weights give different logits")
}
