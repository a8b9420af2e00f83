// Scratch buffers of the forward pass, grown on demand and reused: a steady decode step allocates nothing.
import CKernels
import Kernels

extension Transformer {
    struct Scratch {
        var capTokens = 0, capOut = 0, capThreads = 0, capKeys = 0, capItems = 0
        var x: UnsafeMutablePointer<Float>!       // [T, dim] residual stream
        var h: UnsafeMutablePointer<Float>!       // [T, dim] normed input
        var q: UnsafeMutablePointer<Float>!       // [T, nHeads * headDim]
        var k: UnsafeMutablePointer<Float>!       // [T, kvDim]
        var v: UnsafeMutablePointer<Float>!       // [T, kvDim]
        var kh: UnsafeMutableRawPointer!          // [T] rows of the cache's type (f16 bytes: room for any)
        var vh: UnsafeMutableRawPointer!          // [T] rows
        var att: UnsafeMutablePointer<Float>!     // [T, nHeads * headDim]
        var o: UnsafeMutablePointer<Float>!       // [T, dim]
        var gate: UnsafeMutablePointer<Float>!    // [T, ffnDim]
        var up: UnsafeMutablePointer<Float>!      // [T, ffnDim]
        var hOut: UnsafeMutablePointer<Float>!    // [outRows, dim]
        var logits: UnsafeMutablePointer<Float>!  // [outRows, vocab]
        var pos: UnsafeMutablePointer<Int>!       // [T]
        var item: UnsafeMutablePointer<Int>!      // [T]
        var tok: UnsafeMutablePointer<Int>!       // [T]
        var itemStart: UnsafeMutablePointer<Int>! // [T] (items <= tokens)
        var scores: [UnsafeMutablePointer<Float>] = []          // per thread zk_attend_scratch_floats
        var parts: [UnsafeMutablePointer<Float>] = []           // per thread: one query's chunk partials
        var segs: [UnsafeMutablePointer<zk_kv_segment>] = []    // per thread
        var units = GrowingBuffer<AttentionUnit>()              // this layer's attention work
        var unitCost = GrowingBuffer<Int>()                     // prefix sums of the units' key counts
        var shareBounds = GrowingBuffer<Int>()                  // each thread's first unit, then the count
        var splits = GrowingBuffer<SplitQuery>()                // queries whose chunks are spread
        var splitParts = GrowingBuffer<Float>()                 // their chunk partials
        var rope = GrowingBuffer<Float>()                       // [RoPE base][T][nRot] angles

        mutating func ensure(config c: ModelConfig, tokens: Int, outRows: Int, threads: Int, blockTokens: Int) {
            if tokens > capTokens {
                let n = max(tokens, capTokens * 2)
                freeTokenBuffers()
                x = .allocate(capacity: n * c.dim); h = .allocate(capacity: n * c.dim)
                q = .allocate(capacity: n * c.qDim); att = .allocate(capacity: n * c.qDim)
                k = .allocate(capacity: n * c.kvDim); v = .allocate(capacity: n * c.kvDim)
                kh = .allocate(byteCount: n * c.kvDim * 2, alignment: 64)
                vh = .allocate(byteCount: n * c.kvDim * 2, alignment: 64)
                o = .allocate(capacity: n * c.dim)
                gate = .allocate(capacity: n * c.ffnDim); up = .allocate(capacity: n * c.ffnDim)
                pos = .allocate(capacity: n); item = .allocate(capacity: n); tok = .allocate(capacity: n)
                itemStart = .allocate(capacity: n)
                capTokens = n
            }
            if outRows > capOut || logits == nil {
                let n = max(outRows, 1)
                hOut?.deallocate(); logits?.deallocate()
                hOut = .allocate(capacity: n * c.dim)
                logits = .allocate(capacity: n * c.vocabSize)
                capOut = n
            }
            if threads != capThreads || capKeys < c.contextLength {
                for p in scores { p.deallocate() }
                for p in parts { p.deallocate() }
                for p in segs { p.deallocate() }
                capKeys = c.contextLength
                let maxSegs = c.contextLength / blockTokens + 8
                let group = c.nHeads / c.nKVHeads, chunks = (capKeys + Int(ZK_ATT_CHUNK) - 1) / Int(ZK_ATT_CHUNK)
                let scratch = Int(zk_attend_scratch_floats(Int64(group), Int64(c.headDim)))
                scores = (0..<threads).map { _ in .allocate(capacity: scratch) }
                parts = (0..<threads).map { _ in .allocate(capacity: chunks * group * (c.headDim + 2)) }
                segs = (0..<threads).map { _ in .allocate(capacity: maxSegs) }
                capThreads = threads
            }
        }

        /// Frees everything (the transformer is going away).
        mutating func freeAll() {
            freeTokenBuffers()
            hOut?.deallocate(); logits?.deallocate()
            hOut = nil; logits = nil; capOut = 0
            for p in scores { p.deallocate() }
            for p in parts { p.deallocate() }
            for p in segs { p.deallocate() }
            scores = []; parts = []; segs = []; capThreads = 0; capKeys = 0
            units.deallocate(); unitCost.deallocate(); shareBounds.deallocate(); splits.deallocate(); splitParts.deallocate(); rope.deallocate()
        }

        mutating func freeTokenBuffers() {
            guard capTokens > 0 else { return }
            for p in [x, h, q, att, k, v, o, gate, up] { p?.deallocate() }
            kh?.deallocate(); vh?.deallocate()
            pos?.deallocate(); item?.deallocate(); tok?.deallocate(); itemStart?.deallocate()
            capTokens = 0
        }
    }
}
