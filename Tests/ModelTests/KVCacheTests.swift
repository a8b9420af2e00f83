// KV memory: the exact Zebra formula, and the layer pattern parser.
import Testing
@testable import Model

@Test func gemma3KVBytesAt32kContext() {
    // 18 layers: 15 sliding (window 512) + 3 global; 1 KV head x 256 dims; f16 K and V.
    let layers = (0..<18).map { i in LayerSpec(kind: i % 6 == 5 ? .global : .sliding(window: 512), ropeBase: 1) }
    let cache = KVCache(layers: layers, kvDim: 256)
    let b = cache.bytesNeeded(tokens: 32768)
    #expect(b.total == (3 * 32768 + 15 * 512) * 2 * 256 * 2)
    #expect(Double(b.total) / 1_048_576 == 103.5)
    let full = KVCache(layers: LayerPattern.allGlobal.apply(to: layers), kvDim: 256).bytesNeeded(tokens: 32768)
    #expect(Double(full.total) / 1_048_576 == 576)
    // Short sequences: sliding layers hold min(tokens, W).
    #expect(cache.bytesNeeded(tokens: 100).total == 18 * 100 * 1024)
}

@Test func gemma3Q8KVBytesAt32kContext() {
    // q8_0: per 32 values 32 int8 + an f16 scale, so a 256-dim head row is 272 bytes (17/32 of f16).
    let layers = (0..<18).map { i in LayerSpec(kind: i % 6 == 5 ? .global : .sliding(window: 512), ropeBase: 1) }
    let cache = KVCache(layers: layers, kvHeads: 1, headDim: 256, type: .q8_0)
    #expect(cache.rowBytes == 272 && cache.bytesPerPosition == 544)
    let b = cache.bytesNeeded(tokens: 32768)
    #expect(b.total == (3 * 32768 + 15 * 512) * 2 * 272)
    #expect(Double(b.total) / 1_048_576 == 54.984375)  // vs 103.5 f16
    #expect(KVCacheType.q8_0.unsupportedReason(headDim: 48) != nil)
    #expect(KVCacheType.q8_0.unsupportedReason(headDim: 64) == nil && KVCacheType.f16.unsupportedReason(headDim: 48) == nil)
}

@Test func slidingMemoryIsFlatWhileGlobalGrows() {
    let layers = [LayerSpec(kind: .sliding(window: 8), ropeBase: 1), LayerSpec(kind: .global, ropeBase: 1)]
    let cache = KVCache(layers: layers, kvDim: 4, blockTokens: 4)
    let s = cache.newSequence()
    let page = 4 * 2 * 8   // 4 positions x (K, V) x 8 bytes
    for n in 1...100 {
        #expect(cache.reserve(s, length: n))
        cache.append(s, [Int32(n)])
        // The sliding layer keeps the blocks its window still sees (positions n-7 ..< n: at most 3 blocks).
        let sliding = s.tables[0].filter { $0 >= 0 }.count
        #expect(sliding <= SlidingWindowPolicy(window: 8).peakBlocks(length: n, step: 1, blockTokens: 4))
        #expect(sliding <= 3 && s.tables[1].count == (n + 3) / 4)
        #expect(cache.allocatedBytes == (sliding + s.tables[1].count) * page)
    }
}

@Test func layerPatternParsing() throws {
    let p = try LayerPattern(parsing: "zebra:group=4,window=512,global=first")
    let specs = p.apply(to: Array(repeating: LayerSpec(kind: .global, ropeBase: 5), count: 8))
    #expect(specs.map { $0.kind == .global } == [true, false, false, false, true, false, false, false])
    #expect(specs[1].kind == .sliding(window: 512) && specs[1].ropeBase == 5)
    let last = try LayerPattern(parsing: "zebra:group=3,window=2,global=last")
    #expect(last.apply(to: Array(repeating: LayerSpec(kind: .global, ropeBase: 1), count: 3)).map(\.kind) ==
            [.sliding(window: 2), .sliding(window: 2), .global])
    for bad in ["zebra", "zebra:group=0,window=4", "zebra:group=2", "zebra:group=2,window=x", "local", "zebra:group=2,window=4,global=middle", "zebra:foo=1"] {
        #expect(throws: ModelError.self, "\(bad)") { _ = try LayerPattern(parsing: bad) }
    }
}
