// JSON text -> Value keeping object key order (Python's json.loads gives insertion-ordered dicts, and a
// template's `tojson` or `items()` shows that order; Foundation's parser does not keep it).
extension Value {
    public static func parseJSON(_ text: String) throws(JinjaError) -> Value {
        var p = JSONReader(b: Array(text.utf8))
        p.skip()
        let v = try p.value(depth: 0)
        p.skip()
        guard p.i == p.b.count else { throw JinjaError(.runtime, "JSON: trailing characters at \(p.i)") }
        return v
    }
}

private struct JSONReader {
    let b: [UInt8]
    var i = 0

    mutating func skip() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }

    func fail(_ m: String) -> JinjaError { JinjaError(.runtime, "JSON: \(m) at \(i)") }

    mutating func value(depth: Int) throws(JinjaError) -> Value {
        guard depth < 256 else { throw fail("nested too deeply") }
        guard i < b.count else { throw fail("unexpected end") }
        switch b[i] {
        case UInt8(ascii: "{"):
            i += 1
            let d = JinjaDict()
            skip()
            if i < b.count, b[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
            while true {
                skip()
                guard i < b.count, b[i] == UInt8(ascii: "\"") else { throw fail("expected a key") }
                let k = try string()
                skip()
                guard i < b.count, b[i] == UInt8(ascii: ":") else { throw fail("expected ':'") }
                i += 1
                skip()
                d[k] = try value(depth: depth + 1)
                skip()
                guard i < b.count else { throw fail("unexpected end") }
                if b[i] == UInt8(ascii: ",") { i += 1; continue }
                if b[i] == UInt8(ascii: "}") { i += 1; return .dict(d) }
                throw fail("expected ',' or '}'")
            }
        case UInt8(ascii: "["):
            i += 1
            var xs: [Value] = []
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
        case UInt8(ascii: "t"): try word("true"); return .bool(true)
        case UInt8(ascii: "f"): try word("false"); return .bool(false)
        case UInt8(ascii: "n"): try word("null"); return .none
        default:
            let s = i
            if b[i] == UInt8(ascii: "-") { i += 1 }
            var isFloat = false
            while i < b.count, (b[i] >= 0x30 && b[i] <= 0x39) || b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e")
                    || b[i] == UInt8(ascii: "E") || ((b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) && i > s) {
                if b[i] == UInt8(ascii: ".") || b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") { isFloat = true }
                i += 1
            }
            let text = String(decoding: b[s..<i], as: UTF8.self)
            if !isFloat, let v = Int(text) { return .int(v) }
            guard let d = Double(text), !text.isEmpty else { throw fail("bad value") }
            return .double(d)
        }
    }

    mutating func word(_ w: String) throws(JinjaError) {
        let u = Array(w.utf8)
        guard i + u.count <= b.count, Array(b[i..<i + u.count]) == u else { throw fail("bad literal") }
        i += u.count
    }

    mutating func string() throws(JinjaError) -> String {
        i += 1
        var out: [UInt8] = []
        while i < b.count, b[i] != UInt8(ascii: "\"") {
            if b[i] == UInt8(ascii: "\\") {
                i += 1
                guard i < b.count else { break }
                switch b[i] {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "u"):
                    guard i + 4 < b.count, var c = UInt32(String(decoding: b[i + 1...i + 4], as: UTF8.self), radix: 16) else { throw fail("bad \\u escape") }
                    i += 4
                    if c >= 0xD800 && c < 0xDC00, i + 6 < b.count, b[i + 1] == UInt8(ascii: "\\"), b[i + 2] == UInt8(ascii: "u"),
                       let lo = UInt32(String(decoding: b[i + 3...i + 6], as: UTF8.self), radix: 16), lo >= 0xDC00 && lo < 0xE000 {
                        c = 0x10000 + ((c - 0xD800) << 10) + (lo - 0xDC00)
                        i += 6
                    }
                    out += Array(String(UnicodeScalar(c).map(Character.init) ?? "\u{FFFD}").utf8)
                default: out.append(b[i])
                }
                i += 1
            } else {
                out.append(b[i])
                i += 1
            }
        }
        guard i < b.count else { throw fail("unterminated string") }
        i += 1
        return String(decoding: out, as: UTF8.self)
    }
}
