// The Zebra KV cache manager: every layer's keys and values in blocks of `blockTokens` positions from one
// block pool, layers grouped by attention kind (each group's blocks hold one page per layer), each kind's
// retention rule a `KVPolicy`. A sliding layer's sequence holds only the blocks its window still sees
// (a ring of blocks: flat memory); a global layer's holds all of them.
//
//   sequence, W = 8, blocks of 4, at length 14:        block table (handles into the pool)
//     global  group: [0-3] [4-7] [8-11] [12-13 _ _]     [ 7, 2, 9, 4 ]
//     sliding group:  --    [4-7] [8-11] [12-13 _ _]     [-1, 5, 1, 8 ]   (-1: dropped, 0-3 out of window)
//
// Prefix caching: a full block is named by the chained hash of every token up to its end (vLLM's block
// hashes; a per-request salt starts the chain), so a later sequence whose prompt starts with the same
// tokens shares those blocks by reference count instead of computing them. A hit at P (a multiple of the
// block size) needs the global groups' blocks [0, P) and each sliding group's blocks of the window before
// P; blocks a sequence drops or leaves behind are kept (evictable, least recently used first), so a
// conversation's next turn, or another question on the same document, starts where the last one stopped.
//
// Admission: `admit` attaches the longest cached prefix and commits the pages the sequence can hold at its
// peak (shared blocks counted for every holder: conservative, and safe whoever drops a shared block
// first); `reserve` materializes blocks before a step, within the commitment or by growing it, and fails,
// changing nothing, when the budget is spoken for. Cached pages are evicted to make room.
import CKernels
#if canImport(Glibc)
import Glibc
#endif

public final class SequenceKV: @unchecked Sendable {
    public let id: Int
    /// Positions already cached (the next token's position).
    public internal(set) var length = 0
    /// Prompt tokens this sequence took from the prefix cache when admitted.
    public internal(set) var cachedTokens = 0
    /// For an exact repeat of a cached prompt: the logits of its last position (the whole prompt came
    /// from the cache, so nothing computes them); taken once by the engine.
    public var cachedLogits: [Float]?
    /// Token ids of the positions after the last full block (a cacheable sequence's next block name).
    var tokens: [Int32] = []
    /// Per layer group: block handles by block index (-1: dropped, out of a sliding window).
    var tables: [[Int32]]
    /// Per layer group: blocks below this index are dropped.
    var dropped: [Int]
    /// hashes[i]: the chained prefix hash of blocks 0...i (full blocks only).
    var hashes: [UInt64] = []
    let salt: UInt64
    /// Whether this sequence's blocks are named for reuse (false: prompt scoring, cache off).
    let cacheable: Bool
    /// Pages committed to this sequence (the most it may hold), and the pages its tables hold.
    var claim = 0, held = 0

    init(id: Int, groups: Int, salt: UInt64, cacheable: Bool) {
        self.id = id
        self.salt = salt
        self.cacheable = cacheable
        tables = Array(repeating: [], count: groups)
        dropped = Array(repeating: 0, count: groups)
    }
}

/// Bytes of KV storage, split by layer kind.
public struct KVBytes: Sendable, Equatable {
    public var sliding: Int
    public var global: Int
    public var total: Int { sliding + global }
    public init(sliding: Int, global: Int) { self.sliding = sliding; self.global = global }
}

/// How the cache stores keys and values: f16 (the default, as llama.cpp), or q8_0 (int8 with one f16
/// scale per 32 elements, as llama.cpp's `-ctk q8_0 -ctv q8_0`): 17/32 of the bytes, keys scored by
/// int8 dot products against the query quantized the same way.
public enum KVCacheType: String, Sendable, CaseIterable {
    case f16
    case q8_0

    var kernelType: Int32 { self == .q8_0 ? Int32(ZK_KV_Q8_0.rawValue) : Int32(ZK_KV_F16.rawValue) }

    /// Why a model with these heads cannot use this type, or nil.
    public func unsupportedReason(headDim: Int) -> String? {
        self == .q8_0 && headDim % 32 != 0 ? "q8_0 KV cache needs a head size that is a multiple of 32 (it is \(headDim))" : nil
    }
}

/// Prefix-cache counters (tokens asked for and found, blocks evicted).
public struct PrefixCacheStats: Sendable, Equatable {
    public var queryTokens = 0, hitTokens = 0, evictions = 0
    public init() {}
}

