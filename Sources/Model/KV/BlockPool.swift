// The KV cache's storage: fixed-size pages carved from 2 MiB slabs, handed out as blocks (one page per
// layer of a layer group, for `blockTokens` positions), reference-counted so sequences share them, and
// kept after their last user when they hold a full block of a known token prefix (a prefix-hash ->
// block map per group). Kept blocks are evicted least-recently-used when storage is needed.
//
//   pages:   live (ref > 0)  |  cached (ref 0, in a prefix map, evictable)  |  free
//   budget:  every live sequence commits the pages it can hold at its peak, and the commitments never
//            exceed the capacity; a sequence never holds more than it committed, so live pages (each held
//            by at least one sequence) never exceed it either. Cached pages fill what is left and are
//            evicted on demand: cached KV never takes memory a live sequence was promised.
//
// Every page has the same size (K plane then V plane of one layer), so storage freed by one layer group
// serves any other and the slabs never fragment.
#if canImport(Glibc)
import Glibc
#endif

final class BlockPool {
    /// Blocks of one layer group: struct-of-arrays indexed by block handle (handles are recycled).
    final class Group {
        let layers: Int                          // pages per block
        var pages: [UnsafeMutableRawPointer?] = [] // [handle * layers + layer]
        var ref: [Int32] = []
        var hashed: [Bool] = []
        var hash: [UInt64] = []
        var parent: [UInt64] = []
        var tokens: [Int32] = []                 // [handle * blockTokens + i]: verifies a hit exactly
        var count: [Int32] = []                  // tokens named (blockTokens; fewer for a prompt's tail)
        var tick: [UInt64] = []                  // when the block was last released (LRU order)
        var prev: [Int32] = [], next: [Int32] = []
        var head: Int32 = -1, tail: Int32 = -1   // evictable blocks, least recently used first
        var freeHandles: [Int32] = []
        var map: [UInt64: Int32] = [:]
        init(layers: Int) { self.layers = layers }

        /// Room for `n` handles, grown to twice that when short: called before a multi-block step, so
        /// the arrays grow while prompts are processed and a decode step's one new block finds room
        /// (a steady decode step allocates nothing).
        func ensureHandles(_ n: Int, blockTokens: Int) {
            guard ref.capacity < n else { return }
            let c = 2 * n
            pages.reserveCapacity(c * layers); ref.reserveCapacity(c); hashed.reserveCapacity(c); hash.reserveCapacity(c)
            parent.reserveCapacity(c); tick.reserveCapacity(c); prev.reserveCapacity(c); next.reserveCapacity(c)
            count.reserveCapacity(c)
            freeHandles.reserveCapacity(c); tokens.reserveCapacity(c * blockTokens)
        }
    }

    let pageBytes: Int
    let blockTokens: Int
    let capacityPages: Int
    /// Whether released blocks with a prefix hash are kept (false: freed at once).
    let retain: Bool
    var groups: [Group]
    private(set) var livePages = 0, cachedPages = 0, committedPages = 0
    private(set) var evictions = 0
    private var clock: UInt64 = 0
    private var freePages: [UnsafeMutableRawPointer] = []
    private var materialized = 0
    private var slabs: [UnsafeMutableRawPointer] = []
    private var slabNext: UnsafeMutableRawPointer?
    private var slabLeft = 0
    private static let slabBytes = 2 << 20

    init(pageBytes: Int, blockTokens: Int, capacityPages: Int, groupLayers: [Int], retain: Bool) {
        self.pageBytes = (pageBytes + 63) & ~63
        self.blockTokens = blockTokens
        self.capacityPages = capacityPages
        self.retain = retain
        groups = groupLayers.map { Group(layers: $0) }
    }

    deinit { for p in slabs { free(p) } }

    /// Commits `n` more pages to live sequences (false, changing nothing, when the capacity is spoken for).
    func commit(_ n: Int) -> Bool {
        guard n <= capacityPages - committedPages else { return false }
        committedPages += n
        return true
    }

    func uncommit(_ n: Int) {
        precondition(n <= committedPages)
        committedPages -= n
    }

    /// Room for `n` more blocks of group `g` without growing its arrays (see `Group.ensureHandles`).
    func prepare(group g: Int, blocks n: Int) {
        let gr = groups[g]
        gr.ensureHandles(gr.ref.count - gr.freeHandles.count + n, blockTokens: blockTokens)
        if freePages.capacity < materialized + n * gr.layers { freePages.reserveCapacity(2 * (materialized + n * gr.layers)) }
    }

    /// A new block of group `g` with one reference, for a sequence within its commitment.
    func allocate(group g: Int) -> Int32 {
        let gr = groups[g], n = gr.layers
        let h: Int32
        if let f = gr.freeHandles.popLast() { h = f } else {
            h = Int32(gr.ref.count)
            gr.pages.append(contentsOf: repeatElement(nil, count: n))
            gr.ref.append(0); gr.hashed.append(false); gr.hash.append(0); gr.parent.append(0); gr.tick.append(0)
            gr.prev.append(-1); gr.next.append(-1); gr.count.append(0)
            gr.tokens.append(contentsOf: repeatElement(0, count: blockTokens))
        }
        for j in 0..<n { gr.pages[Int(h) * n + j] = page() }
        gr.ref[Int(h)] = 1
        gr.hashed[Int(h)] = false
        livePages += n
        return h
    }

    /// A block for a snapshot that goes to the cache at once (no sequence's commitment covers it), when
    /// its pages can be had without touching live ones: free, new or evicted. nil otherwise.
    func allocateTransient(group g: Int) -> Int32? {
        let n = groups[g].layers
        guard freePages.count + (capacityPages - materialized) + cachedPages >= n else { return nil }
        return allocate(group: g)
    }

