// Prompt-lookup speculative decoding: the drafter, the draft-length rule, the scheduler's bookkeeping
// (simulated), and on the synthetic model the same tokens as decoding one at a time, greedy and seeded,
// alone and batched.
import Foundation
import Kernels
import Model
import Testing
import TestSupport
import Tokenizer
@testable import Engine

@Test func drafterTakesTheLongestMostRecentMatch() {
    let d = NGramDrafter(maxNgram: 3, minNgram: 2)
    // "7 8" recurs twice; the last occurrence of "6 7 8" (3 tokens) wins over the later "7 8".
    let ctx: [Int32] = [1, 6, 7, 8, 20, 21, 22, 9, 7, 8, 30, 31, 5, 6, 7, 8]
    #expect(d.draft(ctx, limit: 3).tokens == [20, 21, 22])
    #expect(d.draft(ctx, limit: 1).tokens == [20])
    #expect(d.draft(ctx, limit: 0).tokens == [])
    // Only a 2-token match: the most recent one.
    #expect(d.draft([1, 2, 3, 9, 2, 3, 4, 5, 0, 2, 3], limit: 4).tokens == [4, 5, 0, 2])
    // No n-gram of 2 recurs (a single token does, which is not enough).
    #expect(d.draft([1, 2, 3, 4, 2], limit: 4).tokens == [])
    // A draft runs to the context's end at most.
    #expect(d.draft([4, 5, 4, 5], limit: 8).tokens == [4, 5])
    #expect(d.draft([], limit: 8).tokens == [] && d.draft([4, 4], limit: 8).tokens == [])
    // Copying a passage: "1 2" occurs at 0 and again later; the hint (where the last draft's source goes
    // on) keeps the draft in the passage being copied instead of jumping to the latest "1 2".
    let copy: [Int32] = [1, 2, 3, 4, 5, 6, 9, 1, 2, 7, 1, 2]
    #expect(d.draft(copy, limit: 2).tokens == [7, 1])
    let hinted = d.draft(copy, limit: 2, hint: 2)
    #expect(hinted.tokens == [3, 4] && hinted.source == 2)
    // A hint whose tokens no longer match the context's end is ignored.
    #expect(d.draft(copy, limit: 2, hint: 4).tokens == [7, 1])
}

@Test func draftLengthFollowsAcceptanceAndCost() {
    var cost = StepCostModel(priorRowShare: 0.1)
    cost.observe(sequences: 1, draftRows: 0, seconds: 0.010)
    var high = AcceptanceRate(prior: 0.5)
    for _ in 0..<20 { high.observe(drafted: 8, accepted: 8) }
    var low = AcceptanceRate(prior: 0.5)
    for _ in 0..<20 { low.observe(drafted: 8, accepted: 0) }
    #expect(high.rate > 0.95 && high.first > 0.95 && low.first < 0.05)
    // Cheap rows (bandwidth-bound): a long draft when accepted, none when not.
    #expect(high.bestDraft(limit: 8, sequences: 1, draftRows: 0, tokens: 0, cost: cost) == 8)
    #expect(low.bestDraft(limit: 8, sequences: 1, draftRows: 0, tokens: 0, cost: cost) == 0)
    // Rows dearer than a sequence's share of a compute-bound step: drafts cannot pay.
    var bound = StepCostModel()
    for _ in 0..<4 {   // the first two steps with drafts are warm-up, not measured
        bound.observe(sequences: 16, draftRows: 0, seconds: 0.160)
        bound.observe(sequences: 16, draftRows: 4, seconds: 0.216)   // a draft row: 1.4x a sequence's share
    }
    #expect(high.bestDraft(limit: 8, sequences: 16, draftRows: 0, tokens: 15, cost: bound) == 0)
    // Rejections after the first say nothing: a draft taken up to its 6th token counts a taken first
    // token, then 4 continuations taken and 1 refused.
    var r = AcceptanceRate(prior: 0.5)
    r.observe(drafted: 8, accepted: 5)
    var expected = 0.5
    for i in 1..<6 { expected = 0.85 * expected + 0.15 * (i < 5 ? 1 : 0) }
    #expect(abs(r.rate - expected) < 1e-12 && abs(r.first - 0.575) < 1e-12)
    // Bursty drafts (copying): the first token often fails, but once taken the draft runs on, so long
    // drafts still pay where a single per-token rate would call for short ones.
    var bursty = AcceptanceRate(prior: 0.5)
    for i in 0..<40 { bursty.observe(drafted: 7, accepted: i % 2 == 0 ? 7 : 0) }
    #expect(bursty.first > 0.4 && bursty.first < 0.6 && bursty.rate > 0.95)
    var measured = StepCostModel()
    for _ in 0..<50 { measured.observe(sequences: 1, draftRows: 0, seconds: 0.010); measured.observe(sequences: 1, draftRows: 4, seconds: 0.0132) }
    #expect(bursty.bestDraft(limit: 7, sequences: 1, draftRows: 0, tokens: 0, cost: measured) == 7)
}

