// The values a chat template computes with: Python's, as Jinja2 sees them. Lists and dicts are
// references (a template's `.append()` and `namespace` assignments mutate them in place); dicts keep
// insertion order (what `tojson` and `items()` show).
import Foundation

public final class JinjaList: @unchecked Sendable {
    public var items: [Value]
    /// A lazy result of map/select/reject (a Python generator): iterable, but no len(), no index, not
    /// JSON; `|list` makes it a list. Templates that forget `|list` fail in jinja2, and so here.
    public let isGenerator: Bool
    public init(_ items: [Value], generator: Bool = false) { self.items = items; isGenerator = generator }
}

public final class JinjaDict: @unchecked Sendable {
    /// Keys in insertion order, as the values they are (strings, or Python's ints, bools, None).
    public private(set) var keyValues: [Value] = []
    private var storage: [String: Value] = [:]
    public init() {}
    public init(_ pairs: [(String, Value)]) { for (k, v) in pairs { self[k] = v } }

    /// Python's dict key identity: 1 == 1.0 == True.
    static func encode(_ k: Value) -> String? {
        switch k {
        case let .string(s): return "s" + s
        case let .int(i): return "n\(i)"
        case let .bool(b): return b ? "n1" : "n0"
        case let .double(d): return d == d.rounded() && abs(d) < 1e18 ? "n\(Int(d))" : "d\(d)"
        case .none: return "none"
        default: return nil
        }
    }

    public subscript(key: String) -> Value? {
        get { storage["s" + key] }
        set { self[value: .string(key)] = newValue }
    }

    public subscript(value key: Value) -> Value? {
        get { Self.encode(key).flatMap { storage[$0] } }
        set {
            guard let e = Self.encode(key) else { return }
            if let v = newValue {
                if storage.updateValue(v, forKey: e) == nil { keyValues.append(key) }
            } else if storage.removeValue(forKey: e) != nil {
                keyValues.removeAll { Self.encode($0) == e }
            }
        }
    }

    public var count: Int { keyValues.count }
    /// (key, value) in insertion order.
    public var items: [(Value, Value)] { keyValues.map { ($0, storage[Self.encode($0)!]!) } }
    /// String keys only (attribute access and JSON built by the server).
    public var keys: [String] { keyValues.compactMap { if case let .string(s) = $0 { s } else { nil } } }
    public var pairs: [(String, Value)] { items.map { (PyText.str($0.0), $0.1) } }
}

/// A macro defined by the template: its parameters (with defaults) and body.
public final class Macro: @unchecked Sendable {
    let name: String
    let params: [(String, Expr?)]
    let body: [Node]
    init(name: String, params: [(String, Expr?)], body: [Node]) { self.name = name; self.params = params; self.body = body }
}

public enum Value: @unchecked Sendable {
    case undefined(String)   // the name that was not found (for the error when it is used)
    case none
    case bool(Bool)
    case int(Int)
    case double(Double)
    case string(String)
    case list(JinjaList)
    case dict(JinjaDict)
    case namespace(JinjaDict)
    case macro(Macro)
    case builtin(String)
    /// jinja2's Markup (from `|safe`): a string, except that `+` with a plain string HTML-escapes the
    /// plain one (transformers renders with autoescape off, but Markup keeps its semantics).
    case markup(String)

    public static func array(_ a: [Value]) -> Value { .list(JinjaList(a)) }
    public static func object(_ pairs: [(String, Value)]) -> Value { .dict(JinjaDict(pairs)) }

    /// A value from JSON-like Foundation objects (JSONSerialization's output).
    public init(json: Any?) {
        switch json {
        case nil, is NSNull: self = .none
        case let s as String: self = .string(s)
        case let n as NSNumber:
            let t = String(cString: n.objCType)
            if t == "c" { self = .bool(n.boolValue) }
            else if t == "d" || t == "f" { self = .double(n.doubleValue) }
            else { self = .int(n.intValue) }
        case let b as Bool: self = .bool(b)
        case let i as Int: self = .int(i)
        case let d as Double: self = .double(d)
        case let a as [Any]: self = .array(a.map { Value(json: $0) })
        case let d as [String: Any]:
            // JSONSerialization does not keep key order; sorted keys keep renders deterministic.
            self = .object(d.keys.sorted().map { ($0, Value(json: d[$0])) })
        default: self = .string("\(json!)")
        }
    }

