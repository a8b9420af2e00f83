// Continuous batching on the synthetic model: same output alone or among 15 others (greedy and
// seeded), cancellation frees KV, admission waits for KV memory, the queue is bounded, stop strings.
import Foundation
import GGUF
import Kernels
import Model
import Testing
import TestSupport
import Tokenizer
@testable import Engine

final class Collector: @unchecked Sendable {
    private let lock = NSLock()
    private var tokens: [Int: [Int32]] = [:]
    private var texts: [Int: String] = [:]
    private var finished: [Int: FinishReason] = [:]
    private var scores: [Int: [SampledToken]] = [:]
    private var cached: [Int: Int] = [:]
    private var failures: [Int: String] = [:]
    let done = DispatchSemaphore(value: 0)
    func sink(_ key: Int, stopAfter: Int = Int.max) -> GenerationSink {
        { ev in
            self.lock.lock(); defer { self.lock.unlock() }
            switch ev {
            case let .token(t, text):
                self.tokens[key, default: []].append(t.token)
                self.texts[key, default: ""] += text
                if self.tokens[key]!.count >= stopAfter { self.done.signal(); return false }
            case let .finished(r, _, _, c): self.finished[key] = r; self.cached[key] = c; self.done.signal()
            case let .failed(m): self.failures[key] = m; self.done.signal()
            case .prefilling: break
            case let .promptLogprobs(sc):
                #expect(self.tokens[key] == nil, "prompt scores come before any token")
                self.scores[key] = sc
            }
            return true
        }
    }
    func result(_ k: Int) -> ([Int32], String, FinishReason?) { lock.lock(); defer { lock.unlock() }; return (tokens[k] ?? [], texts[k] ?? "", finished[k]) }
    func promptScores(_ k: Int) -> [SampledToken]? { lock.lock(); defer { lock.unlock() }; return scores[k] }
    func cachedTokens(_ k: Int) -> Int? { lock.lock(); defer { lock.unlock() }; return cached[k] }
    func failure(_ k: Int) -> String? { lock.lock(); defer { lock.unlock() }; return failures[k] }
    /// Waits for one finish (or failure), failing the test instead of hanging.
    func wait(_ what: String = "a request", seconds: Double = 60) {
        if done.wait(timeout: .now() + seconds) == .timedOut { Issue.record("\(what) did not finish within \(seconds) s") }
    }
}

func makeScheduler(_ configure: (inout SchedulerConfig) -> Void = { _ in }) throws -> Scheduler {
    let path = try SyntheticModel.write(context: 512)
    let model = try Transformer(path: path, pool: KernelPool(threads: 2))
    model.matmul.blasMinRows = 8
    var c = SchedulerConfig()
    c.chunkTokens = 16
    c.kvBlockTokens = 8
    c.maxBatchTokens = 40
    configure(&c)
    return Scheduler(model: model, tokenizer: try Tokenizer(file: model.weights.file), config: c)
}

func prompt(_ i: Int, length: Int) -> [Int32] { [2] + (0..<length - 1).map { Int32(260 + ($0 * 7 + i * 13) % 36) } }

@Test(arguments: [SamplingParams.greedy, SamplingParams(temperature: 0.9, topK: 20, seed: 1234)])
func sameOutputAloneOrAmongFifteenOthers(params: SamplingParams) throws {
    let s = try makeScheduler(); defer { s.stop() }
    let target = GenerationRequest(prompt: prompt(0, length: 45), maxTokens: 24, params: params, ignoreEOS: true)
    let alone = Collector()
    try s.submit(target, sink: alone.sink(0))
    alone.wait()
    let crowd = Collector()
    for i in 1..<16 {
        try s.submit(GenerationRequest(prompt: prompt(i, length: 5 + i * 5), maxTokens: 10 + i, params: SamplingParams(temperature: 1, seed: UInt64(i)), ignoreEOS: true), sink: crowd.sink(i))
    }
    try s.submit(target, sink: crowd.sink(0))
    for _ in 0..<16 { crowd.wait() }
    #expect(alone.result(0).0.count == 24)
    #expect(crowd.result(0).0 == alone.result(0).0)
    var waited = 0
    while s.snapshot.kvLive != 0 && waited < 200 { usleep(5000); waited += 1 }
    #expect(s.snapshot.kvLive == 0)
}