public final class KVCache: @unchecked Sendable {
    /// Layers of one attention kind: they share block tables (one page per layer in each block).
    struct LayerGroup {
        let kind: AttentionKind
        let policy: any KVPolicy
        let layers: [Int]
    }

    public let layers: [LayerSpec]
    public let kvHeads: Int, headDim: Int
    public let type: KVCacheType
    /// Bytes of one KV head in a row, and of a row (all KV heads of one position, K or V).
    public let headBytes: Int, rowBytes: Int
    /// Positions per block: the prefix cache's granularity (hits are multiples of it).
    public let blockTokens: Int
    /// Maximum bytes of storage: live, promised and cached pages together.
    public let budgetBytes: Int
    /// Whether full blocks are named and kept for reuse by later sequences.
    public let prefixCaching: Bool
    let groups: [LayerGroup]
    /// Per layer: its group and its page within the group's blocks.
    let slot: [(group: Int, page: Int)]
    let pool: BlockPool
    private var nextID = 0
    public private(set) var liveSequences: [Int: SequenceKV] = [:]
    private var stats = PrefixCacheStats()
    /// Prompt tails: the last-row logits of recent prompts, by tail name (their KV rows are snapshot
    /// blocks in the pool under the same name), oldest first in `tailOrder`.
    private var tailLogits: [UInt64: [Float]] = [:]
    private var tailOrder: [UInt64] = []
    /// Prompt tails kept (each holds a vocabulary-sized row of logits: 1 MiB on Gemma 3).
    public static let maxTails = 16

    public init(layers: [LayerSpec], kvHeads: Int, headDim: Int, type: KVCacheType = .f16,
                blockTokens: Int = 64, budgetBytes: Int = Int.max, prefixCaching: Bool = false) {
        precondition(type.unsupportedReason(headDim: headDim) == nil, "unsupported KV cache type for this model")
        precondition(blockTokens > 0)
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.type = type
        self.headBytes = Int(zk_kv_head_bytes(type.kernelType, Int64(headDim)))
        self.rowBytes = kvHeads * headBytes
        self.blockTokens = blockTokens
        self.budgetBytes = budgetBytes
        self.prefixCaching = prefixCaching
        var groups: [LayerGroup] = []
        var slot: [(group: Int, page: Int)] = []
        for (l, spec) in layers.enumerated() {
            if let g = groups.firstIndex(where: { $0.kind == spec.kind }) {
                slot.append((g, groups[g].layers.count))
                groups[g] = LayerGroup(kind: spec.kind, policy: spec.kind.policy, layers: groups[g].layers + [l])
            } else {
                slot.append((groups.count, 0))
                groups.append(LayerGroup(kind: spec.kind, policy: spec.kind.policy, layers: [l]))
            }
        }
        self.groups = groups
        self.slot = slot
        let pageBytes = blockTokens * 2 * rowBytes
        pool = BlockPool(pageBytes: pageBytes, blockTokens: blockTokens,
                         capacityPages: budgetBytes == Int.max ? Int.max / 2 : budgetBytes / ((pageBytes + 63) & ~63),
                         groupLayers: groups.map(\.layers.count), retain: prefixCaching)
    }

    /// An f16 cache of one KV head of `kvDim` (tests of the sizes).
    public convenience init(layers: [LayerSpec], kvDim: Int, blockTokens: Int = 64, budgetBytes: Int = Int.max,
                            prefixCaching: Bool = false) {
        self.init(layers: layers, kvHeads: 1, headDim: kvDim, blockTokens: blockTokens, budgetBytes: budgetBytes,
                  prefixCaching: prefixCaching)
    }

    // MARK: sizes

    /// Bytes of one position in one layer (K and V).
    public var bytesPerPosition: Int { rowBytes * 2 }
    var pageBytes: Int { pool.pageBytes }

    /// Exact bytes a sequence of `tokens` positions needs: global layers x tokens + sliding x min(tokens, W).
    public func bytesNeeded(tokens: Int) -> KVBytes {
        var s = 0, g = 0
        for l in layers {
            if let w = l.kind.window { s += min(tokens, w) * bytesPerPosition } else { g += tokens * bytesPerPosition }
        }
        return KVBytes(sliding: s, global: g)
    }

    /// Pages a sequence growing to `tokens` positions, `step` at a time, holds at its peak.
    func peakPages(tokens: Int, step: Int) -> Int {
        groups.reduce(0) { $0 + $1.policy.peakBlocks(length: tokens, step: step, blockTokens: blockTokens) * $1.layers.count }
    }

