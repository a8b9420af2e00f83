// A grammar's parser state and its byte-level step: a pushdown automaton whose state is a set of stacks
// (more than one while alternatives are open, as in anyOf). A stack is a chain of frames in an arena;
// its top is always a character class, so a step is: for each stack whose class takes the byte, pop to
// the next element and expand rules until classes are on top again. Multi-byte UTF-8 characters are
// matched a byte at a time: a frame part-way through one holds the bits so far, and a byte is taken
// only if some well-formed character with those bits is in the class (no overlongs, no surrogates).
//
// The token mask (which vocabulary tokens may come next) walks the vocabulary's byte trie from the
// current state, one step per trie edge, dropping a subtree as soon as no stack survives; frames made
// below a trie node are discarded when the walk leaves it, so a walk allocates nothing once warm.

struct Frame: Equatable {
    /// Element index: a character class on a stack's top; the element to resume at in a return frame.
    var pos: Int32
    /// Iterations done, in the return frame of a repetition.
    var count: Int32
    /// A character part-way through: bits so far | remaining bytes << 24 | total length << 28.
    var partial: UInt32
    /// The frame below, -1 at the bottom.
    var parent: Int32
}

public final class GrammarMatcher: @unchecked Sendable {
    let grammar: Grammar
    private var frames: [Frame] = []
    private var top = 0
    /// The current state's stacks (frame indices).
    private var stacks: [Int32] = []
    /// Whether the text so far is a complete match.
    public private(set) var isAccepting = false
    // Scratch for steps and mask walks.
    private var buf: [Int32] = []
    private var accepted = false
    private var budget = 0
    private var depthStart: [Int] = [], depthEnd: [Int] = [], arenaMark: [Int] = []

    /// Expansions one byte may cause before the step is refused, and one mask walk before it stops
    /// (bounds for pathological grammars: a refused step or a stopped walk only leaves tokens out,
    /// never lets an invalid one in; an empty mask then fails the request instead of hanging it).
    static let stepBudget = 100_000
    static let walkBudget = 20_000_000
    private var walkLeft = Int.max
    /// Whether the last mask walk stopped at its budget.
    public private(set) var walkStopped = false
    /// Stacks one state may hold (dedupe is quadratic in it).
    static let maxStacks = 1024

    public init(_ grammar: Grammar) {
        self.grammar = grammar
        budget = Self.stepBudget
        buf = []
        let ret: Int32 = -1
        for a in grammar.alternatives[Int(grammar.root)] { expand(a, 0, ret, 0, from: 0) }
        stacks = buf
        isAccepting = accepted
        compact()
    }

    /// True when the text so far is complete and nothing may follow.
    public var isFinished: Bool { stacks.isEmpty }


    // MARK: arena

    @inline(__always) private func push(_ f: Frame) -> Int32 {
        if top < frames.count { frames[top] = f } else { frames.append(f) }
        top += 1
        return Int32(top - 1)
    }

    private func same(_ a: Int32, _ b: Int32) -> Bool {
        var a = a, b = b
        while a != b {
            if a < 0 || b < 0 { return false }
            let fa = frames[Int(a)], fb = frames[Int(b)]
            if fa.pos != fb.pos || fa.count != fb.count || fa.partial != fb.partial { return false }
            a = fa.parent; b = fb.parent
        }
        return true
    }

    /// Adds a stack to the set being built in buf[from...], unless an equal one is there.
    @inline(__always) private func add(_ s: Int32, from: Int) {
        guard buf.count - from < Self.maxStacks else { budget = 0; return }
        var k = from
        while k < buf.count { if same(buf[k], s) { return }; k += 1 }
        buf.append(s)
    }

