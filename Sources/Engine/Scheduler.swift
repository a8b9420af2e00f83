// The engine loop: one thread that owns the scheduler's state (`SchedulerCore`), the KV cache, the model
// and every request's output processor (`RequestOutput`), and turns plan -> forward -> outputs -> update
// each step. Requests join and leave between steps; `submit` validates and queues from any thread, and
// a request's events go to its sink on the engine thread (a sink returning false cancels it).
import Kernels
import Model
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

public final class Scheduler: @unchecked Sendable {
    /// A request's engine-side state beside the scheduler's: where its events go and its output.
    struct Client {
        let sink: GenerationSink
        var output: RequestOutput
        let submitted: Double
        var lastTokenAt = 0.0
    }

    public let model: Transformer
    public let tokenizer: Tokenizer
    public let config: SchedulerConfig
    public let cache: KVCache
    private var m = pthread_mutex_t(), cv = pthread_cond_t()
    // Guarded by m.
    private var incoming: [[(id: Int, request: GenerationRequest, sink: GenerationSink, at: Double)]] = []
    private var cancelled = Set<Int>()
    private var stopping = false
    private var nextID = 1
    private var statsShared = SchedulerStats()
    // Engine thread only.
    private var core: SchedulerCore
    private var clients: [Int: Client] = [:]
    private var stats = SchedulerStats()
    private var thread: pthread_t?

    public init(model: Transformer, tokenizer: Tokenizer, config: SchedulerConfig) {
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        // A draft's rows must stay on the row kernels (the same arithmetic as single decode tokens).
        var coreConfig = config
        coreConfig.speculation.maxDraft = min(config.speculation.maxDraft, model.matmul.blasMinRows - 2)
        core = SchedulerCore(config: coreConfig)
        cache = model.makeCache(budgetBytes: config.kvBudgetBytes, blockTokens: config.kvBlockTokens,
                                type: config.kvCacheType, prefixCaching: config.prefixCaching)
        pthread_mutex_init(&m, nil)
        pthread_cond_init(&cv, nil)
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        pthread_create(&t, nil, { arg in
            Unmanaged<Scheduler>.fromOpaque(arg!).takeRetainedValue().loop()
            return nil
        }, box.toOpaque())
        thread = t
    }

    /// Queues a request; events go to `sink` on the engine thread. Returns the request's id.
    @discardableResult
    public func submit(_ request: GenerationRequest, sink: @escaping GenerationSink) throws(SchedulerError) -> Int {
        try submit(group: [(request, sink)])[0]
    }

    /// Queues requests that share one prompt (their sampling, stops and max tokens may differ): the
    /// prompt is processed once. Returns their ids, in order.
    @discardableResult
    public func submit(group: [(GenerationRequest, GenerationSink)]) throws(SchedulerError) -> [Int] {
        try submit(groups: [group])[0]
    }

    /// Queues several groups (a request with several prompts) all or none: when any is refused, none
    /// is queued, so the caller can still answer with a plain error status before sending anything.
    /// Each group takes one place in the queue. Returns each group's ids, in order.
    @discardableResult
    public func submit(groups: [[(GenerationRequest, GenerationSink)]]) throws(SchedulerError) -> [[Int]] {
        let ctx = model.config.contextLength
        for group in groups {
            guard let first = group.first, !first.0.prompt.isEmpty else { throw .emptyPrompt }
            precondition(group.allSatisfy { $0.0.prompt == first.0.prompt && $0.0.promptLogprobs == first.0.promptLogprobs },
                         "a group shares one prompt (and its scoring)")
            var need = 0
            for (request, _) in group {
                guard request.prompt.count + request.maxTokens <= ctx else {
                    throw .exceedsContext(promptTokens: request.prompt.count, maxTokens: request.maxTokens, context: ctx)
                }
                need += cache.bytesReserved(tokens: request.prompt.count + request.maxTokens, step: config.chunkTokens)
            }
            guard need <= config.kvBudgetBytes else { throw .exceedsKVBudget(needed: need, budget: config.kvBudgetBytes) }
        }
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        if stopping { throw .stopped }
        let queued = incoming.count + statsShared.waiting
        guard queued + groups.count <= config.maxQueue else { throw .queueFull(waiting: queued) }
        let now = monotonicSeconds()
        let ids = groups.map { group in
            let members = group.map { (request, sink) in
                defer { nextID += 1 }
                return (id: nextID, request: request, sink: sink, at: now)
            }
            incoming.append(members)
            return members.map(\.id)
        }
        pthread_cond_signal(&cv)
        return ids
    }

