// The shared merge loop of SentencePiece and BPE (llama.cpp llm_tokenizer_spm / llm_tokenizer_bpe):
// start from UTF-8 characters; repeatedly merge the adjacent pair with the best priority (ties: the
// leftmost), lazily skipping queue entries whose symbols changed since they were queued.

struct SymbolMerger {
    struct Symbol { var start: Int; var n: Int; var prev: Int; var next: Int }
    struct Bigram { var left: Int; var right: Int; var priority: Float; var size: Int }

    /// Merges `bytes` (one pre-tokenized word) and returns the final symbols as byte ranges, in order.
    /// `priority(start, leftLen, rightLen)` is nil when the pair may not merge; higher merges first.
    static func merge(_ bytes: [UInt8], priority: (Int, Int, Int) -> Float?) -> [Range<Int>] {
        var syms: [Symbol] = []
        var i = 0
        while i < bytes.count {
            let len = min(utf8Length(bytes[i]), bytes.count - i)
            syms.append(Symbol(start: i, n: len, prev: syms.count - 1, next: syms.count + 1))
            i += len
        }
        guard !syms.isEmpty else { return [] }
        syms[syms.count - 1].next = -1
        var heap = Heap()
        func tryAdd(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let s = syms[l], t = syms[r]
            if let p = priority(s.start, s.n, t.n) { heap.push(Bigram(left: l, right: r, priority: p, size: s.n + t.n)) }
        }
        for j in 1..<syms.count { tryAdd(j - 1, j) }
        while let b = heap.pop() {
            let l = syms[b.left], r = syms[b.right]
            if l.n == 0 || r.n == 0 || l.n + r.n != b.size || l.next != b.right { continue }
            syms[b.left].n += r.n
            syms[b.right].n = 0
            syms[b.left].next = r.next
            if r.next >= 0 { syms[r.next].prev = b.left }
            tryAdd(syms[b.left].prev, b.left)
            tryAdd(b.left, syms[b.left].next)
        }
        var out: [Range<Int>] = []
        var k = 0
        while k != -1 {
            out.append(syms[k].start..<syms[k].start + syms[k].n)
            k = syms[k].next
        }
        return out
    }

    /// Byte length of a UTF-8 sequence from its first byte (invalid lead bytes count as one).
    static func utf8Length(_ b: UInt8) -> Int {
        switch b >> 4 { case 0xF: 4; case 0xE: 3; case 0xC, 0xD: 2; default: 1 }
    }

    /// Max-heap on (priority, then smaller left index).
    struct Heap {
        var items: [Bigram] = []
        @inline(__always) func better(_ a: Bigram, _ b: Bigram) -> Bool {
            a.priority > b.priority || (a.priority == b.priority && a.left < b.left)
        }
        mutating func push(_ x: Bigram) {
            items.append(x)
            var i = items.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                if !better(items[i], items[p]) { break }
                items.swapAt(i, p)
                i = p
            }
        }
        mutating func pop() -> Bigram? {
            guard let top = items.first else { return nil }
            let last = items.removeLast()
            if !items.isEmpty {
                items[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < items.count && better(items[l], items[m]) { m = l }
                    if r < items.count && better(items[r], items[m]) { m = r }
                    if m == i { break }
                    items.swapAt(i, m)
                    i = m
                }
            }
            return top
        }
    }
}
