// The Zebra KV cache: a ring of W positions per sliding-window layer, and fixed-size blocks that grow
// with the sequence for global layers. Elements are f16; each position stores kvDim keys then kvDim values
// in separate K and V planes of a block.
//
//   sliding layer, W = 8, after 11 tokens (positions 3..10 live; slot = pos % W):
//     slot:  0   1   2   3   4   5   6   7
//     pos :  8   9  10   3   4   5   6   7      <- the next token (11) overwrites slot 3
//
//   global layer, blockTokens = 4, after 10 tokens:
//     blocks: [0 1 2 3] [4 5 6 7] [8 9 _ _]   <- a new block only when the last is full; nothing is copied
//
// Admission control: `reserve` plans the blocks a step needs against the byte budget and returns false
// without changing anything when they do not fit; the scheduler then waits or preempts.
import CKernels
#if canImport(Glibc)
import Glibc
#endif

public final class SequenceKV: @unchecked Sendable {
    public let id: Int
    /// Positions already cached (the next token's position).
    public internal(set) var length = 0
    /// Per layer: sliding layers own one ring block of `window` positions; global layers a list of blocks.
    var rings: [UnsafeMutablePointer<UInt16>?]
    var blocks: [[UnsafeMutablePointer<UInt16>]]
    /// Positions the reserved blocks can hold (>= length).
    var reservedLength = 0

    init(id: Int, layers: Int) {
        self.id = id
        rings = Array(repeating: nil, count: layers)
        blocks = Array(repeating: [], count: layers)
    }
}

/// Bytes of KV storage, split by layer kind.
public struct KVBytes: Sendable, Equatable {
    public var sliding: Int
    public var global: Int
    public var total: Int { sliding + global }
    public init(sliding: Int, global: Int) { self.sliding = sliding; self.global = global }
}

public final class KVCache: @unchecked Sendable {
    public let layers: [LayerSpec]
    public let kvDim: Int
    /// Positions per block of a global layer.
    public let blockTokens: Int
    /// Maximum bytes of storage allocated across all sequences.
    public let budgetBytes: Int
    public private(set) var allocatedBytes = 0
    private var freeBlocks: [UnsafeMutablePointer<UInt16>] = []
    /// Block and ring storage is carved from 2 MiB-aligned slabs advised for transparent huge pages:
    /// at depth a decode step streams tens of MB of cache, and with 4 KiB pages every page boundary
    /// stops the hardware prefetchers and costs a TLB miss. Storage is recycled through the free
    /// lists and returned with the slabs when the cache goes away.
    private var slabs: [UnsafeMutableRawPointer] = []
    private var slabNext: UnsafeMutableRawPointer?
    private var slabLeft = 0
    private static let slabBytes = 2 << 20
    private var freeRings: [Int: [UnsafeMutablePointer<UInt16>]] = [:]
    private var nextID = 0
    public private(set) var liveSequences: [Int: SequenceKV] = [:]

    public init(layers: [LayerSpec], kvDim: Int, blockTokens: Int = 256, budgetBytes: Int = Int.max) {
        self.layers = layers
        self.kvDim = kvDim
        self.blockTokens = blockTokens
        self.budgetBytes = budgetBytes
    }

    deinit {
        for p in slabs { free(p) }
    }