    /// Bytes a new sequence growing to `tokens` positions, `step` at a time, reserves (whole blocks; a
    /// sliding group's window of blocks plus a step's).
    public func bytesReserved(tokens: Int, step: Int) -> Int { peakPages(tokens: tokens, step: step) * pageBytes }

    /// KV bytes in use by all live sequences, by the exact formula.
    public var bytesInUse: KVBytes {
        liveSequences.values.reduce(KVBytes(sliding: 0, global: 0)) { acc, s in
            let b = bytesNeeded(tokens: s.length)
            return KVBytes(sliding: acc.sliding + b.sliding, global: acc.global + b.global)
        }
    }

    /// Bytes of blocks held by live sequences or kept for reuse.
    public var allocatedBytes: Int { (pool.livePages + pool.cachedPages) * pageBytes }
    /// Bytes of blocks kept only for reuse (evictable).
    public var cachedBytes: Int { pool.cachedPages * pageBytes }
    /// Bytes committed to live sequences (each one's peak).
    public var committedBytes: Int { pool.committedPages * pageBytes }
    public var prefixStats: PrefixCacheStats {
        var s = stats
        s.evictions = pool.evictions
        return s
    }

    // MARK: sequences

    /// A new empty sequence (no storage yet). `salt` separates tenants' caches (vLLM's `cache_salt`);
    /// `cacheable` false keeps its blocks out of the prefix cache.
    public func newSequence(salt: String? = nil, cacheable: Bool = true) -> SequenceKV {
        let s = SequenceKV(id: nextID, groups: groups.count, salt: Self.chainStart(salt),
                           cacheable: cacheable && prefixCaching)
        nextID += 1
        liveSequences[s.id] = s
        return s
    }

    /// Tokens of `prompt` a new sequence with this salt would take from the cache now (no side effects).
    public func computedPrefix(_ prompt: [Int32], salt: String? = nil) -> Int {
        guard prefixCaching else { return 0 }
        return longestHit(prompt, salt: Self.chainStart(salt)).prefix
    }

    /// Admits an empty sequence that will grow to `maxLength` positions, at most `step` per forward step:
    /// commits the pages it can hold at its peak and attaches the longest cached prefix of `prompt` (when
    /// the sequence is cacheable; at least one prompt token is always left to compute). Returns false,
    /// changing nothing, when the commitment does not fit beside the live sequences' (cached blocks do
    /// not count: they are evicted as needed).
    public func admit(_ seq: SequenceKV, prompt: [Int32], maxLength: Int, step: Int) -> Bool {
        precondition(seq.length == 0 && seq.tables.allSatisfy(\.isEmpty), "admit an empty sequence")
        let claim = peakPages(tokens: maxLength, step: step)
        guard pool.commit(claim) else { return false }
        seq.claim += claim
        let hit = seq.cacheable ? longestHit(prompt, salt: seq.salt) : (prefix: 0, blocks: [], hashes: [])
        let P = hit.prefix, nb = P / blockTokens
        let tail = seq.cacheable ? exactTail(prompt, hit: P, hashes: hit.hashes, salt: seq.salt) : nil
        if prefixCaching {
            stats.queryTokens += prompt.count
            stats.hitTokens += tail == nil ? P : prompt.count
        }
        for (g, grp) in groups.enumerated() {
            let needed = nb > 0 ? grp.policy.neededBlocks(prefix: P, blockTokens: blockTokens) : 0..<0
            var table: [Int32] = []
            table.reserveCapacity((maxLength + blockTokens - 1) / blockTokens)
            table.append(contentsOf: repeatElement(-1, count: nb))
            seq.tables[g] = table
            for i in needed {
                pool.retain(group: g, block: hit.blocks[g][i])
                seq.tables[g][i] = hit.blocks[g][i]
            }
            seq.held += needed.count * grp.layers.count
            seq.dropped[g] = needed.lowerBound
        }
        seq.tokens.reserveCapacity(blockTokens)
        seq.hashes = hit.hashes
        seq.hashes.reserveCapacity(maxLength / blockTokens + 1)
        seq.length = P
        seq.cachedTokens = P
        if let tail {
            // The whole prompt is cached: the tail's rows go to a block of the sequence's own (it writes
            // the positions after them), and its logits come along. The rows are read out first: taking
            // the new blocks may evict the snapshot (it is cached, not held).
            let rows = prompt.count - P, bytes = rows * rowBytes
            var saved: [[UInt8]] = []
            for g in groups.indices {
                for j in 0..<groups[g].layers.count {
                    let src = pool.page(group: g, block: tail.blocks[g], layer: j)
                    saved.append(Array(UnsafeRawBufferPointer(start: src, count: bytes)) +
                                 Array(UnsafeRawBufferPointer(start: src + blockTokens * rowBytes, count: bytes)))
                }
            }
            var k = 0
            for g in groups.indices {
                let c = pool.allocate(group: g)
                for j in 0..<groups[g].layers.count {
                    let dst = pool.page(group: g, block: c, layer: j)
                    saved[k].withUnsafeBytes { sb in
                        dst.copyMemory(from: sb.baseAddress!, byteCount: bytes)
                        (dst + blockTokens * rowBytes).copyMemory(from: sb.baseAddress! + bytes, byteCount: bytes)
                    }
                    k += 1
                }
                seq.tables[g].append(c)
                seq.held += groups[g].layers.count
            }
            precondition(seq.held <= seq.claim)
            append(seq, Array(prompt[P...]))
            seq.cachedTokens = prompt.count
            seq.cachedLogits = tail.logits
            tailOrder.removeAll { $0 == tail.key }   // most recently used last
            tailOrder.append(tail.key)
        }
        return true
    }