@Test func stepCostLearnsBaseAndRowCost() {
    var c = StepCostModel()
    for _ in 0..<50 {
        c.observe(sequences: 1, draftRows: 0, seconds: 0.010)
        c.observe(sequences: 1, draftRows: 4, seconds: 0.014)
    }
    #expect(abs(c.time(sequences: 1, draftRows: 0) - 0.010) < 2e-4)
    #expect(abs(c.time(sequences: 1, draftRows: 8) - 0.018) < 5e-4)
}

/// A sequence that drafts one token in most steps: the base comes from the few steps without drafts, so
/// the drafts' whole cost lands in the slope, and at a first-token acceptance near 40% (1.4 tokens for a
/// step 1.55x as long) the best draft is none.
@Test func stepCostBaseIsNotInflatedByDraftSteps() {
    var c = StepCostModel()
    for i in 0..<400 { c.observe(sequences: 1, draftRows: i % 40 == 0 ? 0 : 1, seconds: i % 40 == 0 ? 0.010 : 0.0155) }
    #expect(abs(c.time(sequences: 1, draftRows: 0) - 0.010) < 2e-4)
    #expect(abs(c.time(sequences: 1, draftRows: 1) - 0.0155) < 3e-4)
    var a = AcceptanceRate()
    for i in 0..<100 { a.observe(drafted: 1, accepted: i % 8 < 3 ? 1 : 0) }
    a.observe(drafted: 1, accepted: 0)
    #expect(a.bestDraft(limit: 7, sequences: 1, draftRows: 0, tokens: 0, cost: c) == 0)
}

/// The scheduler's bookkeeping without a model: a speculative item records nothing in the step; the
/// update records the pending token and the accepted draft tokens, and the next item starts after them.
@Test func acceptedDraftTokensAreRecordedAndRejectedOnesAreNot() {
    let cache = tinyCache(pages: 200)
    var core = SchedulerCore(config: tinyConfig { $0.speculation.mode = .ngram })
    // A prompt that repeats "11 12 13 14 15 16": after 11 12 the drafter proposes 13 14 15 ...
    let p: [Int32] = [1] + Array(repeating: [11, 12, 13, 14, 15, 16], count: 2).flatMap { $0 } + [11]
    core.add(group: [(1, GenerationRequest(prompt: p, maxTokens: 20, params: .greedy))])
    while true {
        let items = core.schedule(cache: cache)
        simulate(&core, cache, items, { _ in .next(12) })
        if items.contains(where: { !$0.members.isEmpty }) { break }   // the prompt's end sampled 12
    }
    let kv = core.kv(1)!
    #expect(kv.length == p.count)
    // Measured: a draft row costs a tenth of a step. Pending 12 (context ... 11 12): the drafter
    // proposes 13 14 15 16 11 12 ..., and even at the prior acceptance rate several are worth it.
    for _ in 0..<4 {
        core.observeStep(sequences: 1, draftRows: 0, seconds: 0.010)
        core.observeStep(sequences: 1, draftRows: 4, seconds: 0.014)
    }
    var items = core.schedule(cache: cache)
    #expect(items.count == 1 && items[0].decoding && items[0].batch!.tokens.count > 2 && !items[0].batch!.appends)
    #expect(Array(items[0].batch!.tokens.prefix(3)) == [12, 13, 14])
    // A wholly taken draft and the token after it, all along the pattern: the next draft goes on right
    // after them (the context holds exactly the recorded tokens and the new pending one).
    let cycle: [Int32] = [11, 12, 13, 14, 15, 16]
    var taken = items[0].batch!.tokens.count - 1
    var before = kv.length
    simulate(&core, cache, items, { _ in .accepted(taken, next: cycle[(2 + taken) % 6]) })
    #expect(kv.length == before + 1 + taken)
    items = core.schedule(cache: cache)
    #expect(items[0].batch!.tokens.count > 1 && items[0].batch!.tokens[1] == cycle[(3 + taken) % 6],
            "after a taken draft: \(items[0].batch!.tokens)")
    // A rejected one: one draft token taken, 20 sampled instead of the next; the rest is not recorded.
    taken = 1
    before = kv.length
    simulate(&core, cache, items, { _ in .accepted(taken, next: 20) })
    #expect(kv.length == before + 2)
    items = core.schedule(cache: cache)
    #expect(items[0].start == before + 2 && items[0].batch!.tokens.first == 20)
}