    /// Expands the element at `pos` until classes are on top; stacks go to buf[from...].
    private func expand(_ pos: Int32, _ count: Int32, _ parent: Int32, _ depth: Int, from: Int) {
        budget -= 1
        walkLeft -= 1
        guard budget > 0, walkLeft > 0, depth < 1000 else { return }
        switch grammar.elements[Int(pos)] {
        case .chars:
            add(push(Frame(pos: pos, count: 0, partial: 0, parent: parent)), from: from)
        case .end:
            if parent < 0 { accepted = true; return }
            let p = frames[Int(parent)]
            expand(p.pos, p.count, p.parent, depth + 1, from: from)
        case let .rule(r):
            var ret = parent
            if case .end = grammar.elements[Int(pos) + 1] {} else { ret = push(Frame(pos: pos + 1, count: 0, partial: 0, parent: parent)) }
            for a in grammar.alternatives[Int(r)] { expand(a, 0, ret, depth + 1, from: from) }
        case let .repeated(r, mn, mx):
            if mx < 0 || count < mx {
                let next = mx < 0 ? min(count + 1, mn) : count + 1
                let ret = push(Frame(pos: pos, count: next, partial: 0, parent: parent))
                for a in grammar.alternatives[Int(r)] { expand(a, 0, ret, depth + 1, from: from) }
            }
            if count >= mn { expand(pos + 1, 0, parent, depth + 1, from: from) }
        }
    }

    /// Whether class k has a scalar in lo...hi (both >= 0x80).
    @inline(__always) private func intersects(_ k: Int, _ lo: UInt32, _ hi: UInt32) -> Bool {
        var r = Int(grammar.rangeStart[k])
        let e = Int(grammar.rangeStart[k + 1])
        while r < e {
            if grammar.rangeLo[r] <= hi && grammar.rangeHi[r] >= lo { return true }
            r += 1
        }
        return false
    }

    /// Whether a well-formed UTF-8 character of `length` bytes in lo...hi can be in class k.
    @inline(__always) private func possible(_ k: Int, _ lo: UInt32, _ hi: UInt32, length: UInt32) -> Bool {
        let (vlo, vhi): (UInt32, UInt32) = length == 2 ? (0x80, 0x7FF) : length == 3 ? (0x800, 0xFFFF) : (0x10000, 0x10FFFF)
        let a = max(lo, vlo), b = min(hi, vhi)
        guard a <= b else { return false }
        if length == 3 {   // no surrogates
            return (a < 0xD800 && intersects(k, a, min(b, 0xD7FF))) || (b > 0xDFFF && intersects(k, max(a, 0xE000), b))
        }
        return intersects(k, a, b)
    }

    /// One byte on stack `s`: the resulting stacks go to buf[from...].
    @inline(__always) private func step(_ s: Int32, _ byte: UInt8, from: Int) {
        let f = frames[Int(s)]
        guard case let .chars(k32) = grammar.elements[Int(f.pos)] else { return }
        let k = Int(k32)
        let b = UInt32(byte)
        if f.partial == 0 {
            if b < 0x80 {
                let bit = b < 64 ? grammar.asciiLo[k] >> b : grammar.asciiHi[k] >> (b - 64)
                if bit & 1 != 0 { expand(f.pos + 1, 0, f.parent, 0, from: from) }
                return
            }
            let length: UInt32, bits: UInt32
            switch b {
            case 0xC2...0xDF: length = 2; bits = b & 0x1F
            case 0xE0...0xEF: length = 3; bits = b & 0x0F
            case 0xF0...0xF4: length = 4; bits = b & 0x07
            default: return
            }
            let rest = length - 1
            guard possible(k, bits << (6 * rest), bits << (6 * rest) | ((1 << (6 * rest)) - 1), length: length) else { return }
            add(push(Frame(pos: f.pos, count: 0, partial: bits | rest << 24 | length << 28, parent: f.parent)), from: from)
            return
        }
        guard b & 0xC0 == 0x80 else { return }
        let length = f.partial >> 28
        let rest = (f.partial >> 24 & 0xF) - 1
        let bits = (f.partial & 0xFFFFFF) << 6 | (b & 0x3F)
        let lo = bits << (6 * rest), hi = lo | ((1 << (6 * rest)) - 1)
        guard possible(k, lo, hi, length: length) else { return }
        if rest == 0 {
            expand(f.pos + 1, 0, f.parent, 0, from: from)
        } else {
            add(push(Frame(pos: f.pos, count: 0, partial: bits | rest << 24 | length << 28, parent: f.parent)), from: from)
        }
    }

