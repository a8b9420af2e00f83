// Continuous batching (vLLM v1's model): every step, each running sequence gets its next decode token
// and prefilling sequences get whole prompt chunks within a per-step token budget, so long prompts
// never stall running streams. Requests join and leave between steps. Admission is by KV memory: a
// request waits while its full KV need (prompt + max tokens) does not fit the budget; the waiting
// queue is bounded. Prompt chunks end at fixed positions (multiples of `chunkTokens`), so a
// sequence's arithmetic never depends on what else is running (see Transformer).
// A group of requests with one prompt (n > 1 choices) runs the prompt once: the other members wait
// attached to the leader, and when its last prompt chunk is done they get a copy of its KV cache and
// sample their first token from the same logits. Each member's output is what it would be alone.
import Kernels
import Model
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

public final class Scheduler: @unchecked Sendable {
    final class Sequence {
        let id: Int
        let request: GenerationRequest
        let sink: GenerationSink
        var kv: SequenceKV?
        var prefilled = 0
        var pending: Int32?
        var generated = 0
        var sampler: Sampler
        var decoder = StreamingDecoder()
        var stopper: StopMatcher
        let submitted: Double
        var lastTokenAt = 0.0
        /// Prompt token scores so far (requests with `promptLogprobs`).
        var promptScores: [SampledToken] = []
        /// Members of this sequence's group still waiting for its prompt (forked when it is done).
        var followers: [Sequence] = []
        /// Prompt tokens taken from the prefix cache (the group's leader's, for every member).
        var cachedTokens = 0
        init(id: Int, request: GenerationRequest, sink: @escaping GenerationSink, now: Double) {
            self.id = id; self.request = request; self.sink = sink; submitted = now
            sampler = Sampler(params: request.params, prompt: request.prompt)
            stopper = StopMatcher(request.stop)
        }
    }

    public let model: Transformer
    public let tokenizer: Tokenizer
    public let config: SchedulerConfig
    public let cache: KVCache
    private var m = pthread_mutex_t(), cv = pthread_cond_t()
    // Guarded by m.
    private var incoming: [Sequence] = []
    private var cancelled = Set<Int>()
    private var stopping = false
    private var nextID = 1
    private var statsShared = SchedulerStats()
    // Engine thread only.
    private var waiting: [Sequence] = []
    private var running: [Sequence] = []
    private var prefillOrder: [Sequence] = []
    private var stats = SchedulerStats()
    private var thread: pthread_t?

    public init(model: Transformer, tokenizer: Tokenizer, config: SchedulerConfig) {
        self.model = model
        self.tokenizer = tokenizer
        self.config = config
        precondition(config.chunkTokens % config.kvBlockTokens == 0,
                     "prompt chunks end on KV block boundaries (a cached prefix then continues exactly as a cold run)")
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
        guard let first = group.first, !first.0.prompt.isEmpty else { throw .emptyPrompt }
        precondition(group.allSatisfy { $0.0.prompt == first.0.prompt && $0.0.promptLogprobs == first.0.promptLogprobs },
                     "a group shares one prompt (and its scoring)")
        let ctx = model.config.contextLength
        var need = 0
        for (request, _) in group {
            guard request.prompt.count + request.maxTokens <= ctx else {
                throw .exceedsContext(promptTokens: request.prompt.count, maxTokens: request.maxTokens, context: ctx)
            }
            need += cache.bytesReserved(tokens: request.prompt.count + request.maxTokens, step: config.chunkTokens)
        }
        guard need <= config.kvBudgetBytes else { throw .exceedsKVBudget(needed: need, budget: config.kvBudgetBytes) }
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        if stopping { throw .stopped }
        let queued = incoming.count + statsShared.waiting
        guard queued < config.maxQueue else { throw .queueFull(waiting: queued) }
        let now = monotonicSeconds()
        let members = group.map { (request, sink) in
            let s = Sequence(id: nextID, request: request, sink: sink, now: now)
            nextID += 1
            return s
        }
        members[0].followers = Array(members.dropFirst())
        incoming.append(members[0])
        pthread_cond_signal(&cv)
        return members.map(\.id)
    }

