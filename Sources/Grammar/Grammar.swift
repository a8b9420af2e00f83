// A context-free grammar over Unicode text, matched as UTF-8 bytes (Matcher.swift). Rules are lists of
// alternatives; an alternative is a sequence of elements: a character class, a reference to a rule, or a
// counted repetition of a rule (x{min,max}, native so `maxLength: 1000` is one element, not 1000 rules).
// The JSON Schema compiler (Schema.swift) and the regular-expression compiler (Regex.swift) build
// grammars with `GrammarBuilder`; `build()` refuses grammars the matcher could loop on (a repeated rule
// that can match nothing, or a rule that reaches itself before consuming a character).

/// A set of Unicode scalar values: ASCII as a bitmap, the rest as sorted disjoint ranges.
public struct CharClass: Hashable, Sendable {
    var lo: UInt64 = 0, hi: UInt64 = 0
    /// Sorted, disjoint, non-adjacent ranges of scalars >= 0x80.
    var ranges: [ClosedRange<UInt32>] = []

    public init() {}
    public init(_ s: String) { for u in s.unicodeScalars { insert(u.value) } }
    public init(ranges rs: [ClosedRange<UInt32>]) { for r in rs { insert(r) } }
    public static func byte(_ b: UInt8) -> CharClass { var c = CharClass(); c.insert(UInt32(b)); return c }
    /// Every scalar (surrogates excluded by UTF-8 itself).
    public static let any = CharClass(ranges: [0...0x10FFFF])

    public var isEmpty: Bool { lo == 0 && hi == 0 && ranges.isEmpty }

    public func contains(_ c: UInt32) -> Bool {
        if c < 64 { return lo >> c & 1 != 0 }
        if c < 128 { return hi >> (c - 64) & 1 != 0 }
        var a = 0, b = ranges.count
        while a < b {
            let m = (a + b) / 2
            if ranges[m].upperBound < c { a = m + 1 } else if ranges[m].lowerBound > c { b = m } else { return true }
        }
        return false
    }

    /// Whether any scalar in lo...hi (both >= 0x80) is in the class.
    func intersects(_ a: UInt32, _ b: UInt32) -> Bool {
        for r in ranges where r.lowerBound <= b && r.upperBound >= a { return true }
        return false
    }

    public mutating func insert(_ c: UInt32) { insert(c...c) }

    public mutating func insert(_ r: ClosedRange<UInt32>) {
        var a = r.lowerBound
        let b = min(r.upperBound, 0x10FFFF)
        guard a <= b else { return }
        while a < 128 && a <= b {
            if a < 64 { lo |= 1 << a } else { hi |= 1 << (a - 64) }
            a += 1
        }
        guard a <= b else { return }
        var out: [ClosedRange<UInt32>] = []
        var cur = a...b
        for x in ranges {
            if x.upperBound + 1 < cur.lowerBound || cur.upperBound + 1 < x.lowerBound { out.append(x) } else {
                cur = min(x.lowerBound, cur.lowerBound)...max(x.upperBound, cur.upperBound)
            }
        }
        out.append(cur)
        ranges = out.sorted { $0.lowerBound < $1.lowerBound }
    }

    public func union(_ o: CharClass) -> CharClass {
        var c = self
        c.lo |= o.lo; c.hi |= o.hi
        for r in o.ranges { c.insert(r) }
        return c
    }

    /// Scalars of `universe` not in self.
    public func complement(in universe: CharClass = .any) -> CharClass {
        var c = CharClass()
        c.lo = universe.lo & ~lo
        c.hi = universe.hi & ~hi
        for u in universe.ranges {
            var start = u.lowerBound
            for r in ranges where r.upperBound >= start && r.lowerBound <= u.upperBound {
                if r.lowerBound > start { c.insert(start...(r.lowerBound - 1)) }
                start = r.upperBound + 1
            }
            if start <= u.upperBound { c.insert(start...u.upperBound) }
        }
        return c
    }

