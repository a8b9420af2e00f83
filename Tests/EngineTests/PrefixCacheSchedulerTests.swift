// Prefix caching through the scheduler on the synthetic model (blocks of 8, chunks of 16): follow-up
// requests take the cached prefix and answer exactly as a cold server does; a conversation's next turn
// reuses the tokens the last one generated; salts and `prefixCaching` off keep requests apart; cached
// blocks never keep a new request waiting.
import Foundation
import Model
import Testing
@testable import Engine

/// Runs requests one after the other on `s`; returns each one's tokens and cached-token count.
func runInTurn(_ s: Scheduler, _ requests: [GenerationRequest]) throws -> [([Int32], Int)] {
    let c = Collector()
    var out: [([Int32], Int)] = []
    for (i, r) in requests.enumerated() {
        try s.submit(r, sink: c.sink(i))
        c.wait("request \(i)")
        #expect(c.failure(i) == nil, "request \(i) failed: \(c.failure(i) ?? "")")
        out.append((c.result(i).0, c.cachedTokens(i) ?? -1))
    }
    return out
}

@Test(arguments: [SamplingParams.greedy, SamplingParams(temperature: 0.9, topK: 20, seed: 77)])
func followUpsTakeTheCachedPrefixAndAnswerAsAColdServer(params: SamplingParams) throws {
    let doc = prompt(11, length: 90)
    let asks = [doc + [280, 281, 282], doc + [283, 284], doc + [280, 281, 282], Array(doc[0..<50]) + [285]]
    let requests = asks.map { GenerationRequest(prompt: $0, maxTokens: 12, params: params, ignoreEOS: true) }
    let warm = try makeScheduler(); defer { warm.stop() }
    let hot = try runInTurn(warm, requests)
    // Cold: each request alone on a server without the cache.
    var cold: [[Int32]] = []
    for r in requests {
        let s = try makeScheduler { $0.prefixCaching = false }
        cold.append(try runInTurn(s, [r])[0].0)
        s.stop()
    }
    // Whole blocks of 8 short of the last token; the exact repeat (request 2) takes the whole prompt
    // with its last row's logits and computes nothing.
    #expect(hot.map(\.1) == [0, 88, 93, 48])
    for i in requests.indices { #expect(hot[i].0 == cold[i], "request \(i) differs from a cold run") }
    #expect(warm.snapshot.prefix.hitTokens == 88 + 93 + 48)
}

@Test func aConversationsNextTurnReusesWhatItGenerated() throws {
    let s = try makeScheduler(); defer { s.stop() }
    let turn1 = prompt(12, length: 30)
    let first = try runInTurn(s, [GenerationRequest(prompt: turn1, maxTokens: 21, params: .greedy, ignoreEOS: true)])[0]
    // The next turn sends the history back: the prompt, the answer, a new message. Computed so far:
    // the prompt and all but the last generated token (30 + 20 = 50 positions: 6 whole blocks).
    let turn2 = turn1 + first.0 + [280, 281, 282, 283]
    let second = try runInTurn(s, [GenerationRequest(prompt: turn2, maxTokens: 4, params: .greedy, ignoreEOS: true)])[0]
    #expect(second.1 == 48)
    #expect(second.0.count == 4)
}

@Test func saltsAndTheSwitchKeepRequestsApart() throws {
    let p = prompt(13, length: 40)
    let s = try makeScheduler(); defer { s.stop() }
    let r = { (salt: String?) in GenerationRequest(prompt: p, maxTokens: 2, params: .greedy, ignoreEOS: true, cacheSalt: salt) }
    #expect(try runInTurn(s, [r("a"), r("b"), r("a"), r(nil)]).map(\.1) == [0, 0, 40, 0])
    let off = try makeScheduler { $0.prefixCaching = false }; defer { off.stop() }
    #expect(try runInTurn(off, [r(nil), r(nil)]).map(\.1) == [0, 0])
    #expect(off.snapshot.kvCached == 0 && off.snapshot.prefix.hitTokens == 0)
    // Prompt scoring needs every position's logits: it neither takes nor leaves cached blocks.
    let scored = GenerationRequest(prompt: p, maxTokens: 1, params: .greedy, ignoreEOS: true, promptLogprobs: 1)
    #expect(try runInTurn(s, [scored]).map(\.1) == [0])
}

/// A budget full of cached blocks admits new requests at once (evicting), instead of waiting.
@Test func cachedBlocksNeverKeepARequestWaiting() throws {
    let probe = try makeScheduler()
    let per = probe.cache.bytesReserved(tokens: 60, step: probe.config.chunkTokens)
    probe.stop()
    let s = try makeScheduler { $0.kvBudgetBytes = per * 2 }; defer { s.stop() }
    _ = try runInTurn(s, (0..<6).map { GenerationRequest(prompt: prompt(20 + $0, length: 40), maxTokens: 20, params: .greedy, ignoreEOS: true) })
    #expect(s.snapshot.kvCached > 0)
    let c = Collector()
    for i in 0..<2 { try s.submit(GenerationRequest(prompt: prompt(40 + i, length: 40), maxTokens: 20, params: .greedy, ignoreEOS: true), sink: c.sink(i)) }
    c.wait("first of two"); c.wait("second of two")
    #expect(c.result(0).2 == .length && c.result(1).2 == .length)
    #expect(s.snapshot.prefix.evictions > 0)
    #expect(s.snapshot.kvAllocated <= per * 2)
}