@Test func cancellationFreesKV() throws {
    let s = try makeScheduler(); defer { s.stop() }
    let c = Collector()
    try s.submit(GenerationRequest(prompt: prompt(1, length: 20), maxTokens: 400, params: .greedy, ignoreEOS: true), sink: c.sink(0, stopAfter: 3))
    c.wait()
    var waited = 0
    while s.snapshot.kvLive != 0 && waited < 200 { usleep(5000); waited += 1 }
    #expect(s.snapshot.kvLive == 0 && s.snapshot.running == 0)
    // Stopped where the sink said so: no more tokens sampled (400 had it run on), and no finish event.
    #expect(c.result(0).0.count == 3 && s.snapshot.generatedTokens == 3 && c.result(0).2 == nil)
}

@Test func admissionWaitsForKVMemory() throws {
    // Budget for about two sequences of 40 positions: the others wait, then all finish.
    let probe = try makeScheduler()
    let per = probe.cache.bytesReserved(tokens: 40, step: probe.config.chunkTokens)
    probe.stop()
    let s = try makeScheduler { $0.kvBudgetBytes = per * 2 + per / 2 }
    defer { s.stop() }
    let c = Collector()
    for i in 0..<5 { try s.submit(GenerationRequest(prompt: prompt(i, length: 20), maxTokens: 20, params: .greedy, ignoreEOS: true), sink: c.sink(i)) }
    var maxRunning = 0
    for _ in 0..<5 {
        let deadline = Date().addingTimeInterval(60)
        while c.done.wait(timeout: .now() + 0.002) == .timedOut {
            maxRunning = max(maxRunning, s.snapshot.running)
            if Date() > deadline { Issue.record("a request did not finish within 60 s"); break }
        }
    }
    #expect(maxRunning <= 2 && s.snapshot.peakRunning <= 2)   // (the sampled value, and the scheduler's own count)
    #expect(s.snapshot.peakRunning == 2, "two fit the budget at once")
    for i in 0..<5 { #expect(c.result(i).2 == .length) }
    // A request that could never fit the whole budget is refused at once instead of waiting forever.
    let tiny = try makeScheduler { $0.kvBudgetBytes = per / 2 }
    defer { tiny.stop() }
    #expect(throws: SchedulerError.self) {
        try tiny.submit(GenerationRequest(prompt: prompt(0, length: 20), maxTokens: 20, params: .greedy), sink: c.sink(9))
    }
}

@Test func boundedQueueAndContextChecks() throws {
    let s = try makeScheduler { $0.maxQueue = 2; $0.maxRunning = 1 }
    defer { s.stop() }
    let c = Collector()
    var refused = 0
    for i in 0..<6 {
        do { try s.submit(GenerationRequest(prompt: prompt(i, length: 30), maxTokens: 100, params: .greedy, ignoreEOS: true), sink: c.sink(i)) }
        catch SchedulerError.queueFull { refused += 1 }
    }
    // One runs, two wait, the rest are refused (one more if the first was not admitted yet).
    #expect(refused == 3 || refused == 4, "refused \(refused) of 6")
    #expect(throws: SchedulerError.exceedsContext(promptTokens: 500, maxTokens: 100, context: 512)) {
        try s.submit(GenerationRequest(prompt: prompt(0, length: 500), maxTokens: 100, params: .greedy), sink: c.sink(99))
    }
    #expect(throws: SchedulerError.emptyPrompt) { try s.submit(GenerationRequest(prompt: [], maxTokens: 1, params: .greedy), sink: c.sink(98)) }
}