private func spec(_ s: Scheduler, _ on: Bool) -> (steps: Int, drafted: Int, accepted: Int) {
    let st = s.snapshot
    return (st.specSteps, st.specDrafted, st.specAccepted)
}

/// Tokens of a request through a scheduler, alone or among others.
private func run(_ s: Scheduler, _ target: GenerationRequest, crowd: Int) throws -> [Int32] {
    let c = Collector()
    for i in 1...max(crowd, 1) where crowd > 0 {
        try s.submit(GenerationRequest(prompt: prompt(i, length: 5 + i * 3), maxTokens: 10 + i,
                                       params: SamplingParams(temperature: 1, seed: UInt64(i)), ignoreEOS: true), sink: c.sink(i))
    }
    try s.submit(target, sink: c.sink(0))
    for _ in 0...crowd { c.wait() }
    return c.result(0).0
}

@Test(arguments: [SamplingParams.greedy, SamplingParams(temperature: 0.9, topK: 20, seed: 1234),
                  SamplingParams(temperature: 0.7, topP: 0.9, minP: 0.05, repetitionPenalty: 1.1, seed: 99)])
func speculationGivesTheSameTokensAsOneAtATime(params: SamplingParams) throws {
    // A prompt whose period makes every n-gram recur, so drafts are proposed all along.
    let target = GenerationRequest(prompt: prompt(0, length: 90), maxTokens: 40, params: params, ignoreEOS: true)
    let plain = try makeScheduler { $0.speculation.mode = .off }
    defer { plain.stop() }
    let reference = try run(plain, target, crowd: 0)
    #expect(reference.count == 40 && spec(plain, false).steps == 0)
    let fast = try makeScheduler { $0.speculation.mode = .ngram; $0.speculation.fixedRowShare = 0.1 }
    defer { fast.stop() }
    #expect(try run(fast, target, crowd: 0) == reference)
    #expect(try run(fast, target, crowd: 7) == reference)
    let st = spec(fast, true)
    #expect(st.steps > 0 && st.drafted > 0 && st.accepted > 0, "drafts were proposed, verified and taken: \(st)")
    var off = target
    off.speculative = false
    var waited = 0
    while fast.snapshot.running != 0 && waited < 200 { usleep(5000); waited += 1 }   // the last step's counters
    let before = spec(fast, true).steps
    #expect(try run(fast, off, crowd: 0) == reference)
    #expect(spec(fast, true).steps == before, "a request that turns speculation off never drafts")
    waited = 0
    while fast.snapshot.kvLive != 0 && waited < 200 { usleep(5000); waited += 1 }
    #expect(fast.snapshot.kvLive == 0)
}

