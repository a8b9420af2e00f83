// The regular-expression subset of JSON Schema's `pattern`, compiled to grammar rules over a JSON
// string's characters as they appear in the JSON text (`"` and `\` escaped, control characters as
// \n \r \t escapes or not generated at all). Supported: literals, `.`, \d \w \s \D \W \S, escaped
// punctuation, \n \r \t \f \v \xHH \uHHHH, classes [...] and [^...] with ranges, groups (...) (?:...)
// (?P<name>...) (?<name>...), alternation, quantifiers * + ? {n} {n,} {n,m} (lazy forms too), and
// ^ / $ at the pattern's ends. JSON Schema patterns are unanchored searches: without ^ (or $) any text
// may come before (or after) a match. Anything else (backreferences, lookaround, \b, flags) is refused.
//
// \d \w \s are their ASCII forms; their negations, and `.`, generate ASCII only where the Unicode
// meaning (which the validator applies) would differ, so every generated string matches.

indirect enum RegexNode {
    case chars(CharClass)
    case seq([RegexNode])
    case alt([RegexNode])
    case rep(RegexNode, min: Int, max: Int?)
}

struct RegexParser {
    let s: [Unicode.Scalar]
    var i = 0
    var anchoredStart = false, anchoredEnd = false

    static let digit = CharClass(ranges: [0x30...0x39])
    static let word = CharClass(ranges: [0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x5F...0x5F])
    static let space = CharClass(" \t\n\r\u{0C}\u{0B}")
    static let ascii = CharClass(ranges: [0...0x7F])
    /// `.`: any character but a newline.
    static let dot = CharClass.any.subtracting(CharClass("\n"))

    init(_ pattern: String) { s = Array(pattern.unicodeScalars) }

    func fail(_ m: String) -> GrammarError { GrammarError("pattern", "pattern: \(m) (at character \(i))") }

    static func parse(_ pattern: String) throws(GrammarError) -> (RegexNode, start: Bool, end: Bool) {
        var p = RegexParser(pattern)
        if p.s.first == "^" { p.anchoredStart = true; p.i = 1 }
        var end = p.s.count
        if end > p.i, p.s[end - 1] == "$" {
            // `$` unless escaped (an odd number of backslashes before it).
            var k = end - 2, slashes = 0
            while k >= p.i && p.s[k] == "\\" { slashes += 1; k -= 1 }
            if slashes % 2 == 0 { p.anchoredEnd = true; end -= 1 }
        }
        var q = RegexParser("")
        q = RegexParser(String(String.UnicodeScalarView(p.s[p.i..<end])))
        let node = try q.alternation(depth: 0)
        guard q.i == q.s.count else { throw q.fail("unbalanced ')'") }
        if (p.anchoredStart || p.anchoredEnd), case .alt = node {
            throw GrammarError("pattern", "pattern: anchors with a top-level '|' are not supported; group the alternatives: ^(a|b)$")
        }
        return (node, p.anchoredStart, p.anchoredEnd)
    }

    mutating func alternation(depth: Int) throws(GrammarError) -> RegexNode {
        guard depth < 64 else { throw fail("groups nested too deeply") }
        var alts = [try sequence(depth: depth)]
        while i < s.count && s[i] == "|" { i += 1; alts.append(try sequence(depth: depth)) }
        return alts.count == 1 ? alts[0] : .alt(alts)
    }

    mutating func sequence(depth: Int) throws(GrammarError) -> RegexNode {
        var items: [RegexNode] = []
        while i < s.count && s[i] != "|" && s[i] != ")" {
            var atom = try self.atom(depth: depth)
            if i < s.count, let (mn, mx) = try quantifier() {
                if case .rep = atom { throw fail("nested quantifier") }
                atom = .rep(atom, min: mn, max: mx)
            }
            items.append(atom)
        }
        return items.count == 1 ? items[0] : .seq(items)
    }

    mutating func number() -> Int? {
        var v = 0, n = 0
        while i < s.count, s[i].value >= 0x30 && s[i].value <= 0x39 {
            v = min(v * 10 + Int(s[i].value - 0x30), 1_000_000); i += 1; n += 1
        }
        return n > 0 ? v : nil
    }

    mutating func quantifier() throws(GrammarError) -> (Int, Int?)? {
        var q: (Int, Int?)
        switch s[i] {
        case "*": q = (0, nil); i += 1
        case "+": q = (1, nil); i += 1
        case "?": q = (0, 1); i += 1
        case "{":
            let save = i
            i += 1
            guard let a = number() else { i = save; return nil }
            if i < s.count, s[i] == "}" { i += 1; q = (a, a) } else if i < s.count, s[i] == "," {
                i += 1
                let b = number()
                guard i < s.count, s[i] == "}" else { i = save; return nil }
                i += 1
                q = (a, b)
            } else { i = save; return nil }
            if let b = q.1, b < q.0 { throw fail("{\(q.0),\(b)}: minimum above maximum") }
            guard q.0 <= 10_000, (q.1 ?? 0) <= 10_000 else { throw fail("repetition count above 10000") }
        default: return nil
        }
        if i < s.count, s[i] == "?" { i += 1 }          // lazy: the same language
        else if i < s.count, s[i] == "+" { throw fail("possessive quantifiers are not supported") }
        return q
    }