@Test func queueIsFullAnswersAsSubmitWould() throws {
    let none = try makeScheduler { $0.maxQueue = 0 }
    defer { none.stop() }
    #expect(none.queueIsFull)
    let s = try makeScheduler { $0.maxQueue = 2; $0.maxRunning = 1 }
    defer { s.stop() }
    let c = Collector()
    #expect(!s.queueIsFull)
    let first = try s.submit(GenerationRequest(prompt: prompt(0, length: 20), maxTokens: 400, params: .greedy, ignoreEOS: true), sink: c.sink(0))
    let deadline = Date().addingTimeInterval(30)
    while s.snapshot.running == 0 && Date() < deadline { usleep(1000) }
    #expect(!s.queueIsFull, "one running, none waiting")
    let waiting = try (1...2).map { try s.submit(GenerationRequest(prompt: prompt($0, length: 20), maxTokens: 4, params: .greedy), sink: c.sink($0)) }
    #expect(s.queueIsFull, "two waiting behind the running one")
    #expect(throws: SchedulerError.self) { try s.submit(GenerationRequest(prompt: prompt(3, length: 20), maxTokens: 4, params: .greedy), sink: c.sink(3)) }
    for id in [first] + waiting { s.cancel(id) }
}

@Test func severalGroupsAreQueuedAllOrNone() throws {
    // An idle scheduler whose queue holds two groups: three at once are refused and none of them is
    // queued (a request with several prompts is answered 429 before anything of it runs); two run.
    let s = try makeScheduler { $0.maxQueue = 2 }
    defer { s.stop() }
    let c = Collector()
    func group(_ i: Int) -> [(GenerationRequest, GenerationSink)] {
        [(GenerationRequest(prompt: prompt(i, length: 20), maxTokens: 4, params: .greedy, ignoreEOS: true), c.sink(i))]
    }
    #expect(throws: SchedulerError.queueFull(waiting: 0)) { try s.submit(groups: [group(0), group(1), group(2)]) }
    #expect(s.snapshot.waiting == 0 && s.snapshot.running == 0)
    let ids = try s.submit(groups: [group(3), group(4)])
    #expect(ids.count == 2 && ids[0].count == 1 && ids[1].count == 1 && ids[0] != ids[1])
    c.wait(); c.wait()
    #expect(c.result(3).2 == .length && c.result(4).2 == .length)
    #expect((0..<3).allSatisfy { c.result($0).0.isEmpty && c.result($0).2 == nil }, "the refused groups never ran")
}

@Test func stopStringsNeverLeak() {
    var m = StopMatcher(["</end>", "STOP"])
    var out = ""
    for piece in ["Hello <", "/e", "nd", "> more"] {
        let (e, stopped) = m.push(piece)
        out += e
        if stopped { break }
    }
    #expect(out == "Hello ")
    var n = StopMatcher(["ab"])
    #expect(n.push("xa").emit == "x")      // "a" held: it may start "ab"
    #expect(n.push("c").emit == "ac")
    #expect(n.push("a").emit == "")
    #expect(n.flush() == "a")
    var u = StopMatcher(["é!"])
    let r = u.push("café!")
    #expect(r.emit == "caf" && r.stopped)
}