    /// Cancels a request (it is dropped before the next step; its KV is freed).
    public func cancel(_ id: Int) {
        pthread_mutex_lock(&m)
        cancelled.insert(id)
        pthread_cond_signal(&cv)
        pthread_mutex_unlock(&m)
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
            while incoming.isEmpty && waiting.isEmpty && running.isEmpty && !stopping && cancelled.isEmpty {
                pthread_cond_wait(&cv, &m)
            }
            let new = incoming, gone = cancelled, stop = stopping
            incoming = []; cancelled = []
            pthread_mutex_unlock(&m)
            waiting += new
            if stop {
                for s in waiting + running { fail(s, SchedulerError.stopped.description) }
                waiting = []; running = []
                publish()
                return
            }
            if !gone.isEmpty {
                for s in waiting + running {
                    for f in s.followers where gone.contains(f.id) { release(f) }
                    s.followers.removeAll { gone.contains($0.id) }
                }
                for s in running where gone.contains(s.id) { release(s) }
                running.removeAll { gone.contains($0.id) }
                waiting.removeAll { gone.contains($0.id) }
            }
            admit()
            if !running.isEmpty { step() }
            publish()
        }
    }

    private func admit() {
        while let s = waiting.first {
            let members = [s] + s.followers
            // A group larger than maxRunning still runs, alone.
            guard running.isEmpty || running.count + members.count <= config.maxRunning else { break }
            // The leader takes the longest cached prefix of the prompt; the other members fork from it
            // when its prompt is done. Prompt scoring needs every position's logits: no hit, not cached.
            var kvs: [SequenceKV] = []
            for (i, mbr) in members.enumerated() {
                let kv = cache.newSequence(salt: mbr.request.cacheSalt, cacheable: mbr.request.promptLogprobs == nil)
                guard cache.admit(kv, prompt: i == 0 ? mbr.request.prompt : [],
                                  maxLength: mbr.request.prompt.count + mbr.request.maxTokens, step: config.chunkTokens) else {
                    cache.release(kv)
                    break
                }
                kvs.append(kv)
            }
            guard kvs.count == members.count else {
                for kv in kvs { cache.release(kv) }
                break   // head-of-line waits for memory (FIFO keeps it fair)
            }
            for (mbr, kv) in zip(members, kvs) { mbr.kv = kv }
            s.prefilled = s.kv!.length
            s.cachedTokens = s.prefilled
            waiting.removeFirst()
            running.append(s)
        }
    }

    private func step() {
        var items: [BatchItem] = []
        var owners: [Sequence] = []
        var budget = config.maxBatchTokens
        for s in running where s.pending != nil {
            items.append(BatchItem(seq: s.kv!, tokens: [s.pending!], logits: .last))
            owners.append(s)
            budget -= 1
        }
        var scoredRows = 0
        // Prompt chunks: the longest-waiting prompt first (it always progresses), then the others by
        // the tokens they have left, fewest first, so a request whose prompt is mostly cached (a
        // follow-up, a conversation's next turn) starts within a step or two instead of queueing
        // behind long cold prompts. Chunk boundaries are positions, so the order never changes results.
        prefillOrder.removeAll(keepingCapacity: true)
        for s in running where s.prefilled < s.request.prompt.count { prefillOrder.append(s) }
        if prefillOrder.count > 2 {
            prefillOrder[1...].sort { ($0.request.prompt.count - $0.prefilled, $0.id) < ($1.request.prompt.count - $1.prefilled, $1.id) }
        }
        for s in prefillOrder {
            let p = s.request.prompt
            let scored = s.request.promptLogprobs != nil
            let chunk = scored ? config.scoredChunkTokens : config.chunkTokens
            let end = min(p.count, (s.prefilled / chunk + 1) * chunk)
            let n = end - s.prefilled
            if scored && scoredRows + n > config.maxScoredRows && !items.isEmpty { continue }
            if n > budget && !items.isEmpty { continue }
            let logits: BatchItem.LogitsWanted = scored ? .all : end == p.count ? .last : .none
            items.append(BatchItem(seq: s.kv!, tokens: Array(p[s.prefilled..<end]), logits: logits))
            owners.append(s)
            budget -= n
            if scored { scoredRows += n }
            if budget <= 0 { break }
        }
        stats.batchSize.observe(Double(items.count))
        let logits: Logits
        do {
            logits = try model.forward(items, cache: cache)
        } catch {
            for s in owners { fail(s, "\(error)") }
            let ids = Set(owners.map(\.id))
            running.removeAll { ids.contains($0.id) }
            return
        }
        let now = monotonicSeconds()
        var row = 0
        var done = Set<Int>()
        for (item, s) in zip(items, owners) {
            let rows = item.logits == .all ? item.tokens.count : item.logits == .last ? 1 : 0
            let first = row
            row += rows
            let decoding = s.pending != nil
            if decoding { s.pending = nil } else {
                if let top = s.request.promptLogprobs { score(s, logits: logits, firstRow: first, count: item.tokens.count, top: top) }
                s.prefilled += item.tokens.count
                stats.promptTokens += item.tokens.count
            }
            guard decoding || s.prefilled == s.request.prompt.count else {
                if !s.sink(.prefilling(done: s.prefilled, total: s.request.prompt.count)) { release(s); done.insert(s.id) }
                continue
            }
            let r = logits.row(first + rows - 1)
            if decoding {
                if sample(s, r, now: now) { done.insert(s.id) }
                continue
            }
            // The prompt is done: the group's other members take a copy of its KV and these logits.
            let members = [s] + s.followers
            for f in s.followers {
                cache.fork(from: s.kv!, to: f.kv!)
                f.prefilled = f.request.prompt.count
                f.promptScores = s.promptScores
                f.cachedTokens = s.cachedTokens
            }
            s.followers = []
            for mbr in members where !startGenerating(mbr, r, now: now) {
                if mbr !== s { running.append(mbr) }
            }
            if s.kv == nil { done.insert(s.id) }
        }
        if !done.isEmpty { running.removeAll { done.contains($0.id) } }
    }

    /// Scores the prompt tokens that follow a chunk of `count` tokens at `s.prefilled` (row j of the
    /// chunk predicts the token after its position).
    private func score(_ s: Sequence, logits: Logits, firstRow: Int, count: Int, top: Int) {
        let p = s.request.prompt
        for j in 0..<count where s.prefilled + j + 1 < p.count {
            s.promptScores.append(Sampler.score(logits.row(firstRow + j), token: p[s.prefilled + j + 1], top: top))
        }
    }

    /// After the prompt: sends the prompt scores (if asked), then samples the first token, or ends a
    /// score-only request (max tokens 0). Returns true when the sequence is finished.
    private func startGenerating(_ s: Sequence, _ row: UnsafeBufferPointer<Float>, now: Double) -> Bool {
        if s.request.promptLogprobs != nil, !s.sink(.promptLogprobs(s.promptScores)) { release(s); return true }
        if s.request.maxTokens == 0 {
            _ = s.sink(.finished(.length, promptTokens: s.request.prompt.count, completionTokens: 0, cachedTokens: s.cachedTokens))
            stats.requestsFinished += 1
            release(s)
            return true
        }
        return sample(s, row, now: now)
    }

    /// Samples the next token of `s` and emits it. Returns true when the sequence is finished.
    private func sample(_ s: Sequence, _ row: UnsafeBufferPointer<Float>, now: Double) -> Bool {
        let t = s.sampler.sample(row)
        s.generated += 1
        stats.generatedTokens += 1
        if s.generated == 1 { stats.timeToFirstToken.observe(now - s.submitted) } else { stats.interTokenLatency.observe(now - s.lastTokenAt) }
        s.lastTokenAt = now
        if !s.request.ignoreEOS && tokenizer.isEndOfGeneration(t.token) {
            let rest = s.stopper.push(s.decoder.flush()).emit + s.stopper.flush()
            return finish(s, .stop, last: (t, rest))
        }
        let (text, stopped) = s.stopper.push(s.decoder.append(tokenizer.pieceBytes(t.token)))
        if stopped { return finish(s, .stop, last: (t, text)) }
        if s.generated >= s.request.maxTokens {
            return finish(s, .length, last: (t, text + s.stopper.push(s.decoder.flush()).emit + s.stopper.flush()))
        }
        if !s.sink(.token(t, text: text)) { release(s); return true }
        s.pending = t.token
        return false
    }

    private func finish(_ s: Sequence, _ reason: FinishReason, last: (SampledToken, String)) -> Bool {
        if s.sink(.token(last.0, text: last.1)) {
            _ = s.sink(.finished(reason, promptTokens: s.request.prompt.count, completionTokens: s.generated,
                                 cachedTokens: s.cachedTokens))
        }
        stats.requestsFinished += 1
        release(s)
        return true
    }

    /// Frees a sequence's KV, and that of group members still waiting for its prompt.
    private func release(_ s: Sequence) {
        if let kv = s.kv { cache.release(kv); s.kv = nil }
        for f in s.followers { release(f) }
    }

    /// Reports a failure to a sequence and the group members waiting on it, and frees their KV.
    private func fail(_ s: Sequence, _ message: String) {
        for f in s.followers { _ = f.sink(.failed(message)) }
        _ = s.sink(.failed(message))
        release(s)
    }

    private func publish() {
        stats.running = running.count
        stats.waiting = waiting.count
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
