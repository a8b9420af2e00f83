// JSON text -> Value keeping object key order (Python's json.loads gives insertion-ordered dicts, and a
// template's `tojson` or `items()` shows that order; Foundation's parser does not keep it). The parsing
// is the Grammar module's strict, order-keeping parser; numbers without a fraction or exponent that fit
// an Int are ints, the others doubles, as Python's json makes them.
import Grammar

extension Value {
    public static func parseJSON(_ text: String) throws(JinjaError) -> Value {
        do throws(JSONParseError) {
            return from(try JSON.parse(text, maxDepth: 256))
        } catch {
            throw JinjaError(.runtime, "JSON: \(error)")
        }
    }

    /// The Value of a parsed JSON value.
    public static func from(_ v: JSON) -> Value {
        switch v {
        case .null: return .none
        case let .bool(b): return .bool(b)
        case let .number(t):
            if !t.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }), let i = Int(t) { return .int(i) }
            return .double(Double(t) ?? .nan)
        case let .string(s): return .string(s)
        case let .array(xs): return .array(xs.map(from))
        case let .object(ms): return .dict(JinjaDict(ms.map { ($0.0, from($0.1)) }))
        }
    }
}