    /// The cached tail of exactly this prompt after a hit at `P`: its snapshot blocks and logits.
    private func exactTail(_ prompt: [Int32], hit P: Int, hashes: [UInt64], salt: UInt64) -> (blocks: [Int32], logits: [Float], key: UInt64)? {
        guard !prompt.isEmpty, P == (prompt.count - 1) / blockTokens * blockTokens else { return nil }
        let parent = P == 0 ? salt : hashes[P / blockTokens - 1], toks = prompt[P...]
        let key = Self.tailName(parent, toks)
        guard let logits = tailLogits[key] else { return nil }
        var blocks: [Int32] = []
        for g in groups.indices {
            guard let b = pool.lookup(group: g, hash: key, parent: parent, tokens: toks) else { return nil }
            blocks.append(b)
        }
        return (blocks, logits, key)
    }

    /// Keeps the tail of a cacheable sequence's just-finished prompt (the positions after its last full
    /// block, up to 64, copied to snapshot blocks that go straight to the cache) and the logits of its
    /// last position: an exact repeat of the prompt then computes nothing (a retry, a regenerated
    /// answer). The logits are the ones the prompt pass computed, so the repeat samples from exactly
    /// what a cold run would. Skipped when the pool has no page to spare without touching live ones.
    public func snapshotTail(_ seq: SequenceKV, prompt: [Int32], logits row: UnsafeBufferPointer<Float>) {
        let L = prompt.count
        guard seq.cacheable, L > 0, seq.length == L else { return }
        let P = (L - 1) / blockTokens * blockTokens
        guard seq.hashes.count >= P / blockTokens else { return }
        let parent = P == 0 ? seq.salt : seq.hashes[P / blockTokens - 1], toks = prompt[P...]
        let key = Self.tailName(parent, toks)
        if tailLogits[key] != nil {
            tailOrder.removeAll { $0 == key }
            tailOrder.append(key)
            return
        }
        var made: [Int32] = []
        for g in groups.indices {
            guard seq.tables[g].count > P / blockTokens, seq.tables[g][P / blockTokens] >= 0,
                  let c = pool.allocateTransient(group: g) else { break }
            copyRows(group: g, from: seq.tables[g][P / blockTokens], to: c, rows: L - P)
            pool.register(group: g, block: c, hash: key, parent: parent, tokens: toks)
            made.append(c)
        }
        for (g, c) in made.enumerated() { pool.release(group: g, block: c) }   // named: cached; unnamed: freed
        guard made.count == groups.count else { return }
        tailLogits[key] = Array(row)
        tailOrder.append(key)
        if tailOrder.count > Self.maxTails {
            let old = tailOrder.removeFirst()
            tailLogits[old] = nil
            for g in groups.indices { pool.forget(group: g, hash: old) }
        }
    }

    /// A prompt tail's name: its tokens chained after the prefix's, kept apart from a full block's name.
    static func tailName(_ parent: UInt64, _ tokens: ArraySlice<Int32>) -> UInt64 {
        chain(parent, tokens) &+ 0x7461_696c_0000_0001
    }

    /// Copies the first `rows` positions of a block's K and V planes, every layer of the group.
    private func copyRows(group g: Int, from a: Int32, to b: Int32, rows: Int) {
        for j in 0..<groups[g].layers.count {
            let src = pool.page(group: g, block: a, layer: j), dst = pool.page(group: g, block: b, layer: j)
            dst.copyMemory(from: src, byteCount: rows * rowBytes)
            (dst + blockTokens * rowBytes).copyMemory(from: src + blockTokens * rowBytes, byteCount: rows * rowBytes)
        }
    }