    /// One page: a free one, new storage while the capacity allows, else the least recently used cached
    /// block's (live pages stay within the commitments, so one exists).
    private func page() -> UnsafeMutableRawPointer {
        if let p = freePages.popLast() { return p }
        if materialized < capacityPages { materialized += 1; return carve() }
        evictOldest()
        return freePages.popLast()!
    }

    private func carve() -> UnsafeMutableRawPointer {
        if pageBytes > slabLeft {
            let size = (pageBytes + Self.slabBytes - 1) / Self.slabBytes * Self.slabBytes
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, Self.slabBytes, size) == 0, let p else { fatalError("KV cache: out of memory") }
            _ = madvise(p, size, 14)  // MADV_HUGEPAGE (a hint; without THP the slab is ordinary memory)
            slabs.append(p)
            slabNext = p
            slabLeft = size
        }
        let r = slabNext!
        slabNext = r + pageBytes
        slabLeft -= pageBytes
        return r
    }

    @inline(__always)
    func page(group g: Int, block h: Int32, layer j: Int) -> UnsafeMutableRawPointer {
        let gr = groups[g]
        return gr.pages[Int(h) * gr.layers + j]!
    }

    /// One more user of a block (a cached one becomes live, within its new holder's commitment).
    func retain(group g: Int, block h: Int32) {
        let gr = groups[g]
        if gr.ref[Int(h)] == 0 {
            unlink(gr, h)
            cachedPages -= gr.layers
            livePages += gr.layers
        }
        gr.ref[Int(h)] += 1
    }

    /// One user fewer; at zero a block with a prefix hash is kept (most recently used), any other freed.
    func release(group g: Int, block h: Int32) {
        let gr = groups[g], i = Int(h)
        precondition(gr.ref[i] > 0, "KV block released twice")
        gr.ref[i] -= 1
        guard gr.ref[i] == 0 else { return }
        livePages -= gr.layers
        if gr.hashed[i] && retain {
            clock += 1
            gr.tick[i] = clock
            gr.prev[i] = gr.tail; gr.next[i] = -1
            if gr.tail >= 0 { gr.next[Int(gr.tail)] = h } else { gr.head = h }
            gr.tail = h
            cachedPages += gr.layers
        } else {
            drop(gr, h)
        }
    }

    /// Names a full block by its prefix hash (chained from `parent`) and tokens, so later sequences can
    /// find it. A block whose prefix is already known stays anonymous (freed when released).
    func register(group g: Int, block h: Int32, hash: UInt64, parent: UInt64, tokens: ArraySlice<Int32>) {
        let gr = groups[g], i = Int(h)
        guard gr.map[hash] == nil, !gr.hashed[i] else { return }
        gr.map[hash] = h
        gr.hashed[i] = true
        gr.hash[i] = hash
        gr.parent[i] = parent
        gr.count[i] = Int32(tokens.count)
        var k = i * blockTokens
        for t in tokens { gr.tokens[k] = t; k += 1 }
    }

    /// The block of group `g` holding exactly this prefix block, if kept or live.
    func lookup(group g: Int, hash: UInt64, parent: UInt64, tokens: ArraySlice<Int32>) -> Int32? {
        let gr = groups[g]
        guard let h = gr.map[hash] else { return nil }
        let i = Int(h)
        let n = Int(gr.count[i])
        guard n == tokens.count, gr.parent[i] == parent, gr.tokens[i * blockTokens ..< i * blockTokens + n].elementsEqual(tokens) else { return nil }
        return h
    }

    func isCached(group g: Int, block h: Int32) -> Bool { groups[g].ref[Int(h)] == 0 }

    /// Evicts the least recently used cached block of any group.
    func evictOldest() {
        var best = -1
        for (g, gr) in groups.enumerated() where gr.head >= 0 {
            if best < 0 || gr.tick[Int(gr.head)] < groups[best].tick[Int(groups[best].head)] { best = g }
        }
        precondition(best >= 0, "KV pool: no page to evict (a sequence held more than it committed)")
        evict(groups[best], groups[best].head)
        evictions += 1
    }

    /// Frees the cached block named `hash` in group `g`, if no one holds it (a prompt tail whose logits
    /// were let go: nothing can hit it any more).
    func forget(group g: Int, hash: UInt64) {
        let gr = groups[g]
        guard let h = gr.map[hash], gr.ref[Int(h)] == 0 else { return }
        evict(gr, h)
    }

    /// Frees a cached (unreferenced, named) block: out of the LRU list, its pages free.
    private func evict(_ gr: Group, _ h: Int32) {
        unlink(gr, h)
        cachedPages -= gr.layers
        drop(gr, h)
    }

    private func unlink(_ gr: Group, _ h: Int32) {
        let i = Int(h), p = gr.prev[i], n = gr.next[i]
        if p >= 0 { gr.next[Int(p)] = n } else { gr.head = n }
        if n >= 0 { gr.prev[Int(n)] = p } else { gr.tail = p }
        gr.prev[i] = -1; gr.next[i] = -1
    }

    /// Returns a block's pages to the free list and its handle for reuse.
    private func drop(_ gr: Group, _ h: Int32) {
        let i = Int(h)
        if gr.hashed[i] { gr.map[gr.hash[i]] = nil; gr.hashed[i] = false }
        for j in 0..<gr.layers {
            freePages.append(gr.pages[i * gr.layers + j]!)
            gr.pages[i * gr.layers + j] = nil
        }
        gr.freeHandles.append(h)
    }
}