    /// Cancels a request (it is dropped before the next step; its KV is freed).
    public func cancel(_ id: Int) {
        pthread_mutex_lock(&m)
        cancelled.insert(id)
        pthread_cond_signal(&cv)
        pthread_mutex_unlock(&m)
    }

    /// Whether a submission now would be refused for a full queue: a cheap early answer for a caller
    /// about to spend time on a request (tokenizing a long prompt); `submit` still decides.
    public var queueIsFull: Bool {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return incoming.count + statsShared.waiting >= config.maxQueue
    }

    public var snapshot: SchedulerStats {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        var s = statsShared
        s.waiting += incoming.count
        return s
    }

    /// Stops the engine thread after failing all queued and running requests.
    public func stop() {
        pthread_mutex_lock(&m)
        stopping = true
        pthread_cond_signal(&cv)
        pthread_mutex_unlock(&m)
        if let t = thread { pthread_join(t, nil); thread = nil }
    }

    // MARK: engine thread

    private func loop() {
        while true {
            pthread_mutex_lock(&m)
            while incoming.isEmpty && core.isIdle && !stopping && cancelled.isEmpty {
                pthread_cond_wait(&cv, &m)
            }
            let new = incoming, gone = cancelled, stop = stopping
            incoming = []; cancelled = []
            statsShared.waiting += new.count   // still queued until admitted: the queue bound counts them
            pthread_mutex_unlock(&m)
            for group in new {
                for r in group { clients[r.id] = Client(sink: r.sink, output: RequestOutput(r.request), submitted: r.at) }
                core.add(group: group.map { ($0.id, $0.request) })
            }
            if stop {
                fail(Set(core.ids), SchedulerError.stopped.description)
                publish()
                return
            }
            if !gone.isEmpty { for id in core.remove(gone, cache: cache) { clients[id] = nil } }
            let items = core.schedule(cache: cache)
            if !items.isEmpty { step(items) }
            publish()
        }
    }

    /// Runs a planned step and applies its outputs.
    private func step(_ items: [SchedulerCore.Item]) {
        stats.batchSize.observe(Double(items.count))
        let start = monotonicSeconds()
        let logits: Logits
        do {
            logits = try model.forward(items.compactMap(\.batch), cache: cache)
        } catch {
            fail(Set(items.map(\.id)), "\(error)")
            return
        }
        let now = monotonicSeconds()
        var outcomes: [Int: SchedulerCore.Outcome] = [:]
        var row = 0
        for item in items {
            guard let b = item.batch else {
                // A prompt that came whole from the cache: its members sample from the stored row.
                let stored = takeCachedLogits(item)
                stored.withUnsafeBufferPointer { r in
                    for mbr in item.members { outcomes[mbr] = next(mbr, r, leader: item.id, first: true, now: now) }
                }
                continue
            }
            let rows = b.logits == .all ? b.tokens.count : b.logits == .last ? 1 : 0
            let first = row
            row += rows
            if !item.decoding {
                if b.logits == .all { clients[item.id]?.output.score(logits, firstRow: first, start: item.start, count: b.tokens.count) }
                stats.promptTokens += b.tokens.count
                guard !item.members.isEmpty else {
                    let total = clients[item.id]?.output.request.prompt.count ?? 0
                    if !send(item.id, .prefilling(done: item.start + b.tokens.count, total: total)) { outcomes[item.id] = .finished }
                    continue
                }
            }
            if item.decoding && b.tokens.count > 1 {
                outcomes[item.id] = verify(item.id, draft: b.tokens[1...], logits: logits, firstRow: first, now: now)
                continue
            }
            let r = logits.row(first + rows - 1)
            if !item.decoding, let prompt = clients[item.id]?.output.request.prompt {
                cache.snapshotTail(b.seq, prompt: prompt, logits: r)   // an exact repeat will compute nothing
            }
            for mbr in item.members { outcomes[mbr] = next(mbr, r, leader: item.id, first: !item.decoding, now: now) }
        }
        if items.allSatisfy(\.decoding) {
            core.observeStep(sequences: items.count, draftRows: items.reduce(0) { $0 + ($1.batch?.tokens.count ?? 1) - 1 },
                             seconds: monotonicSeconds() - start)
        }
        for id in core.update(items, outcomes: outcomes, cache: cache) { clients[id] = nil }
    }