    /// `elements` f16 values of storage from the current slab (a new one when it is full).
    private func storage(elements: Int) -> UnsafeMutablePointer<UInt16> {
        let bytes = (elements * 2 + 63) & ~63
        if bytes > slabLeft {
            let size = (bytes + Self.slabBytes - 1) / Self.slabBytes * Self.slabBytes
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, Self.slabBytes, size) == 0, let p else { fatalError("KV cache: out of memory") }
            _ = madvise(p, size, 14)  // MADV_HUGEPAGE (a hint; without THP the slab is ordinary memory)
            slabs.append(p)
            slabNext = p
            slabLeft = size
        }
        let r = slabNext!.bindMemory(to: UInt16.self, capacity: elements)
        slabNext = slabNext! + bytes
        slabLeft -= bytes
        return r
    }

    /// Bytes of one position in one layer (K and V, f16).
    public var bytesPerPosition: Int { kvDim * 2 * 2 }
    var blockBytes: Int { blockTokens * bytesPerPosition }

    /// Exact bytes a sequence of `tokens` positions needs: global layers x tokens + sliding x min(tokens, W).
    public func bytesNeeded(tokens: Int) -> KVBytes {
        var s = 0, g = 0
        for l in layers {
            if let w = l.kind.window { s += min(tokens, w) * bytesPerPosition } else { g += tokens * bytesPerPosition }
        }
        return KVBytes(sliding: s, global: g)
    }

    /// Bytes actually allocated (rings are whole windows, global layers whole blocks) for `tokens` positions.
    public func bytesAllocated(tokens: Int) -> Int {
        guard tokens > 0 else { return 0 }
        var total = 0
        for l in layers {
            if let w = l.kind.window { total += w * bytesPerPosition }
            else { total += (tokens + blockTokens - 1) / blockTokens * blockBytes }
        }
        return total
    }

    /// KV bytes in use by all live sequences, by the exact formula.
    public var bytesInUse: KVBytes {
        liveSequences.values.reduce(KVBytes(sliding: 0, global: 0)) { acc, s in
            let b = bytesNeeded(tokens: s.length)
            return KVBytes(sliding: acc.sliding + b.sliding, global: acc.global + b.global)
        }
    }

    /// A new empty sequence (no storage yet).
    public func newSequence() -> SequenceKV {
        let s = SequenceKV(id: nextID, layers: layers.count)
        nextID += 1
        liveSequences[s.id] = s
        return s
    }

    /// Makes room for `seq` to reach `length` positions. Returns false, changing nothing, when that
    /// would exceed the budget.
    public func reserve(_ seq: SequenceKV, length: Int) -> Bool {
        if length <= seq.reservedLength { return true }
        var extra = 0
        for (i, l) in layers.enumerated() {
            if let w = l.kind.window {
                if seq.rings[i] == nil { extra += w * bytesPerPosition }
            } else {
                let need = (length + blockTokens - 1) / blockTokens - seq.blocks[i].count
                if need > 0 { extra += need * blockBytes }
            }
        }
        guard allocatedBytes + extra <= budgetBytes else { return false }
        for (i, l) in layers.enumerated() {
            if let w = l.kind.window {
                if seq.rings[i] == nil {
                    seq.rings[i] = freeRings[w]?.popLast() ?? storage(elements: w * kvDim * 2)
                }
            } else {
                while seq.blocks[i].count * blockTokens < length {
                    seq.blocks[i].append(freeBlocks.popLast() ?? storage(elements: blockTokens * kvDim * 2))
                }
            }
        }
        allocatedBytes += extra
        seq.reservedLength = length
        return true
    }

    /// Returns a sequence's storage to the pool.
    public func release(_ seq: SequenceKV) {
        for (i, l) in layers.enumerated() {
            if let r = seq.rings[i], let w = l.kind.window {
                freeRings[w, default: []].append(r)
                allocatedBytes -= w * bytesPerPosition
            }
            freeBlocks.append(contentsOf: seq.blocks[i])
            allocatedBytes -= seq.blocks[i].count * blockBytes
            seq.rings[i] = nil
            seq.blocks[i] = []
        }
        seq.reservedLength = 0
        seq.length = 0
        liveSequences[seq.id] = nil
    }

    /// Copies every position `src` still holds (all of them for global layers, the last W for
    /// sliding ones) into the empty sequence `dst`, which must be reserved for `src.length`: a fork,
    /// so n completions of one prompt share one prompt pass.
    public func copy(from src: SequenceKV, to dst: SequenceKV) {
        precondition(dst.length == 0 && dst.reservedLength >= src.length, "fork target must be empty and reserved")
        for (l, spec) in layers.enumerated() {
            let lo = spec.kind.window.map { max(0, src.length - $0) } ?? 0
            for p in lo..<src.length {
                let a = rows(src, layer: l, pos: p), b = rows(dst, layer: l, pos: p)
                b.k.update(from: a.k, count: kvDim)
                b.v.update(from: a.v, count: kvDim)
            }
        }
        dst.length = src.length
    }

    // MARK: addressing (K plane then V plane inside each ring/block)

    /// Pointers to the K and V rows of `pos` in `layer` (the position must be reserved).
    @inline(__always)
    func rows(_ seq: SequenceKV, layer: Int, pos: Int) -> (k: UnsafeMutablePointer<UInt16>, v: UnsafeMutablePointer<UInt16>) {
        if let w = layers[layer].kind.window {
            let r = seq.rings[layer]!
            let slot = pos % w
            return (r + slot * kvDim, r + (w + slot) * kvDim)
        }
        let b = seq.blocks[layer][pos / blockTokens]
        let slot = pos % blockTokens
        return (b + slot * kvDim, b + (blockTokens + slot) * kvDim)
    }

    /// Appends the cached positions [lo, hi) of `layer` to `segs` as contiguous runs, offset to kv head `h`.
    func segments(_ seq: SequenceKV, layer: Int, from lo: Int, to hi: Int, head h: Int, headDim: Int,
                  into segs: UnsafeMutablePointer<zk_kv_segment>, count: inout Int) {
        guard lo < hi else { return }
        let off = h * headDim
        if let w = layers[layer].kind.window {
            let r = seq.rings[layer]!
            var p = lo
            while p < hi {
                let slot = p % w
                let n = min(hi - p, w - slot)
                segs[count] = zk_kv_segment(k: r + slot * kvDim + off, v: r + (w + slot) * kvDim + off, n: Int64(n))
                count += 1
                p += n
            }
        } else {
            var p = lo
            while p < hi {
                let b = seq.blocks[layer][p / blockTokens]
                let slot = p % blockTokens
                let n = min(hi - p, blockTokens - slot)
                segs[count] = zk_kv_segment(k: b + slot * kvDim + off, v: b + (blockTokens + slot) * kvDim + off, n: Int64(n))
                count += 1
                p += n
            }
        }
    }
}