    var isUndefined: Bool { if case .undefined = self { true } else { false } }

    /// What Python's str() gives (a template printing the value).
    public var text: String { PyText.str(self) }

    /// Markup as the plain string it is, for every operation but `+`.
    var unmarked: Value { if case let .markup(s) = self { .string(s) } else { self } }

    /// Python truthiness.
    var truthy: Bool {
        switch self {
        case .undefined, .none: false
        case let .bool(b): b
        case let .int(i): i != 0
        case let .double(d): d != 0
        case let .string(s), let .markup(s): !s.isEmpty
        case let .list(l): l.isGenerator || !l.items.isEmpty
        case let .dict(d): d.count > 0
        case .namespace, .macro, .builtin: true
        }
    }

    var typeName: String {
        switch self {
        case .undefined: "undefined"
        case .none: "NoneType"
        case .bool: "bool"
        case .int: "int"
        case .double: "float"
        case .string: "str"
        case .markup: "Markup"
        case let .list(l): l.isGenerator ? "generator" : "list"
        case .dict: "dict"
        case .namespace: "Namespace"
        case .macro: "Macro"
        case .builtin: "builtin_function_or_method"
        }
    }
}

/// Python's str() and repr() of a value, as a template prints it.
enum PyText {
    static func str(_ v: Value) -> String {
        switch v {
        case .undefined: return ""
        case let .string(s), let .markup(s): return s
        default: return repr(v)
        }
    }

    static func repr(_ v: Value) -> String {
        switch v {
        case .undefined: return ""
        case .none: return "None"
        case let .bool(b): return b ? "True" : "False"
        case let .int(i): return String(i)
        case let .double(d): return float(d)
        case let .string(s): return quote(s)
        case let .markup(s): return "Markup(" + quote(s) + ")"
        case let .list(l): return l.isGenerator ? "<generator object>" : "[" + l.items.map(repr).joined(separator: ", ") + "]"
        case let .dict(d): return "{" + d.items.map { repr($0.0) + ": " + repr($0.1) }.joined(separator: ", ") + "}"
        case let .namespace(d): return "<Namespace " + d.pairs.map { "\($0.0)=" + repr($0.1) }.joined(separator: ", ") + ">"
        case let .macro(m): return "<Macro '\(m.name)'>"
        case let .builtin(n): return "<built-in function \(n)>"
        }
    }

    /// Python's float repr: shortest round-trip digits, ".0" for integral values, exponent past 1e16.
    static func float(_ d: Double) -> String {
        if d.isNaN { return "nan" }
        if d.isInfinite { return d > 0 ? "inf" : "-inf" }
        if d == d.rounded(), abs(d) < 1e16 { return String(format: "%.1f", d) }
        var s = "\(d)"   // Swift's description is the shortest round-trip form
        if let e = s.firstIndex(of: "e") {
            let mant = s[..<e], exp = Int(s[s.index(after: e)...])!
            s = String(mant) + "e" + (exp < 0 ? "-" : "+") + (abs(exp) < 10 ? "0" : "") + String(abs(exp))
        }
        return s
    }

    static func quote(_ s: String) -> String {
        let q: Character = s.contains("'") && !s.contains("\"") ? "\"" : "'"
        var out = String(q)
        for c in s.unicodeScalars {
            switch c {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if Character(c) == q { out += "\\" + String(q) }
                else if c.value < 0x20 || c.value == 0x7f { out += String(format: "\\x%02x", c.value) }
                else { out.unicodeScalars.append(c) }
            }
        }
        return out + String(q)
    }
}
