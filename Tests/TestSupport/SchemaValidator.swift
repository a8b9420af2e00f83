// A plain JSON Schema validator for the subset structured outputs support, written from the
// specification and independent of the grammar compiler: the tests check generated outputs with it.
import Foundation
import Grammar

public enum SchemaValidator {
    /// The first violation of `schema` by `v`, or nil when valid. `root` resolves `$ref`s.
    public static func violation(_ v: JSON, _ schema: JSON, root: JSON? = nil, at path: String = "$") -> String? {
        let root = root ?? schema
        if case let .bool(b) = schema { return b ? nil : "\(path): false schema" }
        if let r = schema["$ref"]?.stringValue {
            var target = root
            if r != "#" { for part in r.dropFirst(2).split(separator: "/") { guard let t = target[String(part)] else { return "\(path): bad $ref" }; target = t } }
            return violation(v, target, root: root, at: path)
        }
        if let all = schema["allOf"]?.arrayValue { for s in all { if let e = violation(v, s, root: root, at: path) { return e } } }
        if let any = schema["anyOf"]?.arrayValue, !any.contains(where: { violation(v, $0, root: root, at: path) == nil }) { return "\(path): no anyOf matches" }
        if let one = schema["oneOf"]?.arrayValue, one.filter({ violation(v, $0, root: root, at: path) == nil }).count != 1 { return "\(path): not exactly one oneOf" }
        if let e = schema["enum"]?.arrayValue, !e.contains(where: { same($0, v) }) { return "\(path): not in enum" }
        if let c = schema["const"], !same(c, v) { return "\(path): not const" }
        if let t = schema["type"] {
            let types = t.stringValue.map { [$0] } ?? (t.arrayValue ?? []).compactMap(\.stringValue)
            if !types.contains(where: { hasType(v, $0) }) { return "\(path): not of type \(types)" }
        }
        switch v {
        case let .string(s):
            let n = s.unicodeScalars.count
            if let m = schema["minLength"]?.intValue, n < m { return "\(path): shorter than \(m)" }
            if let m = schema["maxLength"]?.intValue, n > m { return "\(path): longer than \(m)" }
            if let p = schema["pattern"]?.stringValue, !matches(p, s) { return "\(path): does not match \(p)" }
            if let f = schema["format"]?.stringValue, let p = formats[f], !matches("^(?:" + p + ")$", s) { return "\(path): not a \(f)" }
        case let .number(text):
            let d = Double(text)!
            if let m = schema["minimum"]?.doubleValue, d < m { return "\(path): below minimum" }
            if let m = schema["maximum"]?.doubleValue, d > m { return "\(path): above maximum" }
            if let m = schema["exclusiveMinimum"]?.doubleValue, d <= m { return "\(path): not above exclusiveMinimum" }
            if let m = schema["exclusiveMaximum"]?.doubleValue, d >= m { return "\(path): not below exclusiveMaximum" }
        case let .array(items):
            if let m = schema["minItems"]?.intValue, items.count < m { return "\(path): fewer than \(m) items" }
            if let m = schema["maxItems"]?.intValue, items.count > m { return "\(path): more than \(m) items" }
            let prefix = schema["prefixItems"]?.arrayValue ?? []
            for (i, x) in items.enumerated() {
                let s = i < prefix.count ? prefix[i] : (schema["items"] ?? .bool(true))
                if let e = violation(x, s, root: root, at: "\(path)[\(i)]") { return e }
            }
        case let .object(members):
            let props = schema["properties"]?.objectValue ?? []
            for r in schema["required"]?.arrayValue ?? [] where !members.contains(where: { $0.0 == r.stringValue }) { return "\(path): missing \(r.compact)" }
            for (k, x) in members {
                if let s = props.first(where: { $0.0 == k })?.1 {
                    if let e = violation(x, s, root: root, at: "\(path).\(k)") { return e }
                } else if let a = schema["additionalProperties"], let e = violation(x, a, root: root, at: "\(path).\(k)") { return e }
            }
        default: break
        }
        return nil
    }

    static let formats = [
        "date": #"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])"#,
        "time": #"([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"#,
        "date-time": #"\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d+)?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)"#,
        "uuid": #"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"#,
        "email": #"[^@\s]+@[^@\s]+\.[^@\s]+"#,
    ]

    static func matches(_ pattern: String, _ s: String) -> Bool {
        guard let re = try? NSRegularExpression(pattern: pattern) else { return false }
        return re.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    static func hasType(_ v: JSON, _ t: String) -> Bool {
        switch (v, t) {
        case (.null, "null"), (.bool, "boolean"), (.string, "string"), (.array, "array"), (.object, "object"), (.number, "number"): true
        case let (.number(n), "integer"): Double(n).map { $0.rounded() == $0 } ?? false
        default: false
        }
    }

    /// JSON equality with numbers compared by value.
    static func same(_ a: JSON, _ b: JSON) -> Bool {
        switch (a, b) {
        case let (.number(x), .number(y)): Double(x) == Double(y)
        case let (.array(x), .array(y)): x.count == y.count && zip(x, y).allSatisfy { same($0, $1) }
        case let (.object(x), .object(y)):
            x.count == y.count && x.allSatisfy { kv in y.contains { $0.0 == kv.0 && same($0.1, kv.1) } }
        default: a == b
        }
    }
}

/// Random schemas from the supported subset (seeded).
public struct RandomSchema {
    var state: UInt64
    public init(seed: UInt64) { state = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next(_ n: Int) -> Int {
        state ^= state << 13; state ^= state >> 7; state ^= state << 17
        return Int(state % UInt64(n))
    }

    public mutating func schema(depth: Int = 0) -> String {
        let kinds = depth >= 2 ? 7 : 10
        switch next(kinds) {
        case 0: return #"{"type":"boolean"}"#
        case 1:
            let lo = next(200) - 100
            return #"{"type":"integer","minimum":\#(lo),"maximum":\#(lo + next(1000))}"#
        case 2: return #"{"type":"number","minimum":0,"maximum":\#(1 + next(100))}"#
        case 3: return [#"{"type":"string","maxLength":\#(1 + next(20))}"#, #"{"type":"string","format":"date"}"#,
                        #"{"type":"string","pattern":"^[a-z]{2,5}-[0-9]{1,3}$"}"#, #"{"enum":["red","green","blue",null,3]}"#,
                        #"{"type":"string","format":"uuid"}"#, #"{"const":"fixed"}"#][next(6)]
        case 4: return #"{"type":["string","null"],"maxLength":8}"#
        case 5: return #"{"anyOf":[{"type":"integer","minimum":0,"maximum":9},{"type":"string","maxLength":4}]}"#
        case 6: return #"{"type":"string","minLength":2,"maxLength":12}"#
        case 7, 8:
            var props: [String] = [], req: [String] = []
            for i in 0..<(1 + next(4)) {
                let name = ["name", "id", "score", "tags", "when", "ok", "note", "n\(i)"][next(8)] + "\(i)"
                props.append("\"\(name)\":" + schema(depth: depth + 1))
                if next(3) > 0 { req.append("\"\(name)\"") }
            }
            return #"{"type":"object","properties":{\#(props.joined(separator: ","))},"required":[\#(req.joined(separator: ","))],"additionalProperties":false}"#
        default:
            let mn = next(3)
            return #"{"type":"array","items":\#(schema(depth: depth + 1)),"minItems":\#(mn),"maxItems":\#(mn + next(4))}"#
        }
    }
}