    public func subtracting(_ o: CharClass) -> CharClass { o.complement(in: self) }
}

/// An element of an alternative.
public enum Symbol: Hashable, Sendable {
    case chars(CharClass)
    case rule(Int)
    /// The rule `min` to `max` times (`max` nil: unbounded).
    case repeated(Int, min: Int, max: Int?)
}

public struct GrammarError: Error, Equatable, CustomStringConvertible {
    /// The schema keyword or construct the error is about ("pattern", "$ref", ...).
    public let keyword: String
    public let message: String
    public init(_ keyword: String, _ message: String) { self.keyword = keyword; self.message = message }
    public var description: String { message }
}

/// Builds a grammar rule by rule. Rules may be declared before they are defined (recursion).
public struct GrammarBuilder {
    var rules: [[[Symbol]]?] = []
    private var literalRules: [[UInt8]: Int] = [:]
    /// Bound on the grammar's size (elements over all alternatives): schemas are request input.
    public var maxElements = 200_000
    private var elements = 0

    public init() {}

    /// A new rule to be defined later.
    public mutating func declare() -> Int { rules.append(nil); return rules.count - 1 }

    public mutating func define(_ r: Int, _ alternatives: [[Symbol]]) throws(GrammarError) {
        elements += alternatives.reduce(alternatives.count) { $0 + $1.count }
        guard elements <= maxElements else { throw GrammarError("schema", "the schema's grammar is too large (over \(maxElements) elements)") }
        rules[r] = alternatives
    }

    public mutating func rule(_ alternatives: [[Symbol]]) throws(GrammarError) -> Int {
        let r = declare()
        try define(r, alternatives)
        return r
    }

    /// A rule matching exactly `text`.
    public mutating func literal(_ text: String) throws(GrammarError) -> Int {
        let bytes = Array(text.utf8)
        if let r = literalRules[bytes] { return r }
        let r = try rule([text.unicodeScalars.map { .chars(CharClass(String($0))) }])
        literalRules[bytes] = r
        return r
    }

    /// A rule matching exactly one of `texts`, as a trie (one character per step whatever the count,
    /// where alternatives of literals would keep a stack per text).
    public mutating func literalSet(_ texts: [String]) throws(GrammarError) -> Int {
        if texts.count == 1 { return try literal(texts[0]) }
        func node(_ words: [[Unicode.Scalar]], _ at: Int) throws(GrammarError) -> Int {
            var alts: [[Symbol]] = []
            var groups: [UInt32: [[Unicode.Scalar]]] = [:]
            var order: [UInt32] = []
            for w in words {
                if w.count == at { alts.append([]); continue }
                let c = w[at].value
                if groups[c] == nil { order.append(c) }
                groups[c, default: []].append(w)
            }
            for c in order {
                var cls = CharClass()
                cls.insert(c)
                alts.append([.chars(cls), .rule(try node(groups[c]!, at + 1))])
            }
            return try rule(alts)
        }
        return try node(Array(Set(texts)).sorted().map { Array($0.unicodeScalars) }, 0)
    }