/// A document that the prompt holds twice and then starts a third time: a base model goes on copying
/// it, so drafts are long and mostly accepted. ~330 tokens a copy: past Gemma 3's 512-token window, and
/// the answer crosses KV block boundaries.
func copyingPrompt() -> String {
    let text = """
        The lighthouse keeper climbed the spiral stairs every evening at dusk. He carried a small brass lamp, \
        a notebook with a cracked leather cover, and a thermos of black tea. At the top he wiped the great lens \
        with a soft cloth, checked the level of the oil, and wrote the time in his notebook. Ships passed far \
        out at sea, their lights blinking like slow stars. In winter the wind howled against the glass and the \
        whole tower seemed to sway. In summer the evenings were long and quiet, and he could hear the gulls \
        settling on the rocks below. He had kept the light for thirty-one years. His father had kept it before \
        him, and his grandfather before that. The village at the foot of the cliff had grown from nine houses \
        to nearly forty, with a school, a bakery, and a harbour wall built from grey granite. Children sometimes \
        climbed the path to the tower and asked him about storms. He told them about the night the fishing boat \
        Margaret lost her mast, and how the crew rowed for six hours through the dark, steering by his beam \
        until they reached the harbour. When they asked whether he was ever afraid, he smiled and said that the \
        sea was never cruel, only honest, and that a light is a promise you keep one night at a time.
        """
    return "Text:\n\n" + text + "\n\nThe same text, copied exactly:\n\n" + text +
        "\n\nThe same text, copied exactly:\n\nThe lighthouse keeper climbed"
}

/// On both real models (Gemma 3: sliding window and global layers; SmolLM2: full attention), greedy and
/// seeded: the same tokens with and without drafts, alone and among other requests, and the drafts
/// were mostly taken (the test fails if verification records a rejected row, or if drafting stops).
@Test(.serialized, arguments: [TestModels.gemma, TestModels.smollm])
func speculationOnRealModelsGivesTheSameText(path: String) throws {
    let tok = try Tokenizer(file: try Transformer(path: path, pool: KernelPool(threads: 1)).weights.file)
    let p = tok.encode(copyingPrompt())
    let requests = [SamplingParams.greedy, SamplingParams(temperature: 0.8, topK: 40, topP: 0.95, seed: 7)].map {
        GenerationRequest(prompt: p, maxTokens: 48, params: $0, ignoreEOS: true)
    }
    let others = (1...3).map { i in
        GenerationRequest(prompt: tok.encode("Story number \(i): once upon a time"), maxTokens: 30,
                          params: SamplingParams(temperature: 1, seed: UInt64(i)), ignoreEOS: true)
    }
    func run(_ s: Scheduler, _ r: GenerationRequest, crowd: Bool) throws -> [Int32] {
        let c = Collector()
        if crowd { for (i, o) in others.enumerated() { try s.submit(o, sink: c.sink(i + 1)) } }
        try s.submit(r, sink: c.sink(0))
        for _ in 0..<(crowd ? 4 : 1) { c.wait(seconds: 120) }
        #expect(c.failure(0) == nil)
        return c.result(0).0
    }
    var reference: [[Int32]] = []
    do {
        let plain = try realScheduler(path) { $0.speculation.mode = .off; $0.prefixCaching = false }
        defer { plain.stop() }
        for r in requests { reference.append(try run(plain, r, crowd: false)) }
    }
    // A fixed draft-row cost: the draft lengths, and so the counts below, depend on the text alone.
    let fast = try realScheduler(path) { $0.prefixCaching = false; $0.speculation.fixedRowShare = 0.1 }
    defer { fast.stop() }
    for (r, ref) in zip(requests, reference) {
        #expect(ref.count == 48)
        #expect(try run(fast, r, crowd: false) == ref, "alone: \(tok.decode(ref))")
        #expect(try run(fast, r, crowd: true) == ref, "batched")
    }
    var waited = 0
    while fast.snapshot.running != 0 && waited < 400 { usleep(5000); waited += 1 }
    let st = fast.snapshot
    #expect(st.specAccepted * 2 > st.specDrafted && st.specAccepted > 48, "\(st.specAccepted) of \(st.specDrafted) draft tokens accepted")
}
