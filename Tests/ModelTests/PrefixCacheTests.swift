// The KV manager's contract (every policy through the same cases, no model) and prefix caching on the
// synthetic model: a sequence continued from a cached prefix computes exactly what a cold run computes.
import Foundation
import GGUF
import Kernels
import Testing
import TestSupport
@testable import Model

let kinds: [AttentionKind] = [.global, .sliding(window: 5), .sliding(window: 8), .sliding(window: 3)]

/// Feeds tokens one step at a time (no model: the rows stay unwritten) and returns the sequence.
func grow(_ cache: KVCache, _ seq: SequenceKV, _ tokens: [Int32], step: Int) {
    var i = 0
    while i < tokens.count {
        let n = min(step, tokens.count - i)
        #expect(cache.reserve(seq, length: seq.length + n))
        cache.append(seq, Array(tokens[i..<i + n]))
        i += n
    }
}

func tokens(_ n: Int, seed: Int) -> [Int32] { (0..<n).map { Int32(7 + ($0 * 31 + seed * 17) % 200) } }

/// Every policy: the blocks a sequence holds cover what its next query sees, never more than the
/// policy's peak, and a hit's needed blocks are among them.
@Test(arguments: kinds, [1, 3, 4])
func policyContract(kind: AttentionKind, step: Int) {
    for b in [1, 2, 4] {
        let cache = KVCache(layers: [LayerSpec(kind: kind, ropeBase: 1)], kvDim: 4, blockTokens: b)
        let seq = cache.newSequence()
        var n = 0
        while n < 40 {
            let k = min(step, 40 - n)
            #expect(cache.reserve(seq, length: n + k))
            cache.append(seq, tokens(k, seed: n))
            n += k
            let p = kind.policy
            let held = seq.tables[0].indices.filter { seq.tables[0][$0] >= 0 }
            #expect(held.count <= p.peakBlocks(length: n, step: step, blockTokens: b), "\(kind) b=\(b) n=\(n)")
            // What the next query (at position n) sees, by the mask's own formula: exactly those blocks.
            let first = kind.firstVisible(n) / b
            #expect(held == Array(first..<(n + b - 1) / b), "\(kind) b=\(b) n=\(n): holds what the next query sees")
            if n % b == 0 { #expect(p.neededBlocks(prefix: n, blockTokens: b).allSatisfy(held.contains)) }
        }
        cache.release(seq)
        #expect(cache.allocatedBytes == 0 && cache.committedBytes == 0)
    }
}

func zebraLayers(window: Int = 8) -> [LayerSpec] {
    [LayerSpec(kind: .sliding(window: window), ropeBase: 1), LayerSpec(kind: .global, ropeBase: 1),
     LayerSpec(kind: .sliding(window: window), ropeBase: 1)]
}

/// A cached prefix cache: sequences computed (no model) then released.
func cached(_ prompts: [[Int32]], budget: Int = Int.max, salt: String? = nil) -> KVCache {
    let cache = KVCache(layers: zebraLayers(), kvDim: 4, blockTokens: 4, budgetBytes: budget, prefixCaching: true)
    for p in prompts {
        let s = cache.newSequence(salt: salt)
        #expect(cache.admit(s, prompt: p, maxLength: p.count, step: 4))
        grow(cache, s, Array(p[s.length...]), step: 4)
        cache.release(s)
    }
    return cache
}

@Test func hitsAreBlockAlignedLongestPrefixes() {
    let doc = tokens(40, seed: 1)
    let cache = cached([doc + [9, 9, 9]])
    // The same prompt again: everything but the last token's block (one token is always computed).
    #expect(cache.computedPrefix(doc + [9, 9, 9]) == 40)
    // A new question on the same document: every full block of it.
    #expect(cache.computedPrefix(doc + [5, 6, 7, 8, 9]) == 40)
    // A prompt diverging inside a block reuses every block before it (vLLM #57610).
    var edited = doc
    edited[30] = 199
    #expect(cache.computedPrefix(edited) == 28)
    // Edit the last message, or drop a turn: the unchanged prefix still hits (llama.cpp #21831).
    #expect(cache.computedPrefix(Array(doc[0..<22]) + tokens(10, seed: 9)) == 20)
    #expect(cache.computedPrefix(Array(doc[0..<12]) + Array(doc[24...])) == 12)
    // Another tenant's salt sees nothing.
    #expect(cache.computedPrefix(doc + [9, 9, 9], salt: "tenant-b") == 0)
    #expect(cache.computedPrefix([1, 2, 3]) == 0 && cache.computedPrefix([]) == 0)
}

@Test func sharedBlocksAreCountedAndFreedOnce() {
    let doc = tokens(24, seed: 2)
    let cache = cached([doc])
    let before = cache.allocatedBytes
    // Two live sequences on one cached prefix: no new pages for it, and releasing both keeps it cached.
    let a = cache.newSequence(), b = cache.newSequence()
    #expect(cache.admit(a, prompt: doc + [1], maxLength: 26, step: 4) && a.cachedTokens == 24)
    #expect(cache.admit(b, prompt: doc + [2], maxLength: 26, step: 4) && b.cachedTokens == 24)
    #expect(cache.allocatedBytes == before && cache.cachedBytes < before)
    grow(cache, a, [1], step: 1)
    grow(cache, b, [2], step: 1)
    cache.release(a); cache.release(b)
    #expect(cache.committedBytes == 0 && cache.allocatedBytes == cache.cachedBytes)
    #expect(cache.computedPrefix(doc + [1]) == 24)
}

/// Out-of-window sliding blocks are dropped first, so the eviction that pressure brings takes the oldest
/// part of a branch and costs only hits that needed that part (SGLang #35515's cliff is the opposite).
@Test func evictingPartOfABranchCostsOnlyThatPart() {
    let doc = tokens(40, seed: 3)
    let cache = cached([doc + [1]])
    // Blocks 0...7 of the sliding group were dropped while the sequence ran, in order: the oldest in line.
    for _ in 0..<4 { cache.pool.evictOldest() }
    #expect(cache.prefixStats.evictions == 4)
    #expect(cache.computedPrefix(doc + [1]) == 40)          // needs sliding blocks 8, 9 (positions 33..39)
    #expect(cache.computedPrefix(Array(doc[0..<28]) + [3]) == 28)   // needs sliding blocks 5, 6: kept
    #expect(cache.computedPrefix(Array(doc[0..<12]) + [3]) == 0)    // its window (blocks 1, 2) is gone, and every shorter one's
}

/// Sixteen conversations taking turns keep their hits while the budget holds them (vLLM #48435), and
/// when it cannot, admission evicts cached blocks instead of refusing.
@Test func roundRobinConversationsKeepTheirHits() {
    let cache = KVCache(layers: zebraLayers(), kvDim: 4, blockTokens: 4, budgetBytes: 16 * 40 * 3 * 64, prefixCaching: true)
    var history = (0..<16).map { tokens(12, seed: 100 + $0) }
    for turn in 0..<3 {
        for c in 0..<16 {
            let p = history[c] + tokens(5, seed: 1000 * turn + c)
            let s = cache.newSequence()
            #expect(cache.admit(s, prompt: p, maxLength: p.count + 4, step: 4))
            #expect(s.cachedTokens == (turn == 0 ? 0 : history[c].count / 4 * 4), "turn \(turn) conversation \(c)")
            grow(cache, s, Array(p[s.length...]) + tokens(3, seed: c), step: 4)
            history[c] = p + tokens(3, seed: c)
            cache.release(s)
        }
    }
    #expect(cache.prefixStats.evictions == 0)
    // A budget of a few blocks: a long new request still gets in by evicting what is cached.
    let small = cached([tokens(40, seed: 7)], budget: 40 * 64)
    #expect(small.cachedBytes > 0)
    let s = small.newSequence()
    #expect(small.admit(s, prompt: tokens(20, seed: 8), maxLength: 30, step: 4))
    grow(small, s, tokens(30, seed: 8), step: 4)
    #expect(small.prefixStats.evictions > 0 && small.allocatedBytes <= 40 * 64)
    small.release(s)
}

/// Prompt tails are kept for the 16 most recent prompts: an older one's logits and snapshot blocks go
/// (nothing could hit them), its full blocks stay.
@Test func promptTailsAreBoundedAndTheirBlocksGoWithThem() {
    let cache = KVCache(layers: zebraLayers(), kvDim: 4, blockTokens: 4, prefixCaching: true)
    let logits = [Float](repeating: 0.5, count: 8)
    let prompts = (0..<20).map { tokens(6, seed: 50 + $0) }
    for p in prompts {
        let s = cache.newSequence()
        #expect(cache.admit(s, prompt: p, maxLength: 8, step: 4))
        grow(cache, s, p, step: 4)
        logits.withUnsafeBufferPointer { cache.snapshotTail(s, prompt: p, logits: $0) }
        cache.release(s)
    }
    // Per prompt: its full block (positions 0..<4) and, for the last 16, a tail snapshot (4..<6); a
    // block is 3 pages (2 sliding layers, 1 global) of 64 bytes.
    #expect(cache.cachedBytes == (20 + KVCache.maxTails) * 3 * 64)
    for (i, p) in [(0, prompts[0]), (19, prompts[19])] {
        let s = cache.newSequence()
        #expect(cache.admit(s, prompt: p, maxLength: 8, step: 4))
        #expect(s.cachedTokens == (i == 19 ? 6 : 4) && (s.cachedLogits != nil) == (i == 19), "prompt \(i)")
        cache.release(s)
    }
}

/// Random admits, steps, forks and releases: live pages stay within the commitments and those within the
/// budget, every sequence holds what it counts, and every block's reference count is the number of
/// sequences holding it.
@Test func poolInvariantsUnderRandomOperations() {
    var state: UInt64 = 0x1234_5678
    func next(_ n: Int) -> Int { state = state &* 6364136223846793005 &+ 1442695040888963407; return Int((state >> 33) % UInt64(n)) }
    let cache = KVCache(layers: zebraLayers(window: 6), kvDim: 4, blockTokens: 4, budgetBytes: 120 * 64, prefixCaching: true)
    let prefixes = (0..<4).map { tokens(8 + 4 * $0, seed: $0) }
    var live: [(SequenceKV, Int)] = []
    for _ in 0..<600 {
        switch next(4) {
        case 0:
            let p = prefixes[next(4)] + tokens(next(9) + 1, seed: next(3))
            let s = cache.newSequence()
            if cache.admit(s, prompt: p, maxLength: p.count + 8, step: 4) {
                grow(cache, s, Array(p[s.length...]), step: 4); live.append((s, p.count + 8))
            } else { cache.release(s) }
        case 1 where !live.isEmpty:
            let i = next(live.count)
            if live[i].0.length < live[i].1 { grow(cache, live[i].0, [Int32(next(50))], step: 1) }
        case 2 where !live.isEmpty:
            let (src, max) = live[next(live.count)]
            let d = cache.newSequence()
            if cache.admit(d, prompt: [], maxLength: max, step: 4) { cache.fork(from: src, to: d); live.append((d, max)) } else { cache.release(d) }
        case 3 where !live.isEmpty:
            cache.release(live.remove(at: next(live.count)).0)
        default: break
        }
        let p = cache.pool
        #expect(p.livePages <= p.committedPages && p.committedPages <= p.capacityPages)
        #expect(p.livePages + p.cachedPages <= p.capacityPages)
        for (g, gr) in p.groups.enumerated() {
            var refs = [Int32: Int32]()
            for (s, _) in live { for h in s.tables[g] where h >= 0 { refs[h, default: 0] += 1 } }
            for (s, _) in live { #expect(s.held <= s.claim) }
            for (h, r) in refs { #expect(gr.ref[Int(h)] == r) }
        }
    }
    for (s, _) in live { cache.release(s) }
    #expect(cache.pool.livePages == 0 && cache.pool.committedPages == 0)
}

// MARK: on the model

/// Runs `prompt` then `decode` on a new sequence of `cache` (admitted, so it takes any cached prefix),
/// in prompt chunks ending at multiples of `chunk`; returns the cached tokens and the logits of the last
/// prompt position and of every decode step.
func run(_ t: Transformer, _ cache: KVCache, _ prompt: [Int32], decode: [Int32], chunk: Int) throws -> (cached: Int, logits: [[Float]]) {
    let seq = cache.newSequence()
    #expect(cache.admit(seq, prompt: prompt, maxLength: prompt.count + decode.count, step: chunk))
    defer { cache.release(seq) }
    var out: [[Float]] = []
    var i = seq.length
    if let stored = seq.cachedLogits { out.append(stored) }   // an exact repeat: nothing to compute
    while i < prompt.count {
        let end = min(prompt.count, (i / chunk + 1) * chunk)
        let l = try t.forward([BatchItem(seq: seq, tokens: Array(prompt[i..<end]), logits: end == prompt.count ? .last : .none)], cache: cache)
        if end == prompt.count {
            out.append(Array(l.row(0)))
            cache.snapshotTail(seq, prompt: prompt, logits: l.row(0))
        }
        i = end
    }
    for tok in decode { out.append(Array(try t.forward([BatchItem(seq: seq, tokens: [tok], logits: .last)], cache: cache).row(0))) }
    return (seq.cachedTokens, out)
}

/// The prompt routes a hit must not change: (rows at which a piece leaves the row kernels, int8 GEMM
/// where the CPU has it): sgemm for every piece, the int8 GEMM, a mix of row kernels (a hit's first
/// piece, 4 rows) and GEMM (a cold chunk's 8 rows, were it not cut at the block boundary), row kernels.
let promptRoutes: [(Int, Bool)] = [(4, false), (4, true), (6, true), (6, false), (1000, true)]

/// A prompt continued from a cached prefix gives the same logits, bit for bit, as the same prompt run
/// cold, for a hit at every block boundary (so at every offset of the window the blocks allow), for
/// windows shorter and longer than a chunk, with f16 and q8_0 caches, on every prompt route.
@Test(arguments: KVCacheType.allCases, promptRoutes.indices)
func hitsComputeWhatAColdRunComputes(kv: KVCacheType, route: Int) throws {
    for pattern in [nil, try LayerPattern(parsing: "zebra:group=3,window=11,global=last")] {
        let (t, _) = try synthetic(pattern, kv: kv)
        (t.matmul.blasMinRows, t.matmul.int8Gemm) = promptRoutes[route]
        let base = Array(promptA[0..<20]) + Array(promptA[0..<14].reversed())   // 34 tokens
        let decode: [Int32] = [42, 7, 261, 5]
        let hot = t.makeCache(blockTokens: 4, type: kv, prefixCaching: true)
        _ = try run(t, hot, base, decode: [], chunk: 8)
        for p in stride(from: 4, through: 32, by: 4) {
            var prompt = base
            prompt[p] = prompt[p] == 7 ? 8 : 7   // diverges right after the block boundary p
            let cold = try run(t, t.makeCache(blockTokens: 4, type: kv), prompt, decode: decode, chunk: 8)
            let warm = try run(t, hot, prompt, decode: decode, chunk: 8)
            #expect(cold.cached == 0)
            #expect(warm.cached == p, "hit at \(p)")
            let same = warm.logits == cold.logits   // (a Bool: a failure prints the message, not 2 x 300 logits)
            #expect(same, "\(pattern.map { "\($0)" } ?? "default") \(kv) hit at \(p): logits differ from a cold run")
        }
    }
}

@Test func alignedMatmulGroupsCutLongItemsAtBlockBoundaries() {
    var g: [Transformer.MatmulGroup] = [], b: [Int] = []
    // Items (first position, rows): a chunk from 8 to 24, a decode token, a chunk from 4 to 6.
    Transformer.matmulGroups([(start: 8, count: 16), (start: 100, count: 1), (start: 4, count: 2)], blasMinRows: 4, align: 4,
                             into: &g, bounds: &b)
    #expect(g.map(\.rows) == [0..<16, 16..<19] && g.map(\.route) == [.auto, .rows])
    #expect(Array(b[g[0].bounds]) == [0, 4, 8, 12, 16] && g[1].bounds.isEmpty)
    // A chunk starting inside a block: its first piece ends at the boundary (short: the row kernels),
    // and a short last piece joins the next item's row-kernel rows.
    Transformer.matmulGroups([(start: 6, count: 11), (start: 50, count: 1)], blasMinRows: 4, align: 4, into: &g, bounds: &b)
    #expect(g.map(\.rows) == [0..<2, 2..<10, 10..<12] && g.map(\.route) == [.rows, .auto, .rows])
    #expect(Array(b[g[1].bounds]) == [0, 4, 8])
}

/// An exact repeat of a cached prompt takes all of it, and its last row's logits, and computes nothing;
/// what it samples and every step after are what a cold run gives, for tails of every length 1...4 (a
/// whole block among them), with both cache types. A tail is kept only for its exact prompt and salt.
@Test(arguments: KVCacheType.allCases)
func exactRepeatsComputeNothingAndContinueAsAColdRun(kv: KVCacheType) throws {
    let (t, _) = try synthetic(try LayerPattern(parsing: "zebra:group=3,window=11,global=last"), kv: kv)
    t.matmul.blasMinRows = 4
    let hot = t.makeCache(blockTokens: 4, type: kv, prefixCaching: true)
    let decode: [Int32] = [42, 7, 261, 5]
    for n in 17...20 {
        let prompt = Array(promptA[0..<n])
        let cold = try run(t, t.makeCache(blockTokens: 4, type: kv), prompt, decode: decode, chunk: 8)
        _ = try run(t, hot, prompt, decode: [], chunk: 8)
        let again = try run(t, hot, prompt, decode: decode, chunk: 8)
        #expect(again.cached == n, "prompt of \(n)")
        let same = again.logits == cold.logits
        #expect(same, "prompt of \(n): an exact repeat differs from a cold run")
        #expect(hot.computedPrefix(prompt, salt: "other") == 0)
    }
    // A prompt one token longer than a cached one takes its full blocks only.
    #expect(try run(t, hot, Array(promptA[0..<20]) + [5], decode: [], chunk: 8).cached == 20)
}

/// The same on Gemma 3, whose real sizes separate the routes (the synthetic model's tiny rows sum to
/// the same bits on every route): with pieces from 24 rows on the GEMM route, a cold 32-token chunk
/// and a hit's 16-token remainder would take different routes were chunks not cut at block boundaries.
@Test(arguments: [8, 24, 1000])
func gemmaHitsComputeWhatAColdRunComputes(blasMinRows: Int) throws {
    let t = try load(TestModels.gemma)
    let saved = t.matmul.blasMinRows
    t.matmul.blasMinRows = blasMinRows
    defer { t.matmul.blasMinRows = saved }
    let base = (0..<72).map { Int32(1000 + ($0 * 7919) % 20000) }
    let hot = t.makeCache(blockTokens: 16, prefixCaching: true)
    _ = try run(t, hot, base, decode: [], chunk: 32)
    for p in [16, 32, 48, 64] {
        var prompt = base
        prompt[p] = 3
        let cold = try run(t, t.makeCache(blockTokens: 16), prompt, decode: [9, 4], chunk: 32)
        let warm = try run(t, hot, prompt, decode: [9, 4], chunk: 32)
        #expect(warm.cached == p && cold.cached == 0)
        let same = warm.logits == cold.logits
        #expect(same, "rows \(blasMinRows), hit at \(p): logits differ from a cold run")
    }
}