    /// Samples a speculative item's rows in order while each sampled token is the draft's next one:
    /// the outcome says how many draft tokens were accepted and the token to go on with.
    private func verify(_ id: Int, draft: ArraySlice<Int32>, logits: Logits, firstRow: Int, now: Double) -> SchedulerCore.Outcome {
        stats.specSteps += 1
        stats.specDrafted += draft.count
        for j in 0...draft.count {
            let o = next(id, logits.row(firstRow + j), leader: id, first: false, now: now)
            guard case let .next(t) = o else {
                stats.specAccepted += j
                return o
            }
            if j < draft.count && t == draft[draft.startIndex + j] { continue }
            stats.specAccepted += j
            return .accepted(j, next: t)
        }
        preconditionFailure("unreachable: the last row always returns")
    }

    /// The stored last-row logits of a prompt that came whole from the cache (taken once).
    private func takeCachedLogits(_ item: SchedulerCore.Item) -> [Float] {
        guard let kv = core.kv(item.id), let l = kv.cachedLogits else { preconditionFailure("a cached prompt without its logits") }
        kv.cachedLogits = nil
        return l
    }

    /// A member's next token from `row` (at the end of its prompt: after the prompt's events, and
    /// with its leader's prompt scores and cached tokens). Returns the request's outcome.
    private func next(_ id: Int, _ row: UnsafeBufferPointer<Float>, leader: Int, first: Bool, now: Double) -> SchedulerCore.Outcome {
        guard var c = clients[id] else { return .finished }
        if first {
            c.output.cachedTokens = core.cachedTokens(leader)
            if id != leader, let l = clients[leader] { c.output.adoptPromptScores(from: l.output) }
            for ev in c.output.promptDone() {
                guard c.sink(ev) else { return .finished }
                if case .finished = ev { stats.requestsFinished += 1; return .finished }
            }
        }
        let (t, events) = c.output.next(row, tokenizer: tokenizer)
        stats.generatedTokens += 1
        if c.output.generated == 1 { stats.timeToFirstToken.observe(now - c.submitted) } else { stats.interTokenLatency.observe(now - c.lastTokenAt) }
        c.lastTokenAt = now
        clients[id] = c
        for ev in events {
            guard c.sink(ev) else { return .finished }
            if case .finished = ev { stats.requestsFinished += 1; return .finished }
            if case .failed = ev { return .finished }
        }
        return .next(t.token)
    }

    private func send(_ id: Int, _ ev: GenerationEvent) -> Bool { clients[id]?.sink(ev) ?? false }

    /// Reports a failure to requests (and the group members waiting on them) and frees their KV.
    private func fail(_ ids: Set<Int>, _ message: String) {
        for id in core.remove(ids, cache: cache) {
            _ = clients[id]?.sink(.failed(message))
            clients[id] = nil
        }
    }

    private func publish() {
        stats.running = core.runningCount
        stats.peakRunning = core.peakRunning
        stats.waiting = core.waitingCount
        stats.kvInUse = cache.bytesInUse
        stats.kvAllocated = cache.allocatedBytes
        stats.kvCached = cache.cachedBytes
        stats.prefix = cache.prefixStats
        stats.kvBlockTokens = cache.blockTokens
        stats.kvCacheType = cache.type.rawValue
        stats.prefixCaching = cache.prefixCaching
        stats.kvBudget = config.kvBudgetBytes
        pthread_mutex_lock(&m)
        statsShared = stats
        pthread_mutex_unlock(&m)
    }
}
