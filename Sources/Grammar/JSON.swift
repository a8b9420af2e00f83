// JSON values with object key order kept (a schema's `properties` order is the order the grammar
// emits), a strict parser with a depth limit, and compact serialization (the form constrained output
// takes). Numbers keep their source text: `enum: [1.50]` is emitted as written.

public indirect enum JSON: Sendable, Equatable {
    case null
    case bool(Bool)
    /// The number's text as written (valid JSON number syntax).
    case number(String)
    case string(String)
    case array([JSON])
    /// Members in source order (duplicate keys: the last one wins, in the first one's place).
    case object([(String, JSON)])

    public static func == (a: JSON, b: JSON) -> Bool {
        switch (a, b) {
        case (.null, .null): true
        case let (.bool(x), .bool(y)): x == y
        case let (.number(x), .number(y)): x == y
        case let (.string(x), .string(y)): x == y
        case let (.array(x), .array(y)): x == y
        case let (.object(x), .object(y)): x.count == y.count && zip(x, y).allSatisfy { $0.0 == $1.0 && $0.1 == $1.1 }
        default: false
        }
    }

    public subscript(key: String) -> JSON? {
        guard case let .object(members) = self else { return nil }
        return members.last { $0.0 == key }?.1
    }

    public var stringValue: String? { if case let .string(s) = self { s } else { nil } }
    public var boolValue: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var arrayValue: [JSON]? { if case let .array(a) = self { a } else { nil } }
    public var objectValue: [(String, JSON)]? { if case let .object(o) = self { o } else { nil } }
    public var doubleValue: Double? { if case let .number(n) = self { Double(n) } else { nil } }
    /// The value as an exact integer (a number without fraction or exponent, or one whose value is
    /// integral, within Int's range).
    public var intValue: Int? {
        guard case let .number(n) = self else { return nil }
        if let i = Int(n) { return i }
        guard let d = Double(n), d.rounded() == d, abs(d) < 9e15 else { return nil }
        return Int(d)
    }

    /// Compact JSON text (no whitespace; strings escaped as JSON requires, non-ASCII kept as UTF-8).
    public var compact: String {
        var out = ""
        write(&out)
        return out
    }

    func write(_ out: inout String) {
        switch self {
        case .null: out += "null"
        case let .bool(b): out += b ? "true" : "false"
        case let .number(n): out += n
        case let .string(s): JSON.quote(s, into: &out)
        case let .array(xs):
            out += "["
            for (i, x) in xs.enumerated() { if i > 0 { out += "," }; x.write(&out) }
            out += "]"
        case let .object(ms):
            out += "{"
            for (i, (k, v)) in ms.enumerated() { if i > 0 { out += "," }; JSON.quote(k, into: &out); out += ":"; v.write(&out) }
            out += "}"
        }
    }

    /// `s` as a JSON string literal: `"` and `\` escaped, control characters as \n \r \t \b \f or \u00XX.
    public static func quote(_ s: String, into out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case "\u{08}": out += "\\b"
            case "\u{0C}": out += "\\f"
            default:
                if u.value < 0x20 {
                    let h = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - h.count) + h
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }

    public static func quote(_ s: String) -> String { var o = ""; quote(s, into: &o); return o }

    /// Parses JSON text (RFC 8259; whitespace around values allowed). Nesting is limited to `maxDepth`.
    public static func parse(_ bytes: some Collection<UInt8>, maxDepth: Int = 128) throws(JSONParseError) -> JSON {
        var p = Reader(b: Array(bytes), maxDepth: maxDepth)
        p.skip()
        let v = try p.value(depth: 0)
        p.skip()
        guard p.i == p.b.count else { throw p.fail("trailing characters") }
        return v
    }

    /// The text of a JSON string cut short: `body` is what follows the opening quote, up to the closing
    /// quote or its end. The longest prefix that closes into a valid string is decoded by the parser:
    /// an escape (at most 12 bytes, a surrogate pair) or a UTF-8 sequence cut off at the end is left out.
    public static func stringPrefix(_ body: some Collection<UInt8>) -> String {
        let b = Array(body)
        var end = b.count, i = 0
        while i < b.count {
            if b[i] == UInt8(ascii: "\\") { i += 2; continue }
            if b[i] == UInt8(ascii: "\"") { end = i; break }
            i += 1
        }
        let quote = [UInt8(ascii: "\"")]
        for cut in 0...Swift.min(12, end) {
            if case let .string(s)? = try? parse(quote + b[..<(end - cut)] + quote) { return s }
        }
        return ""
    }

    public static func parse(_ text: String, maxDepth: Int = 128) throws(JSONParseError) -> JSON {
        try parse(Array(text.utf8), maxDepth: maxDepth)
    }
}

