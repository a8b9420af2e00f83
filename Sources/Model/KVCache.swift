// The Zebra KV cache: a ring of W positions per sliding-window layer, and fixed-size blocks that grow
// with the sequence for global layers. Each position stores a row of keys and a row of values (every KV
// head, in the cache's type: f16, or q8_0 at about half the bytes) in separate K and V planes of a block.
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
    var rings: [UnsafeMutableRawPointer?]
    var blocks: [[UnsafeMutableRawPointer]]
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

public final class KVCache: @unchecked Sendable {
    public let layers: [LayerSpec]
    public let kvHeads: Int, headDim: Int
    public let type: KVCacheType
    /// Bytes of one KV head in a row, and of a row (all KV heads of one position, K or V).
    public let headBytes: Int, rowBytes: Int
    /// Positions per block of a global layer.
    public let blockTokens: Int
    /// Maximum bytes of storage allocated across all sequences.
    public let budgetBytes: Int
    public private(set) var allocatedBytes = 0
    private var freeBlocks: [UnsafeMutableRawPointer] = []
    /// Block and ring storage is carved from 2 MiB-aligned slabs advised for transparent huge pages:
    /// at depth a decode step streams tens of MB of cache, and with 4 KiB pages every page boundary
    /// stops the hardware prefetchers and costs a TLB miss. Storage is recycled through the free
    /// lists and returned with the slabs when the cache goes away.
    private var slabs: [UnsafeMutableRawPointer] = []
    private var slabNext: UnsafeMutableRawPointer?
    private var slabLeft = 0
    private static let slabBytes = 2 << 20
    private var freeRings: [Int: [UnsafeMutableRawPointer]] = [:]
    private var nextID = 0
    public private(set) var liveSequences: [Int: SequenceKV] = [:]

    public init(layers: [LayerSpec], kvHeads: Int, headDim: Int, type: KVCacheType = .f16,
                blockTokens: Int = 256, budgetBytes: Int = Int.max) {
        precondition(type.unsupportedReason(headDim: headDim) == nil, "unsupported KV cache type for this model")
        self.layers = layers
        self.kvHeads = kvHeads
        self.headDim = headDim
        self.type = type
        self.headBytes = Int(zk_kv_head_bytes(type.kernelType, Int64(headDim)))
        self.rowBytes = kvHeads * headBytes
        self.blockTokens = blockTokens
        self.budgetBytes = budgetBytes
    }

    /// An f16 cache of one KV head of `kvDim` (tests of the sizes).
    public convenience init(layers: [LayerSpec], kvDim: Int, blockTokens: Int = 256, budgetBytes: Int = Int.max) {
        self.init(layers: layers, kvHeads: 1, headDim: kvDim, blockTokens: blockTokens, budgetBytes: budgetBytes)
    }

    deinit {
        for p in slabs { free(p) }
    }

    /// `rows` rows of storage from the current slab (a new one when it is full).
    private func storage(rows: Int) -> UnsafeMutableRawPointer {
        let bytes = (rows * rowBytes + 63) & ~63
        if bytes > slabLeft {
            let size = (bytes + Self.slabBytes - 1) / Self.slabBytes * Self.slabBytes
            var p: UnsafeMutableRawPointer?
            guard posix_memalign(&p, Self.slabBytes, size) == 0, let p else { fatalError("KV cache: out of memory") }
            _ = madvise(p, size, 14)  // MADV_HUGEPAGE (a hint; without THP the slab is ordinary memory)
            slabs.append(p)
            slabNext = p
            slabLeft = size
        }
        let r = slabNext!
        slabNext = r + bytes
        slabLeft -= bytes
        return r
    }

    /// Bytes of one position in one layer (K and V).
    public var bytesPerPosition: Int { rowBytes * 2 }
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
                    seq.rings[i] = freeRings[w]?.popLast() ?? storage(rows: w * 2)
                }
            } else {
                while seq.blocks[i].count * blockTokens < length {
                    seq.blocks[i].append(freeBlocks.popLast() ?? storage(rows: blockTokens * 2))
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
                b.k.copyMemory(from: a.k, byteCount: rowBytes)
                b.v.copyMemory(from: a.v, byteCount: rowBytes)
            }
        }
        dst.length = src.length
    }

    // MARK: addressing (K plane then V plane inside each ring/block)

    /// Pointers to the K and V rows of `pos` in `layer` (the position must be reserved).
    @inline(__always)
    func rows(_ seq: SequenceKV, layer: Int, pos: Int) -> (k: UnsafeMutableRawPointer, v: UnsafeMutableRawPointer) {
        if let w = layers[layer].kind.window {
            let r = seq.rings[layer]!
            let slot = pos % w
            return (r + slot * rowBytes, r + (w + slot) * rowBytes)
        }
        let b = seq.blocks[layer][pos / blockTokens]
        let slot = pos % blockTokens
        return (b + slot * rowBytes, b + (blockTokens + slot) * rowBytes)
    }

    /// Appends the cached positions [lo, hi) of `layer` to `segs` as contiguous runs, offset to kv head `h`.
    func segments(_ seq: SequenceKV, layer: Int, from lo: Int, to hi: Int, head h: Int,
                  into segs: UnsafeMutablePointer<zk_kv_segment>, count: inout Int) {
        guard lo < hi else { return }
        let off = h * headBytes
        if let w = layers[layer].kind.window {
            let r = seq.rings[layer]!
            var p = lo
            while p < hi {
                let slot = p % w
                let n = min(hi - p, w - slot)
                segs[count] = zk_kv_segment(k: r + slot * rowBytes + off, v: r + (w + slot) * rowBytes + off, n: Int64(n))
                count += 1
                p += n
            }
        } else {
            var p = lo
            while p < hi {
                let b = seq.blocks[layer][p / blockTokens]
                let slot = p % blockTokens
                let n = min(hi - p, blockTokens - slot)
                segs[count] = zk_kv_segment(k: b + slot * rowBytes + off, v: b + (blockTokens + slot) * rowBytes + off, n: Int64(n))
                count += 1
                p += n
            }
        }
    }
}
