// The scheduler's decisions without a model or a thread: a KV cache of a few blocks, steps simulated by
// reserving and appending what each planned item computes.
import Model
import Testing
@testable import Engine

/// Two layers (sliding W = 8, global), KV rows of 8 bytes, blocks of 4 positions: a page is 64 bytes.
func tinyCache(pages: Int = 10, prefixCaching: Bool = false) -> KVCache {
    KVCache(layers: [LayerSpec(kind: .sliding(window: 8), ropeBase: 1), LayerSpec(kind: .global, ropeBase: 1)],
            kvDim: 4, blockTokens: 4, budgetBytes: pages * 64, prefixCaching: prefixCaching)
}

func tinyConfig(_ configure: (inout SchedulerConfig) -> Void = { _ in }) -> SchedulerConfig {
    var c = SchedulerConfig()
    c.chunkTokens = 8
    c.kvBlockTokens = 4
    c.maxBatchTokens = 12
    c.speculation.mode = .off   // the plans below are one token per decoding sequence (SpeculationTests: drafts)
    configure(&c)
    return c
}

func request(_ n: Int, seed: Int = 0, maxTokens: Int = 3) -> GenerationRequest {
    GenerationRequest(prompt: (0..<n).map { Int32(10 + ($0 + seed * 7) % 50) }, maxTokens: maxTokens, params: .greedy)
}

/// Runs the planned items as a forward pass would (KV reserved, and recorded unless the item is a
/// speculative one), then applies `outcome`
/// to every member that samples. Returns the ids the scheduler dropped.
@discardableResult
func simulate(_ core: inout SchedulerCore, _ cache: KVCache, _ items: [SchedulerCore.Item],
              _ outcome: (Int) -> SchedulerCore.Outcome? = { _ in .next(5) }) -> [Int] {
    for it in items {
        #expect(cache.reserve(it.batch!.seq, length: it.batch!.seq.length + it.batch!.tokens.count), "KV for item \(it.id)")
        if it.batch!.appends { cache.append(it.batch!.seq, it.batch!.tokens) }   // speculative: `update` records
    }
    var outs: [Int: SchedulerCore.Outcome] = [:]
    for it in items { for m in it.members { outs[m] = outcome(m) } }
    return core.update(items, outcomes: outs, cache: cache)
}

@Test func decodeTokensFirstThenChunksEndingAtFixedPositions() {
    let cache = tinyCache(pages: 100)
    var core = SchedulerCore(config: tinyConfig())
    core.add(group: [(1, request(11))])
    var items = core.schedule(cache: cache)
    #expect(items.map(\.start) == [0] && items[0].batch!.tokens.count == 8 && items[0].members.isEmpty)
    simulate(&core, cache, items)
    core.add(group: [(2, request(5, seed: 1))])
    items = core.schedule(cache: cache)
    // Request 1's last chunk (8..<11) samples; request 2's prompt (5 tokens) fits the rest of the budget.
    #expect(items.map(\.id) == [1, 2] && items.map(\.start) == [8, 0] && items.map(\.members) == [[1], [2]])
    simulate(&core, cache, items)
    items = core.schedule(cache: cache)
    #expect(items.allSatisfy(\.decoding) && items.map(\.id) == [1, 2] && items.map { $0.batch!.tokens } == [[5], [5]])
}

@Test func aMostlyCachedPromptGoesBeforeLongerOnes() {
    let cache = tinyCache(pages: 200)
    var core = SchedulerCore(config: tinyConfig { $0.maxBatchTokens = 16 })
    core.add(group: [(1, request(40, seed: 1))])
    core.add(group: [(2, request(40, seed: 2))])
    core.add(group: [(3, request(3, seed: 3))])
    let items = core.schedule(cache: cache)
    // The oldest prompt always gets its chunk; then the fewest tokens left: request 3, not 2.
    #expect(items.map(\.id) == [1, 3])
}

@Test func admissionWaitsForKVPagesFirstComeFirstServed() {
    // Prompt 10 + 2 tokens commits 3 global and 3 sliding pages: two such requests do not fit 10 pages.
    let cache = tinyCache(pages: 10)
    var core = SchedulerCore(config: tinyConfig())
    #expect(cache.bytesReserved(tokens: 12, step: 8) == 6 * 64)
    core.add(group: [(1, request(10, maxTokens: 2))])
    core.add(group: [(2, request(10, seed: 1, maxTokens: 2))])
    core.add(group: [(3, request(2, seed: 2, maxTokens: 1))])
    var items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [1] && core.waitingCount == 2)   // 3 would fit beside 1, but waits behind 2
    simulate(&core, cache, items)                                // positions 0..<8
    items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [1] && items[0].members == [1] && core.waitingCount == 2)
    simulate(&core, cache, items)                                // 8..<10 and the first token
    items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [1] && items[0].decoding)
    #expect(simulate(&core, cache, items) { _ in .finished } == [1])
    items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [2, 3] && core.waitingCount == 0)
}

@Test func aCachedPrefixStartsThePromptLater() {
    let cache = tinyCache(pages: 100, prefixCaching: true)
    var core = SchedulerCore(config: tinyConfig())
    let r = request(19)
    core.add(group: [(1, r)])
    while !core.isIdle { simulate(&core, cache, core.schedule(cache: cache)) { _ in .finished } }
    core.add(group: [(2, r)])
    let items = core.schedule(cache: cache)
    #expect(core.cachedTokens(2) == 16)
    #expect(items.map(\.start) == [16] && items[0].batch!.tokens == Array(r.prompt[16...]) && items[0].members == [2])
}

@Test func aGroupForksAtTheEndOfItsPromptAndCancellingFreesEverything() {
    let cache = tinyCache(pages: 100)
    var core = SchedulerCore(config: tinyConfig())
    let r = request(13)
    core.add(group: [(1, r), (2, r), (3, r)])
    var items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [1] && items[0].members.isEmpty)
    simulate(&core, cache, items)
    items = core.schedule(cache: cache)
    #expect(items.map(\.members) == [[1, 2, 3]])
    simulate(&core, cache, items) { $0 == 3 ? .finished : .next(7) }
    items = core.schedule(cache: cache)
    #expect(items.map(\.id) == [1, 2] && items.allSatisfy { $0.decoding && $0.batch!.seq.length == 13 })
    #expect(Set(core.remove([1, 2], cache: cache)) == [1, 2])
    #expect(core.isIdle && cache.allocatedBytes == 0 && cache.committedBytes == 0)
}