    /// The finished grammar starting at `root`. Throws if a rule is undefined, if a repeated rule can
    /// match nothing while its count is unbounded, or if a rule reaches itself without consuming.
    public func build(root: Int) throws(GrammarError) -> Grammar {
        var defined: [[[Symbol]]] = []
        for (i, r) in rules.enumerated() {
            guard let r else { throw GrammarError("schema", "internal: rule \(i) is not defined") }
            defined.append(r)
        }
        // Nullable rules (fixpoint).
        var nullable = [Bool](repeating: false, count: defined.count)
        var changed = true
        func symNullable(_ s: Symbol) -> Bool {
            switch s {
            case .chars: false
            case let .rule(r): nullable[r]
            case let .repeated(r, mn, _): mn == 0 || nullable[r]
            }
        }
        while changed {
            changed = false
            for (i, alts) in defined.enumerated() where !nullable[i] {
                if alts.contains(where: { $0.allSatisfy(symNullable) }) { nullable[i] = true; changed = true }
            }
        }
        for alts in defined {
            for alt in alts {
                for case let .repeated(r, _, mx) in alt where nullable[r] && mx == nil {
                    throw GrammarError("pattern", "a repeated part of the schema or pattern can match nothing (e.g. (a*)*)")
                }
            }
        }
        // Left recursion: edges to the rules reachable before consuming a character.
        var first = [[Int]](repeating: [], count: defined.count)
        for (i, alts) in defined.enumerated() {
            for alt in alts {
                for s in alt {
                    switch s {
                    case .chars: break
                    case let .rule(r), let .repeated(r, _, _): first[i].append(r)
                    }
                    if !symNullable(s) { break }
                }
            }
        }
        var state = [UInt8](repeating: 0, count: defined.count)   // 0 new, 1 on the path, 2 done
        for start in 0..<defined.count where state[start] == 0 {
            var stack: [(Int, Int)] = [(start, 0)]
            state[start] = 1
            while let (n, k) = stack.last {
                if k < first[n].count {
                    stack[stack.count - 1].1 += 1
                    let m = first[n][k]
                    if state[m] == 1 { throw GrammarError("$ref", "the schema refers to itself before any text is generated (left recursion)") }
                    if state[m] == 0 { state[m] = 1; stack.append((m, 0)) }
                } else {
                    state[n] = 2
                    stack.removeLast()
                }
            }
        }
        return Grammar(rules: defined, root: root)
    }
}

/// A compiled grammar: elements in one flat array, each alternative ending with `.end`.
public final class Grammar: Sendable {
    enum Element: Sendable {
        case chars(Int32)        // index into `classes`
        case rule(Int32)
        case repeated(Int32, min: Int32, max: Int32)   // max -1: unbounded
        case end
    }
    let elements: [Element]
    /// For each rule, the element index of each alternative's first element.
    let alternatives: [[Int32]]
    let classes: [CharClass]
    /// The classes flattened for the matcher's inner loop: ASCII bitmaps, and ranges above ASCII
    /// (class k's are rangeLo/rangeHi[rangeStart[k]..<rangeStart[k + 1]]).
    let asciiLo: [UInt64], asciiHi: [UInt64]
    let rangeStart: [Int32]
    let rangeLo: [UInt32], rangeHi: [UInt32]
    let root: Int32

    init(rules: [[[Symbol]]], root: Int) {
        var els: [Element] = []
        var alts: [[Int32]] = []
        var classes: [CharClass] = []
        var classIndex: [CharClass: Int32] = [:]
        for r in rules {
            var starts: [Int32] = []
            for alt in r {
                starts.append(Int32(els.count))
                for s in alt {
                    switch s {
                    case let .chars(c):
                        let k = classIndex[c] ?? { let k = Int32(classes.count); classes.append(c); classIndex[c] = k; return k }()
                        els.append(.chars(k))
                    case let .rule(x): els.append(.rule(Int32(x)))
                    case let .repeated(x, mn, mx): els.append(.repeated(Int32(x), min: Int32(mn), max: Int32(mx ?? -1)))
                    }
                }
                els.append(.end)
            }
            alts.append(starts)
        }
        elements = els
        alternatives = alts
        self.classes = classes
        asciiLo = classes.map(\.lo)
        asciiHi = classes.map(\.hi)
        var starts: [Int32] = [0], lo: [UInt32] = [], hi: [UInt32] = []
        for c in classes {
            for r in c.ranges { lo.append(r.lowerBound); hi.append(r.upperBound) }
            starts.append(Int32(lo.count))
        }
        rangeStart = starts; rangeLo = lo; rangeHi = hi
        self.root = Int32(root)
    }

    /// Elements over all alternatives (a size measure).
    public var size: Int { elements.count }
}
