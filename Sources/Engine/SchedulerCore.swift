// The scheduler's decisions as a value, with no thread and no model (vLLM v1's Scheduler): it keeps the
// requests' states, and each step `schedule` admits what the KV memory allows and plans which sequences
// get how many tokens, and `update` moves them on with the step's outcomes. There is no prefill or
// decode mode, only "how many tokens does each sequence get this step": every decoding sequence its
// next token, then prompt chunks within the token budget, the longest-waiting prompt first and then the
// ones with the fewest tokens left (a mostly cached prompt starts at once). Chunks end at fixed
// positions (multiples of `chunkTokens`, themselves multiples of the KV block), so a sequence's
// arithmetic never depends on what else runs, or on whether its prefix came from the cache.
//
// A group of requests with one prompt (n > 1 choices) runs the prompt once: its leader takes the cached
// prefix and computes the rest, the other members wait attached to it and, when its last chunk is done,
// fork its KV (shared blocks) and sample their first token from the same logits row.
//
// A decoding sequence may carry a draft after its pending token (prompt-lookup speculation, see
// Speculation.swift): the item's rows are stored but not recorded, and `update` records the token and
// the accepted part of the draft.
import Model

public struct SchedulerCore {
    /// One request as the scheduler sees it.
    struct State {
        let request: GenerationRequest
        var kv: SequenceKV?
        /// Prompt positions computed (or taken from the cache).
        var prefilled = 0
        /// The sampled token whose KV the next decode step computes.
        var pending: Int32?
        /// Members of this leader's group waiting for its prompt.
        var followers: [Int] = []
        /// The whole prompt came from the cache with its last row's logits: sample without a forward.
        var ready = false
        /// Tokens sampled so far.
        var generated = 0
        /// Drafting state, for requests that may speculate.
        var draft: DraftState?
    }

    /// One sequence's share of a step.
    public struct Item {
        public let id: Int
        /// The forward pass's work; nil for a prompt that came whole from the cache (its members sample
        /// from `SequenceKV.cachedLogits`).
        public let batch: BatchItem?
        /// First position of the item's tokens.
        public let start: Int
        /// Whether the item is a decode token (else a prompt chunk).
        public let decoding: Bool
        /// Requests that sample from the item's last logits row this step: the sequence itself when
        /// decoding or finishing its prompt, with its group's waiting members in the latter case.
        public let members: [Int]
    }

    /// What the engine does with a sampled row.
    public enum Outcome: Sendable, Equatable {
        /// The request goes on with this token (computed by its next decode step).
        case next(Int32)
        /// A speculative item: its pending token and the first `accepted` draft tokens are the sequence's,
        /// and it goes on with `next` (sampled where the draft was rejected, or after a wholly accepted one).
        case accepted(Int, next: Int32)
        /// The request is done (finished, or nobody listens): its KV is freed.
        case finished
    }

    public let config: SchedulerConfig
    var states: [Int: State] = [:]
    /// Group leaders waiting for admission, first come first served.
    private(set) var waiting: [Int] = []
    /// Admitted sequences, in admission order.
    private(set) var running: [Int] = []
    private var order: [Int] = []   // reused: this step's prompt chunk order
    private let drafter: NGramDrafter
    /// Decode step time by sequences and draft rows, from the engine's steps (`observeStep`).
    public private(set) var cost: StepCostModel

    public init(config: SchedulerConfig) {
        precondition(config.chunkTokens % config.kvBlockTokens == 0,
                     "prompt chunks end on KV block boundaries (a cached prefix then continues exactly as a cold run)")
        self.config = config
        drafter = NGramDrafter(maxNgram: config.speculation.maxNgram, minNgram: config.speculation.minNgram)
        cost = StepCostModel(config.speculation)
    }

    /// Records how long a step of decode rows alone took (the draft length choice uses it).
    public mutating func observeStep(sequences: Int, draftRows: Int, seconds: Double) {
        cost.observe(sequences: sequences, draftRows: draftRows, seconds: seconds)
    }

    private func speculates(_ r: GenerationRequest) -> Bool {
        config.speculation.mode == .ngram && r.speculative && config.speculation.maxDraft > 0
    }