/// n > 1: a group runs its prompt once (prompt tokens counted once), and each member's output equals
/// the same request run alone, for a prompt longer than one chunk and the sliding window. With the
/// prefix cache on, the group's prompt is an exact repeat of the lone runs': nothing is computed, every
/// member samples from the stored logits, and the outputs are still the same.
@Test(arguments: [false, true])
func groupSharesOnePromptPassAndMatchesSeparateRuns(prefixCaching: Bool) throws {
    let s = try makeScheduler { $0.prefixCaching = prefixCaching }; defer { s.stop() }
    let p = prompt(3, length: 37)
    let params = (0..<3).map { SamplingParams(temperature: 0.8, seed: UInt64(100 + $0)) } + [SamplingParams.greedy]
    let requests = params.map { GenerationRequest(prompt: p, maxTokens: 12, params: $0, ignoreEOS: true) }
    let alone = Collector()
    for (i, r) in requests.enumerated() {
        try s.submit(r, sink: alone.sink(i))
        alone.wait()
    }
    let before = s.snapshot.promptTokens
    let group = Collector()
    let ids = try s.submit(group: requests.enumerated().map { ($1, group.sink($0)) })
    #expect(Set(ids).count == requests.count)
    for _ in requests { group.wait() }
    for i in requests.indices {
        #expect(group.result(i).0.count == 12)
        #expect(group.result(i).0 == alone.result(i).0, "member \(i)")
    }
    #expect(s.snapshot.promptTokens - before == (prefixCaching ? 0 : p.count))
    var waited = 0
    while s.snapshot.kvLive != 0 && waited < 200 { usleep(5000); waited += 1 }
    #expect(s.snapshot.kvLive == 0)
}

/// Cancelling a group before its prompt is done frees every member's KV.
@Test func cancelledGroupFreesAllMembers() throws {
    let s = try makeScheduler(); defer { s.stop() }
    let c = Collector()
    let r = GenerationRequest(prompt: prompt(5, length: 200), maxTokens: 50, params: .greedy, ignoreEOS: true)
    let ids = try s.submit(group: (0..<4).map { (r, c.sink($0)) })
    for id in ids { s.cancel(id) }
    var waited = 0
    while (s.snapshot.kvLive != 0 || s.snapshot.running != 0) && waited < 400 { usleep(5000); waited += 1 }
    #expect(s.snapshot.kvLive == 0)
    #expect(s.snapshot.running == 0)
}

/// echo + logprobs: prompt tokens 1... are scored in short chunks, and the scores match one forward
/// pass with logits at every position; a score-only request (max tokens 0) ends without a token; a
/// group's members all get the scores; a scoring request generates what it would without scoring.
@Test func promptScoresMatchOneForwardPass() throws {
    let s = try makeScheduler { $0.scoredChunkTokens = 8; $0.maxScoredRows = 16 }; defer { s.stop() }
    let p = prompt(3, length: 37)
    let model = try Transformer(path: try SyntheticModel.write(context: 512), pool: KernelPool(threads: 1))
    let cache = model.makeCache()
    let logits = try model.forward([BatchItem(seq: cache.newSequence(), tokens: p, logits: .all)], cache: cache)
    let want = (0..<p.count - 1).map { Sampler.score(logits.row($0), token: p[$0 + 1], top: 3) }

    let c = Collector()
    try s.submit(GenerationRequest(prompt: p, maxTokens: 0, params: .greedy, promptLogprobs: 3), sink: c.sink(0))
    let group = (1...2).map { k in (GenerationRequest(prompt: p, maxTokens: 5, params: .greedy, ignoreEOS: true, promptLogprobs: 3), c.sink(k)) }
    try s.submit(group: group)
    try s.submit(GenerationRequest(prompt: p, maxTokens: 5, params: .greedy, ignoreEOS: true), sink: c.sink(3))
    for _ in 0..<4 { c.wait() }

    let (t0, _, f0) = c.result(0)
    #expect(t0.isEmpty && f0 == .length)
    for k in 0...2 {
        let got = try #require(c.promptScores(k))
        #expect(got.count == p.count - 1)
        for (g, w) in zip(got, want) {
            #expect(g.token == w.token && abs(g.logprob - w.logprob) < 1e-3)
            #expect(g.top.count == 3 && zip(g.top, w.top).allSatisfy { abs($0.logprob - $1.logprob) < 1e-3 })
            #expect(g.logprob <= g.top[0].logprob + 1e-6)
        }
    }
    #expect(c.promptScores(3) == nil)
    #expect(c.result(1).0 == c.result(3).0 && c.result(2).0 == c.result(3).0 && c.result(3).0.count == 5)
}