    /// Steps every stack of buf[range] with `byte` into a new set at the end of buf. Returns the new
    /// set's start; the set is empty if buf.count equals it.
    private func stepSet(_ range: Range<Int>, _ byte: UInt8) -> Int {
        let from = buf.count
        budget = Self.stepBudget
        accepted = false
        for k in range { step(buf[k], byte, from: from) }
        return from
    }

    // MARK: the request's text

    /// Whether `bytes` may follow the text so far (the state is unchanged).
    public func allows(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        let mark = top
        defer { top = mark; buf.removeAll(keepingCapacity: true) }
        buf.removeAll(keepingCapacity: true)
        buf.append(contentsOf: stacks)
        var range = 0..<buf.count
        for (k, b) in bytes.enumerated() {
            let s = stepSet(range, b)
            if buf.count == s { return accepted && k == bytes.count - 1 }
            range = s..<buf.count
        }
        return true
    }

    /// Takes `bytes` (a sampled token's). Returns false, with the state unchanged, if they may not follow.
    @discardableResult
    public func accept(_ bytes: [UInt8]) -> Bool {
        guard !bytes.isEmpty else { return false }
        let mark = top
        buf.removeAll(keepingCapacity: true)
        buf.append(contentsOf: stacks)
        var range = 0..<buf.count
        for (k, b) in bytes.enumerated() {
            let s = stepSet(range, b)
            range = s..<buf.count
            if buf.count == s && !(accepted && k == bytes.count - 1) { top = mark; return false }
        }
        stacks = Array(buf[range])
        isAccepting = accepted
        compact()
        return true
    }

    /// Rebuilds the arena with only the current stacks' frames.
    private func compact() {
        var old = frames
        old.removeLast(frames.count - top)
        frames.removeAll(keepingCapacity: true)
        top = 0
        var map: [Int32: Int32] = [:]
        func copy(_ i: Int32) -> Int32 {
            if i < 0 { return -1 }
            if let j = map[i] { return j }
            var f = old[Int(i)]
            f.parent = copy(f.parent)
            let j = push(f)
            map[i] = j
            return j
        }
        stacks = stacks.map(copy)
        buf.removeAll(keepingCapacity: true)
    }

    /// The state as a value for the mask cache: each stack's frames top to bottom, sorted. A repetition's
    /// count enters as how many more iterations it needs and allows, each capped at `horizon` (the
    /// longest token in bytes): a token cannot tell counts apart beyond that, so a long string's states
    /// share one mask.
    public func stateKey(horizon: Int) -> [UInt32] {
        let h = Int32(min(horizon, 0xFFFF))
        var parts: [[UInt32]] = stacks.map { s in
            var out: [UInt32] = []
            var i = s
            while i >= 0 {
                let f = frames[Int(i)]
                var count = UInt32(bitPattern: f.count)
                if case let .repeated(_, mn, mx) = grammar.elements[Int(f.pos)] {
                    let need = min(max(mn - f.count, 0), h), room = mx < 0 ? h : min(mx - f.count, h)
                    count = UInt32(need) << 16 | UInt32(room)
                }
                out += [UInt32(bitPattern: f.pos), count, f.partial]
                i = f.parent
            }
            return out
        }
        parts.sort { $0.lexicographicallyPrecedes($1) }
        var key: [UInt32] = [isAccepting ? 1 : 0]
        for p in parts { key += p; key.append(.max) }
        return key
    }