    public var runningCount: Int { running.count }
    /// The most sequences ever running at once (checked after every admission and fork).
    public private(set) var peakRunning = 0
    /// Requests waiting for admission (a group of n choices counts once, as the queue bound does).
    public var waitingCount: Int { waiting.count }
    public var isIdle: Bool { waiting.isEmpty && running.isEmpty }
    public var ids: [Int] { Array(states.keys) }
    /// The KV sequence of an admitted request.
    public func kv(_ id: Int) -> SequenceKV? { states[id]?.kv }
    /// Prompt tokens of `id` taken from the prefix cache (0 before admission).
    public func cachedTokens(_ id: Int) -> Int { states[id]?.kv?.cachedTokens ?? 0 }

    /// Queues requests that share one prompt; the first is the group's leader.
    public mutating func add(group: [(id: Int, request: GenerationRequest)]) {
        precondition(!group.isEmpty && group.allSatisfy { $0.request.prompt == group[0].request.prompt })
        for (id, r) in group { states[id] = State(request: r) }
        states[group[0].id]!.followers = group.dropFirst().map(\.id)
        waiting.append(group[0].id)
    }

    /// Drops requests (cancelled, failed): frees their KV, and that of the group members still waiting
    /// for a dropped leader's prompt. Returns every id dropped.
    @discardableResult
    public mutating func remove(_ ids: Set<Int>, cache: KVCache) -> [Int] {
        var gone: [Int] = []
        func drop(_ id: Int) {
            guard let s = states.removeValue(forKey: id) else { return }
            if let kv = s.kv { cache.release(kv) }
            gone.append(id)
            for f in s.followers { drop(f) }
        }
        for id in waiting + running {   // followers of a leader that stays
            guard !ids.contains(id), let fs = states[id]?.followers, fs.contains(where: ids.contains) else { continue }
            states[id]!.followers = fs.filter { !ids.contains($0) }
        }
        for id in ids { drop(id) }
        waiting.removeAll { states[$0] == nil }
        running.removeAll { states[$0] == nil }
        return gone
    }

    /// Admits waiting groups while the running limit and the KV memory allow (head of line first, so
    /// waiting is fair), then plans the step.
    public mutating func schedule(cache: KVCache) -> [Item] {
        admit(cache: cache)
        return plan()
    }

    private mutating func admit(cache: KVCache) {
        while let lead = waiting.first {
            let members = [lead] + states[lead]!.followers
            // A group larger than maxRunning still runs, alone.
            guard running.isEmpty || running.count + members.count <= config.maxRunning else { break }
            // The leader takes the longest cached prefix; the other members fork from it when its prompt
            // is done. Prompt scoring needs every position's logits: no hit, not cached.
            var kvs: [SequenceKV] = []
            for (i, id) in members.enumerated() {
                let r = states[id]!.request
                let kv = cache.newSequence(salt: r.cacheSalt, cacheable: r.promptLogprobs == nil)
                guard cache.admit(kv, prompt: i == 0 ? r.prompt : [], maxLength: r.prompt.count + r.maxTokens,
                                  step: config.chunkTokens) else {
                    cache.release(kv)
                    break
                }
                kvs.append(kv)
            }
            guard kvs.count == members.count else {
                for kv in kvs { cache.release(kv) }
                break   // head of line waits for memory
            }
            for (id, kv) in zip(members, kvs) {
                states[id]!.kv = kv
                let r = states[id]!.request
                if speculates(r) { states[id]!.draft = DraftState(prompt: r.prompt, capacity: r.prompt.count + r.maxTokens) }
            }
            states[lead]!.prefilled = kvs[0].length
            states[lead]!.ready = kvs[0].cachedLogits != nil
            waiting.removeFirst()
            running.append(lead)
            peakRunning = max(peakRunning, running.count)
        }
    }