    /// The longest block-aligned prefix of `prompt` (short of its last token) whose blocks every group
    /// needs are cached or live: the blocks by group (-1 where absent), and the prefix's block hashes.
    private func longestHit(_ prompt: [Int32], salt: UInt64) -> (prefix: Int, blocks: [[Int32]], hashes: [UInt64]) {
        let maxBlocks = prompt.isEmpty ? 0 : (prompt.count - 1) / blockTokens
        var hashes: [UInt64] = [], found = groups.map { _ in [Int32]() }
        var parent = salt
        // Global groups need every block from 0: look up no further than the first miss.
        var limit = maxBlocks
        for i in 0..<maxBlocks where i < limit {
            let toks = prompt[i * blockTokens ..< (i + 1) * blockTokens]
            let h = Self.chain(parent, toks)
            hashes.append(h)
            for (g, grp) in groups.enumerated() {
                let b = pool.lookup(group: g, hash: h, parent: parent, tokens: toks) ?? -1
                found[g].append(b)
                if b < 0 && grp.kind.window == nil { limit = i }
            }
            parent = h
        }
        var k = min(limit, hashes.count)
        while k > 0 {
            let ok = groups.indices.allSatisfy { g in
                groups[g].policy.neededBlocks(prefix: k * blockTokens, blockTokens: blockTokens).allSatisfy { found[g][$0] >= 0 }
            }
            if ok { break }
            k -= 1
        }
        return (k * blockTokens, found, Array(hashes.prefix(k)))
    }

    /// Makes room for `seq` to reach `length` positions (within its commitment, or by growing it).
    /// Returns false, changing nothing, when that would exceed the budget.
    public func reserve(_ seq: SequenceKV, length: Int) -> Bool {
        let nb = (length + blockTokens - 1) / blockTokens
        var pages = 0
        for (g, grp) in groups.enumerated() where seq.tables[g].count < nb {
            pages += (nb - seq.tables[g].count) * grp.layers.count
        }
        guard grow(seq, holding: seq.held + pages) else { return false }
        for g in groups.indices where seq.tables[g].count < nb {
            // Tables and the pool's arrays grow (to twice the need) in prompt steps, not in decode steps.
            if seq.tables[g].capacity < nb { seq.tables[g].reserveCapacity(2 * nb) }
            pool.prepare(group: g, blocks: nb - seq.tables[g].count)
            while seq.tables[g].count < nb {
                seq.tables[g].append(pool.allocate(group: g))
                seq.held += groups[g].layers.count
            }
        }
        return true
    }

    /// Grows the sequence's commitment to cover `pages` held pages; false when the budget cannot.
    private func grow(_ seq: SequenceKV, holding pages: Int) -> Bool {
        let extra = pages - seq.claim
        guard extra > 0 else { return true }
        guard pool.commit(extra) else { return false }
        seq.claim += extra
        return true
    }

    /// Records `tokens` as computed at positions [length, length + count) (the forward pass stored their
    /// rows; a model-free test of the scheduler calls it in the model's place): full
    /// blocks get their prefix names, and blocks no query can see any more are dropped (kept in the cache
    /// when named; the sequence's commitment stays, for the blocks it will take next).
    public func append(_ seq: SequenceKV, _ tokens: [Int32]) {
        if seq.cacheable {
            // Name each block this step completes (seq.tokens: the positions after the last named one).
            for t in tokens {
                seq.tokens.append(t)
                guard seq.tokens.count == blockTokens else { continue }
                let i = seq.hashes.count, parent = seq.hashes.last ?? seq.salt
                let h = Self.chain(parent, seq.tokens[...])
                seq.hashes.append(h)
                for g in groups.indices where seq.tables[g][i] >= 0 {
                    pool.register(group: g, block: seq.tables[g][i], hash: h, parent: parent, tokens: seq.tokens[...])
                }
                seq.tokens.removeAll(keepingCapacity: true)
            }
        }
        seq.length += tokens.count
        for (g, grp) in groups.enumerated() {
            let keep = min(grp.policy.firstKept(next: seq.length) / blockTokens, seq.tables[g].count)
            while seq.dropped[g] < keep {
                let i = seq.dropped[g]
                if seq.tables[g][i] >= 0 {
                    pool.release(group: g, block: seq.tables[g][i])
                    seq.tables[g][i] = -1
                    seq.held -= grp.layers.count
                }
                seq.dropped[g] += 1
            }
        }
    }

