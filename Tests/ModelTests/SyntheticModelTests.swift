// The fast forward pass (ring + blocks, batched, chunked, BLAS or row kernels) against the naive reference,
// on a tiny synthetic model with 2 sliding layers (window 4) and 1 global layer.
import Foundation
import GGUF
import Kernels
import Testing
import TestSupport
@testable import Model

let sharedPool = KernelPool(threads: 2)

func relDiff(_ a: [Float], _ b: [Float]) -> Float {
    var num: Float = 0, den: Float = 0
    for (x, y) in zip(a, b) { num = max(num, abs(x - y)); den = max(den, abs(y)) }
    return num / max(den, 1e-6)
}

/// The model and its reference, both with 8-bit activations in quantized products (the default) or
/// both with f32 ones.
func synthetic(_ pattern: LayerPattern? = nil, int8: Bool = true, kv: KVCacheType = .f16) throws -> (Transformer, ReferenceModel) {
    let file = try GGUFFile(bytes: SyntheticModel.bytes())
    var config = try ModelConfig(file: file)
    if let p = pattern { config.layers = p.apply(to: config.layers) }
    let t = Transformer(config: config, weights: try ModelWeights(file: file, config: config), pool: sharedPool)
    t.matmul.int8Activations = int8
    return (t, ReferenceModel(file: file, config: config, int8Activations: int8, kvCache: kv))
}

/// Fast path vs reference. With f32 activations: 1e-3. With 8-bit ones both sides round the same
/// values the same way, but a 1e-6 difference just before a rounding boundary moves that element by
/// a whole step (max|x| / 127), so agreement is looser: 1e-2. The int8 kernels themselves are checked
/// exactly against plain loops in KernelsTests.
func tolerance(int8: Bool) -> Float { int8 ? 1e-2 : 1e-3 }
let modes = [false, true]

let promptA: [Int32] = [2, 270, 280, 290, 295, 5, 77, 123, 261, 262, 263, 264, 265, 266, 267, 268, 269, 270, 271, 272]

@Test func syntheticLayoutIsTwoSlidingOneGlobal() throws {
    let (t, _) = try synthetic()
    #expect(t.config.layers.map(\.kind) == [.sliding(window: 4), .sliding(window: 4), .global])
    #expect(t.config.layers.map(\.ropeBase) == [10000, 10000, 1_000_000])
}

@Test(arguments: [MatmulRoute.rows, MatmulRoute.blas], modes)
func wholePromptMatchesReference(route: MatmulRoute, int8: Bool) throws {
    let (t, ref) = try synthetic(int8: int8)
    t.matmul.blasMinRows = route == .blas ? 1 : Int.max
    t.matmul.blasForQuantized = route == .blas
    let cache = t.makeCache()
    let seq = cache.newSequence()
    let l = try t.forward([BatchItem(seq: seq, tokens: promptA, logits: .all)], cache: cache)
    let want = ref.logits(promptA.map(Int.init))
    for i in 0..<promptA.count {
        #expect(relDiff(Array(l.row(i)), want[i]) < tolerance(int8: int8), "position \(i)")
    }
}