    private mutating func plan() -> [Item] {
        var items: [Item] = []
        var budget = config.maxBatchTokens
        for id in running where states[id]!.ready {
            let s = states[id]!
            items.append(Item(id: id, batch: nil, start: s.prefilled, decoding: false, members: [id] + s.followers))
        }
        // Decode tokens; drafts only in steps of decode rows alone (a prompt chunk makes a step
        // compute-bound, and its time says nothing about decode rows).
        var decoding = 0
        for id in running where states[id]!.pending != nil { decoding += 1 }
        let drafting = config.speculation.mode == .ngram && !running.contains {
            states[$0]!.ready || states[$0]!.prefilled < states[$0]!.request.prompt.count
        }
        var expected = Double(decoding), draftRows = 0
        for id in running {
            guard var s = states[id], let t = s.pending else { continue }
            var tokens = [t]
            if drafting, var d = s.draft {
                // Room: the request's remaining tokens (the last row samples one more) and the step's draft rows.
                let room = min(config.speculation.maxDraft, s.request.maxTokens - s.generated - 1,
                               config.speculation.maxDraftRows - draftRows)
                let draft = d.propose(drafter, limit: room, sequences: decoding, draftRows: draftRows, tokens: expected - 1, cost: cost)
                tokens.append(contentsOf: draft)
                draftRows += draft.count
                expected += d.acceptance.expectedTokens(draft: draft.count) - 1
                s.draft = d
                states[id] = s
            } else if s.draft != nil {
                s.draft!.skip()
                states[id] = s
            }
            let spec = tokens.count > 1
            items.append(Item(id: id, batch: BatchItem(seq: s.kv!, tokens: tokens, logits: spec ? .all : .last, appends: !spec),
                              start: s.kv!.length, decoding: true, members: [id]))
            budget -= tokens.count
        }
        order.removeAll(keepingCapacity: true)
        for id in running where states[id]!.prefilled < states[id]!.request.prompt.count { order.append(id) }
        if order.count > 2 {
            let st = states
            func left(_ id: Int) -> Int { st[id]!.request.prompt.count - st[id]!.prefilled }
            order[1...].sort { (left($0), $0) < (left($1), $1) }
        }
        var scoredRows = 0
        for id in order {
            let s = states[id]!, p = s.request.prompt
            let scored = s.request.promptLogprobs != nil
            let chunk = scored ? config.scoredChunkTokens : config.chunkTokens
            let end = min(p.count, (s.prefilled / chunk + 1) * chunk)
            let n = end - s.prefilled
            if scored && scoredRows + n > config.maxScoredRows && !items.isEmpty { continue }
            if n > budget && !items.isEmpty { continue }
            let last = end == p.count
            items.append(Item(id: id, batch: BatchItem(seq: s.kv!, tokens: Array(p[s.prefilled..<end]),
                                                       logits: scored ? .all : last ? .last : .none),
                              start: s.prefilled, decoding: false, members: last ? [id] + s.followers : []))
            budget -= n
            if scored { scoredRows += n }
            if budget <= 0 { break }
        }
        return items
    }

    /// Applies a step that ran: prompt chunks advance (a finished prompt's waiting members fork its KV and
    /// join the batch), and every sampled member goes on or is done, as `outcomes` says (members without
    /// an outcome are unchanged). Returns the requests dropped (finished, and the members waiting on a
    /// leader that finished before its prompt did).
    @discardableResult
    public mutating func update(_ items: [Item], outcomes: [Int: Outcome], cache: KVCache) -> [Int] {
        var done = Set<Int>()
        for item in items {
            guard var s = states[item.id] else { continue }
            if item.decoding {
                s.pending = nil
                if let b = item.batch, !b.appends, outcomes[item.id] != .finished {
                    // A verified draft: record the token and the accepted draft tokens.
                    var a = 0
                    if case let .accepted(n, _)? = outcomes[item.id] { a = n }
                    cache.append(b.seq, Array(b.tokens[...a]))
                }
            } else {
                s.prefilled += item.batch?.tokens.count ?? 0
                s.ready = false
                if s.prefilled == s.request.prompt.count {
                    for f in s.followers {
                        cache.fork(from: s.kv!, to: states[f]!.kv!)
                        states[f]!.prefilled = states[f]!.request.prompt.count
                        running.append(f)
                    }
                    peakRunning = max(peakRunning, running.count)
                    s.followers = []
                }
            }
            states[item.id] = s
            // A decode item's draft: the tokens after its pending one.
            let drafted = item.decoding ? item.batch!.tokens.dropFirst() : []
            for m in item.members {
                switch outcomes[m] {
                case let .next(t)?:
                    states[m]!.pending = t
                    states[m]!.generated += 1
                    states[m]!.draft?.advance(draft: drafted, accepted: 0, next: t)
                case let .accepted(a, t)?:
                    states[m]!.pending = t
                    states[m]!.generated += 1 + a
                    states[m]!.draft?.advance(draft: drafted, accepted: a, next: t)
                case .finished?: done.insert(m)
                case nil: break
                }
            }
        }
        for id in items.map(\.id) where outcomes[id] == .finished { done.insert(id) }
        return done.isEmpty ? [] : remove(done, cache: cache)
    }
}