    /// Sets bit t of `mask` for every token t of `trie` whose bytes may follow the text so far (bits
    /// are only set; the caller clears the mask).
    public func fillMask(_ trie: TokenTrie, _ mask: UnsafeMutablePointer<UInt64>) {
        let mark = top
        defer { top = mark; buf.removeAll(keepingCapacity: true) }
        buf.removeAll(keepingCapacity: true)
        buf.append(contentsOf: stacks)
        let maxDepth = trie.maxDepth + 1
        if depthStart.count < maxDepth {
            depthStart = .init(repeating: 0, count: maxDepth); depthEnd = depthStart; arenaMark = depthStart
        }
        depthStart[0] = 0; depthEnd[0] = buf.count; arenaMark[0] = top
        walkLeft = Self.walkBudget
        walkStopped = false
        defer { walkStopped = walkLeft <= 0; walkLeft = .max }
        var j = 0
        let n = trie.count
        trie.byte.withUnsafeBufferPointer { bytes in
        trie.depth.withUnsafeBufferPointer { depth in
        trie.subtreeEnd.withUnsafeBufferPointer { subtreeEnd in
            while j < n && walkLeft > 0 {
                let d = Int(depth[j])
                top = arenaMark[d - 1]
                buf.removeLast(buf.count - depthEnd[d - 1])
                let s = stepSet(depthStart[d - 1]..<depthEnd[d - 1], bytes[j])
                if buf.count == s && !accepted { j = Int(subtreeEnd[j]); continue }
                var t = trie.tokenStart[j]
                let e = trie.tokenStart[j + 1]
                while t < e { let id = Int(trie.tokens[Int(t)]); mask[id >> 6] |= 1 << UInt64(id & 63); t += 1 }
                if buf.count == s { j = Int(subtreeEnd[j]); continue }   // complete: nothing may follow
                depthStart[d] = s; depthEnd[d] = buf.count; arenaMark[d] = top
                j += 1
            }
        }}}
    }
}

/// The vocabulary's tokens as a byte trie, flattened in pre-order: node j's subtree is j..<subtreeEnd[j],
/// so a walk skips a dead subtree with one jump. Tokens with no bytes (control tokens) are not in it.
public struct TokenTrie: Sendable {
    /// Per node: the edge's byte, depth (1 for a first byte), end of subtree.
    let byte: [UInt8]
    let depth: [UInt16]
    let subtreeEnd: [Int32]
    /// Tokens ending at node j: tokens[tokenStart[j]..<tokenStart[j + 1]].
    let tokenStart: [Int32]
    let tokens: [Int32]
    public let vocabularySize: Int
    let maxDepth: Int
    public var count: Int { byte.count }

    /// `pieces[t]`: the bytes token t adds to the text.
    public init(pieces: [[UInt8]]) {
        vocabularySize = pieces.count
        let order = pieces.indices.filter { !pieces[$0].isEmpty }.sorted { pieces[$0].lexicographicallyPrecedes(pieces[$1]) }
        var byte: [UInt8] = [], depth: [UInt16] = [], end: [Int32] = [], tokStart: [Int32] = [], toks: [Int32] = []
        var path: [Int] = []          // node index per depth - 1 along the current branch
        var pathBytes: [UInt8] = []
        var maxDepth = 0
        for t in order {
            let p = pieces[t]
            // Common prefix with the current branch.
            var k = 0
            while k < path.count && k < p.count && pathBytes[k] == p[k] { k += 1 }
            for node in path[k...] { end[node] = Int32(byte.count) }
            path.removeLast(path.count - k); pathBytes.removeLast(pathBytes.count - k)
            for i in k..<p.count {
                path.append(byte.count); pathBytes.append(p[i])
                byte.append(p[i]); depth.append(UInt16(i + 1)); end.append(0); tokStart.append(Int32(toks.count))
            }
            maxDepth = max(maxDepth, p.count)
            // The token ends at the last node of its path (sorted order: the newest node, or the same node
            // as an earlier token with the same bytes).
            let node = path[p.count - 1]
            let at = node + 1 < tokStart.count ? Int(tokStart[node + 1]) : toks.count
            toks.insert(Int32(t), at: at)
            for later in (node + 1)..<tokStart.count { tokStart[later] += 1 }
        }
        for node in path { end[node] = Int32(byte.count) }
        tokStart.append(Int32(toks.count))
        self.byte = byte; self.depth = depth; subtreeEnd = end; tokenStart = tokStart; tokens = toks
        self.maxDepth = maxDepth
    }
}