    /// Makes the empty admitted sequence `dst` a copy of `src` (n completions of one prompt share one
    /// prompt pass): full blocks are shared by reference count, the partial last block is copied.
    public func fork(from src: SequenceKV, to dst: SequenceKV) {
        precondition(dst.length == 0 && dst.tables.allSatisfy(\.isEmpty), "fork target must be empty")
        guard grow(dst, holding: src.held) else { fatalError("KV fork: the target's commitment cannot hold the source's blocks (admit it first)") }
        dst.held = src.held
        for g in groups.indices {
            for (i, h) in src.tables[g].enumerated() {
                if h < 0 { dst.tables[g].append(-1); continue }
                if (i + 1) * blockTokens <= src.length {
                    pool.retain(group: g, block: h)
                    dst.tables[g].append(h)
                    continue
                }
                let c = pool.allocate(group: g)
                copyRows(group: g, from: h, to: c, rows: max(0, src.length - i * blockTokens))
                dst.tables[g].append(c)
            }
            dst.dropped[g] = src.dropped[g]
        }
        if dst.cacheable {
            dst.tokens = src.tokens
            dst.tokens.reserveCapacity(blockTokens)
            dst.hashes = src.hashes
            dst.hashes.reserveCapacity(src.hashes.capacity)
        }
        dst.length = src.length
    }

    /// Returns a sequence's blocks to the pool (full named ones stay cached, the last block first in line
    /// for eviction) and its unused reservation.
    public func release(_ seq: SequenceKV) {
        for g in groups.indices {
            for h in seq.tables[g].reversed() where h >= 0 { pool.release(group: g, block: h) }
            seq.tables[g] = []
            seq.dropped[g] = 0
        }
        pool.uncommit(seq.claim)
        seq.claim = 0
        seq.held = 0
        seq.length = 0
        liveSequences[seq.id] = nil
    }

    // MARK: naming

    /// The hash of a block of tokens chained after its prefix's (splitmix64's finalizer over each token;
    /// a hit is confirmed against the stored tokens, so a collision can only cost a miss).
    static func chain(_ parent: UInt64, _ tokens: ArraySlice<Int32>) -> UInt64 {
        var h = parent
        for t in tokens {
            h = (h ^ UInt64(UInt32(bitPattern: t))) &+ 0x9e37_79b9_7f4a_7c15
            h = (h ^ (h >> 30)) &* 0xbf58_476d_1ce4_e5b9
            h = (h ^ (h >> 27)) &* 0x94d0_49bb_1331_11eb
            h ^= h >> 31
        }
        return h
    }

    /// Where a sequence's chain of block names starts: its salt's hash, or the shared start.
    static func chainStart(_ salt: String?) -> UInt64 { salt.map(hashString) ?? 0x5a45_4252_4100_0001 }

    static func hashString(_ s: String) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in s.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return chain(h, [Int32(truncatingIfNeeded: s.utf8.count)])
    }

    // MARK: addressing (K plane then V plane inside each page)

    /// Pointers to the K and V rows of `pos` in `layer` (the position must be reserved and kept).
    @inline(__always)
    func rows(_ seq: SequenceKV, layer: Int, pos: Int) -> (k: UnsafeMutableRawPointer, v: UnsafeMutableRawPointer) {
        let (g, j) = slot[layer]
        let p = pool.page(group: g, block: seq.tables[g][pos / blockTokens], layer: j)
        let r = pos % blockTokens
        return (p + r * rowBytes, p + (blockTokens + r) * rowBytes)
    }

    /// Appends the cached positions [lo, hi) of `layer` to `segs` as contiguous runs (one a block),
    /// offset to kv head `h`.
    func segments(_ seq: SequenceKV, layer: Int, from lo: Int, to hi: Int, head h: Int,
                  into segs: UnsafeMutablePointer<zk_kv_segment>, count: inout Int) {
        let (g, j) = slot[layer]
        let off = h * headBytes
        var p = lo
        while p < hi {
            let b = pool.page(group: g, block: seq.tables[g][p / blockTokens], layer: j)
            let r = p % blockTokens
            let n = min(hi - p, blockTokens - r)
            segs[count] = zk_kv_segment(k: b + r * rowBytes + off, v: b + (blockTokens + r) * rowBytes + off, n: Int64(n))
            count += 1
            p += n
        }
    }
}