    mutating func atom(depth: Int) throws(GrammarError) -> RegexNode {
        let c = s[i]
        switch c {
        case "(":
            i += 1
            if i < s.count, s[i] == "?" {
                i += 1
                guard i < s.count else { throw fail("unterminated group") }
                if s[i] == ":" { i += 1 } else if s[i] == "P" || s[i] == "<" {
                    if s[i] == "P" { i += 1 }
                    guard i < s.count, s[i] == "<", i + 1 < s.count, s[i + 1] != "=", s[i + 1] != "!" else {
                        throw fail("lookarounds and (?P=...) backreferences are not supported")
                    }
                    while i < s.count && s[i] != ">" { i += 1 }
                    guard i < s.count else { throw fail("unterminated group name") }
                    i += 1
                } else {
                    throw fail("'(?\(s[i])' (lookaround, flags or conditionals) is not supported")
                }
            }
            let inner = try alternation(depth: depth + 1)
            guard i < s.count, s[i] == ")" else { throw fail("missing ')'") }
            i += 1
            return inner
        case "[":
            return .chars(try bracket())
        case ".":
            i += 1
            return .chars(Self.dot)
        case "\\":
            return .chars(try escape(inClass: false))
        case "^", "$":
            throw fail("'\(c)' is supported only at the start / end of the pattern")
        case "*", "+", "?":
            throw fail("nothing to repeat")
        case "{":
            i += 1
            return .chars(CharClass("{"))      // a brace that starts no quantifier is literal
        default:
            i += 1
            return .chars(CharClass(String(c)))
        }
    }

    mutating func hex(_ n: Int) throws(GrammarError) -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<n {
            guard i < s.count, let d = UInt32(String(s[i]), radix: 16) else { throw fail("bad hex escape") }
            v = v << 4 | d; i += 1
        }
        return v
    }

    /// After a backslash (i at the backslash).
    mutating func escape(inClass: Bool) throws(GrammarError) -> CharClass {
        i += 1
        guard i < s.count else { throw fail("trailing backslash") }
        let c = s[i]
        i += 1
        switch c {
        case "d": return Self.digit
        case "w": return Self.word
        case "s": return Self.space
        case "D": return Self.digit.complement(in: Self.ascii)
        case "W": return Self.word.complement(in: Self.ascii)
        case "S": return Self.space.complement(in: Self.ascii)
        case "n": return CharClass("\n")
        case "r": return CharClass("\r")
        case "t": return CharClass("\t")
        case "f": return CharClass("\u{0C}")
        case "v": return CharClass("\u{0B}")
        case "x": var k = CharClass(); k.insert(try hex(2)); return k
        case "u": var k = CharClass(); k.insert(try hex(4)); return k
        case "b" where inClass: return CharClass("\u{08}")
        default:
            if c.properties.isAlphabetic || ("0"..."9").contains(c) {
                throw fail("'\\\(c)' (word boundaries, backreferences, classes beyond \\d \\w \\s) is not supported")
            }
            return CharClass(String(c))
        }
    }

    /// The one character of a class, if it has exactly one.
    static func single(_ k: CharClass) -> UInt32? {
        let n = k.lo.nonzeroBitCount + k.hi.nonzeroBitCount
        if n == 1 && k.ranges.isEmpty { return k.lo != 0 ? UInt32(k.lo.trailingZeroBitCount) : 64 + UInt32(k.hi.trailingZeroBitCount) }
        if n == 0 && k.ranges.count == 1 && k.ranges[0].count == 1 { return k.ranges[0].lowerBound }
        return nil
    }

    mutating func bracket() throws(GrammarError) -> CharClass {
        i += 1
        var negate = false
        if i < s.count, s[i] == "^" { negate = true; i += 1 }
        var set = CharClass()
        var asciiOnly = false
        var first = true
        while true {
            guard i < s.count else { throw fail("missing ']'") }
            if s[i] == "]" && !first { i += 1; break }
            first = false
            var lo: UInt32
            if s[i] == "\\" {
                let save = i
                let k = try escape(inClass: true)
                let name = s[save + 1]
                if "dwsDWS".unicodeScalars.contains(name) {
                    set = set.union(k); asciiOnly = true; continue
                }
                guard let one = Self.single(k) else { throw fail("bad escape in a class") }
                lo = one
            } else {
                if s[i] == "[" && i + 1 < s.count && s[i + 1] == ":" { throw fail("POSIX classes [:name:] are not supported") }
                lo = s[i].value; i += 1
            }
            if i + 1 < s.count, s[i] == "-", s[i + 1] != "]" {
                i += 1
                var hi: UInt32
                if s[i] == "\\" {
                    guard let one = Self.single(try escape(inClass: true)) else { throw fail("a class cannot end a range") }
                    hi = one
                } else { hi = s[i].value; i += 1 }
                guard lo <= hi else { throw fail("range out of order") }
                set.insert(lo...hi)
            } else {
                set.insert(lo)
            }
        }
        guard negate else { return set }
        // A negated class with \d \w \s inside would exclude Unicode digits/letters/spaces too: stay ASCII.
        return set.complement(in: asciiOnly ? Self.ascii : .any)
    }
}