public struct JSONParseError: Error, Equatable, CustomStringConvertible {
    public let message: String
    public let offset: Int
    public var description: String { "\(message) at byte \(offset)" }
}

private struct Reader {
    let b: [UInt8]
    let maxDepth: Int
    var i = 0

    init(b: [UInt8], maxDepth: Int) { self.b = b; self.maxDepth = maxDepth }

    func fail(_ m: String) -> JSONParseError { JSONParseError(message: m, offset: i) }

    mutating func skip() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }

    mutating func literal(_ word: String, _ v: JSON) throws(JSONParseError) -> JSON {
        let w = Array(word.utf8)
        guard i + w.count <= b.count, Array(b[i..<(i + w.count)]) == w else { throw fail("invalid literal") }
        i += w.count
        return v
    }

    mutating func value(depth: Int) throws(JSONParseError) -> JSON {
        guard depth < maxDepth else { throw fail("nested more than \(maxDepth) levels") }
        guard i < b.count else { throw fail("unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            var ms: [(String, JSON)] = []
            var index: [String: Int] = [:]
            skip()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .object(ms) }
            while true {
                skip()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let k = try string()
                skip()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skip()
                let v = try value(depth: depth + 1)
                if let j = index[k] { ms[j].1 = v } else { index[k] = ms.count; ms.append((k, v)) }
                skip()
                guard i < b.count else { throw fail("unexpected end") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .object(ms) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var xs: [JSON] = []
            skip()
            if i < b.count, b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
            while true {
                skip()
                xs.append(try value(depth: depth + 1))
                skip()
                guard i < b.count else { throw fail("unexpected end") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "]") { i += 1; return .array(xs) }
                throw fail("expected ',' or ']'")
            }
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        default: return .number(try number())
        }
    }

    mutating func digits() -> Int {
        let s = i
        while i < b.count, b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
        return i - s
    }

    mutating func number() throws(JSONParseError) -> String {
        let s = i
        if i < b.count, b[i] == UInt8(ascii: "-") { i += 1 }
        guard i < b.count, b[i] >= 0x30 && b[i] <= 0x39 else { throw fail("invalid value") }
        if b[i] == 0x30 { i += 1 } else { _ = digits() }
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            guard digits() > 0 else { throw fail("invalid number") }
        }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") { i += 1 }
            guard digits() > 0 else { throw fail("invalid number") }
        }
        return String(decoding: b[s..<i], as: UTF8.self)
    }

    mutating func hex4() throws(JSONParseError) -> UInt32 {
        guard i + 4 <= b.count else { throw fail("bad \\u escape") }
        var v: UInt32 = 0
        for _ in 0..<4 {
            let c = b[i]
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: throw fail("bad \\u escape")
            }
            v = v << 4 | UInt32(d)
            i += 1
        }
        return v
    }

    mutating func string() throws(JSONParseError) -> String {
        i += 1
        var out: [UInt8] = []
        while true {
            guard i < b.count else { throw fail("unterminated string") }
            let c = b[i]
            if c == UInt8(ascii: "\"") { i += 1; break }
            guard c >= 0x20 else { throw fail("control character in string") }
            if c != UInt8(ascii: "\\") { out.append(c); i += 1; continue }
            i += 1
            guard i < b.count else { throw fail("unterminated string") }
            let e = b[i]
            i += 1
            switch e {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
            case UInt8(ascii: "b"): out.append(0x08)
            case UInt8(ascii: "f"): out.append(0x0C)
            case UInt8(ascii: "n"): out.append(0x0A)
            case UInt8(ascii: "r"): out.append(0x0D)
            case UInt8(ascii: "t"): out.append(0x09)
            case UInt8(ascii: "u"):
                var u = try hex4()
                if u >= 0xD800 && u < 0xDC00, i + 6 <= b.count, b[i] == UInt8(ascii: "\\"), b[i + 1] == UInt8(ascii: "u") {
                    i += 2
                    let lo = try hex4()
                    guard lo >= 0xDC00 && lo < 0xE000 else { throw fail("unpaired surrogate") }
                    u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00)
                }
                guard let s = Unicode.Scalar(u) else { throw fail("unpaired surrogate") }
                out += Array(String(Character(s)).utf8)
            default: throw fail("bad escape")
            }
        }
        guard let s = String(validating: out, as: UTF8.self) else { throw fail("invalid UTF-8 in string") }
        return s
    }
}