/// Feeds promptA to a new sequence of `cache` in chunks of `chunk` tokens (chunk 1: decode steps),
/// checking every position's logits against `want`.
func expectChunkedMatch(_ t: Transformer, _ cache: KVCache, chunk: Int, _ want: [[Float]], tolerance: Float) throws {
    let seq = cache.newSequence()
    var i = 0
    while i < promptA.count {
        let n = min(chunk, promptA.count - i)
        let l = try t.forward([BatchItem(seq: seq, tokens: Array(promptA[i..<i + n]), logits: .all)], cache: cache)
        for j in 0..<n { #expect(relDiff(Array(l.row(j)), want[i + j]) < tolerance, "chunk \(chunk) position \(i + j)") }
        i += n
    }
    #expect(seq.length == promptA.count)
}

@Test(arguments: modes)
func chunkedPrefillAndDecodeMatchReference(int8: Bool) throws {
    let (t, ref) = try synthetic(int8: int8)
    let want = ref.logits(promptA.map(Int.init))
    for chunk in [1, 3, 4, 5, 7] {
        try expectChunkedMatch(t, t.makeCache(blockTokens: 4), chunk: chunk, want, tolerance: tolerance(int8: int8))
    }
}

/// The q8_0 cache against a reference that rounds keys, values and the scored query through q8_0:
/// whole prompt, then prompt chunks with decode steps over ring wrap-around and block boundaries.
/// (Like 8-bit activations, a rounding boundary can move one element by a step: the int8 tolerance.)
@Test(arguments: [LayerPattern?.none, LayerPattern.allGlobal])
func q8CacheMatchesItsReference(pattern: LayerPattern?) throws {
    let (t, ref) = try synthetic(pattern, kv: .q8_0)
    let want = ref.logits(promptA.map(Int.init))
    for chunk in [20, 3, 1] {
        let cache = t.makeCache(blockTokens: 4, type: .q8_0)
        #expect(cache.rowBytes == 34)  // 32 int8 + one f16 scale
        try expectChunkedMatch(t, cache, chunk: chunk, want, tolerance: tolerance(int8: true))
    }
    // And it is a different cache: f16 logits differ from q8_0 ones somewhere.
    let (tf, _) = try synthetic(pattern)
    let cf = tf.makeCache(), cq = t.makeCache(type: .q8_0)
    let lf = try tf.forward([BatchItem(seq: cf.newSequence(), tokens: promptA, logits: .last)], cache: cf)
    let lq = try t.forward([BatchItem(seq: cq.newSequence(), tokens: promptA, logits: .last)], cache: cq)
    #expect(Array(lf.row(0)) != Array(lq.row(0)))
}

@Test(arguments: modes)
func allGlobalAndZebraOverridesMatchTheirReference(int8: Bool) throws {
    for p in [LayerPattern.allGlobal, try LayerPattern(parsing: "zebra:group=2,window=3,global=first")] {
        let (t, ref) = try synthetic(p, int8: int8)
        let cache = t.makeCache(blockTokens: 8)
        let seq = cache.newSequence()
        let l = try t.forward([BatchItem(seq: seq, tokens: promptA, logits: .all)], cache: cache)
        let want = ref.logits(promptA.map(Int.init))
        for i in 0..<promptA.count { #expect(relDiff(Array(l.row(i)), want[i]) < tolerance(int8: int8)) }
    }
}

@Test func batchedSequencesEqualSeparateRuns() throws {
    let (t, _) = try synthetic()
    t.matmul.blasMinRows = 8   // the 9- and 17-token prompts take sgemm, the 2-token one the row kernels
    let prompts: [[Int32]] = [Array(promptA[0..<9]), Array(promptA[3..<20]), [2, 290]]
    // Alone, token by token after the prompt.
    var alone: [[Float]] = []
    for p in prompts {
        let cache = t.makeCache()
        let s = cache.newSequence()
        _ = try t.forward([BatchItem(seq: s, tokens: p, logits: .none)], cache: cache)
        alone.append(Array(try t.forward([BatchItem(seq: s, tokens: [42], logits: .last)], cache: cache).row(0)))
    }
    // Together: prompts in one step, then one decode step for all.
    let cache = t.makeCache()
    let seqs = prompts.map { _ in cache.newSequence() }
    _ = try t.forward(zip(seqs, prompts).map { BatchItem(seq: $0, tokens: $1, logits: .none) }, cache: cache)
    let l = try t.forward(seqs.map { BatchItem(seq: $0, tokens: [42], logits: .last) }, cache: cache)
    for i in prompts.indices { #expect(Array(l.row(i)) == alone[i], "sequence \(i) differs when batched") }
}

@Test func rejectsBadTokensAndContextOverflow() throws {
    let (t, _) = try synthetic()
    let cache = t.makeCache()
    let seq = cache.newSequence()
    #expect(throws: ModelError.self) { try t.forward([BatchItem(seq: seq, tokens: [999_999], logits: .last)], cache: cache) }
    #expect(throws: ModelError.self) { try t.forward([BatchItem(seq: seq, tokens: [-1], logits: .last)], cache: cache) }
    let long = [Int32](repeating: 5, count: t.config.contextLength + 1)
    #expect(throws: ModelError.self) { try t.forward([BatchItem(seq: seq, tokens: long, logits: .last)], cache: cache) }
    #expect(seq.length == 0)
}

@Test func kvBudgetRefusesWithoutSideEffects() throws {
    let (t, _) = try synthetic()
    let cache = t.makeCache(budgetBytes: 10_000, blockTokens: 4)
    let s = cache.newSequence()
    // sliding rings: 2 layers x 4 x 32 x 2 x 2 = 1024 bytes; global block: 4 x 128 = 512 bytes
    #expect(cache.reserve(s, length: 4))
    #expect(cache.allocatedBytes == 1024 + 512)
    #expect(!cache.reserve(s, length: 10_000))
    #expect(cache.allocatedBytes == 1024 + 512)
    cache.release(s)
    #expect(cache.allocatedBytes == 0)
}

@Test func matmulGroupsKeepLongItemsAlone() {
    let g = Transformer.matmulGroups([1, 1, 40, 1, 0, 2, 32], blasMinRows: 32)
    #expect(g.map(\.rows) == [0..<2, 2..<42, 42..<45, 45..<77])
    #expect(g.map(\.route) == [.rows, .auto, .rows, .auto])
}

@Test func phaseTimersCountStepsAndLeaveTheLogitsAlone() throws {
    let (t, _) = try synthetic()
    var wall = 0.0
    func run(timed: Bool) throws -> ([Float], StepPhases?) {
        let cache = t.makeCache()
        let s = cache.newSequence()
        t.phases = timed ? StepPhases() : nil
        let t0 = monotonicSeconds()
        defer { t.phases = nil; wall = monotonicSeconds() - t0 }
        _ = try t.forward([BatchItem(seq: s, tokens: Array(promptA[0..<9]), logits: .none)], cache: cache)
        var last: [Float] = []
        for tok in promptA[9..<13] { last = Array(try t.forward([BatchItem(seq: s, tokens: [tok], logits: .last)], cache: cache).row(0)) }
        return (last, t.phases)
    }
    let (plain, none) = try run(timed: false)
    let (timed, phases) = try run(timed: true)
    #expect(none == nil)
    #expect(timed == plain)
    let p = try #require(phases)
    #expect(p.steps == 5)
    // Both layer kinds ran attention, every phase took time, and the phases lie inside the steps.
    #expect(p.slidingAttention > 0 && p.globalAttention > 0 && p.otherLayerWork > 0 && p.output > 0)
    #expect(p.total <= wall)
    let ms = p.millisecondsPerStep
    #expect(abs(ms.globalAttention - p.globalAttention * 1e3 / 5) < 1e-9)
}
