// Filters and tests: the ones the chat templates in llama.cpp's corpus use, with Jinja2's semantics;
// `tojson` is transformers' (json.dumps with ensure_ascii=False, Python's default separators).
import Foundation
import Grammar

extension Renderer {
    mutating func applyFilter(_ name: String, _ v: Value, _ args: [Value], _ kw: [String: Value]) throws -> Value {
        func arg(_ i: Int, _ k: String) -> Value? { args.count > i ? args[i] : kw[k] }
        switch name {
        case "safe": return v
        case "string": return .string(PyText.str(v))
        case "trim":
            let s = PyText.str(v)
            if case let .string(chars)? = arg(0, "chars") { return .string(String(s.drop(while: { chars.contains($0) }).reversed().drop(while: { chars.contains($0) }).reversed())) }
            return .string(s.trimmingCharacters(in: .whitespacesAndNewlines))
        case "upper": return .string(PyText.str(v).uppercased())
        case "lower": return .string(PyText.str(v).lowercased())
        case "title": return .string(title(PyText.str(v)))
        case "capitalize": let s = PyText.str(v); return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
        case "length", "count":
            switch v {
            case let .string(s): return .int(s.count)
            case let .list(l):
                if l.isGenerator { throw rt("object of type 'generator' has no len()") }
                return .int(l.items.count)
            case let .dict(d), let .namespace(d): return .int(d.count)
            case .undefined: return .int(0)
            default: throw rt("object of type '\(v.typeName)' has no len()")
            }
        case "default", "d":
            let boolean = arg(1, "boolean")?.truthy ?? false
            if v.isUndefined || (boolean && !v.truthy) { return arg(0, "default_value") ?? .string("") }
            return v
        case "first": return try iterate(v).first ?? .undefined("first of an empty sequence")
        case "last":
            if case let .list(l) = v, l.isGenerator { throw rt("'generator' object is not reversible") }
            return try iterate(v).last ?? .undefined("last of an empty sequence")
        case "list": return .array(try iterate(v))
        case "reverse":
            if case let .string(s) = v { return .string(String(s.reversed())) }
            return .array(try iterate(v).reversed())
        case "join":
            var xs = try iterate(v)
            if case let .string(a)? = kw["attribute"] { xs = try xs.map { try getAttr($0, a) } }
            let sep = arg(0, "d").map(PyText.str) ?? ""
            return .string(xs.map(PyText.str).joined(separator: sep))
        case "replace":
            guard let a = arg(0, "old").map(PyText.str), let b = arg(1, "new").map(PyText.str) else { throw rt("replace needs two arguments") }
            let s = PyText.str(v)
            return .string(a.isEmpty ? s : s.replacingOccurrences(of: a, with: b))
        case "items":
            switch v {
            case let .dict(d): return .array(d.items.map { .array([$0.0, $0.1]) })
            case .undefined: return .array([])
            default: throw rt("items() of '\(v.typeName)'")
            }
        case "dictsort":
            guard case let .dict(d) = v else { throw rt("dictsort needs a dict") }
            let byValue = (kw["by"].map(PyText.str) ?? "key") == "value"
            let rev = arg(2, "reverse")?.truthy ?? false
            var pairs = d.items
            func fold(_ v: Value) -> Value { if case let .string(s) = v { return .string(s.lowercased()) }; return v }
            pairs.sort { a, b in
                let c = (try? compare(fold(byValue ? a.1 : a.0), fold(byValue ? b.1 : b.0))) ?? 0
                return rev ? c > 0 : c < 0
            }
            return .array(pairs.map { .array([$0.0, $0.1]) })
        case "tojson":
            var indent: Int?
            if let i = arg(0, "indent") { if case .none = i {} else { indent = try int(i) } }
            var s = ""
            try json(v, indent: indent, level: 0, sortKeys: kw["sort_keys"]?.truthy ?? false, into: &s)
            return .string(s)
        case "int":
            if case let .string(s) = v, let d = Double(s.trimmingCharacters(in: .whitespaces)) { return .int(Int(d)) }
            return .int((try? int(v)) ?? (arg(0, "default").map { (try? int($0)) ?? 0 } ?? 0))
        case "float":
            switch v {
            case let .int(i): return .double(Double(i))
            case let .double(d): return .double(d)
            case let .string(s): return .double(Double(s.trimmingCharacters(in: .whitespaces)) ?? 0)
            default: return .double(0)
            }
        case "abs":
            switch v { case let .int(i): return i == .min ? .double(-Double(i)) : .int(abs(i)); case let .double(d): return .double(abs(d)); default: throw rt("bad operand for abs") }
        case "round":
            let p = try arg(0, "precision").map { try int($0) } ?? 0
            let m = pow(10.0, Double(p))
            let d: Double = { if case let .int(i) = v { Double(i) } else if case let .double(x) = v { x } else { 0 } }()
            return .double((d * m).rounded(.toNearestOrEven) / m)
        case "indent":
            let width: String = {
                if case let .string(s)? = arg(0, "width") { return s }
                return String(repeating: " ", count: (try? int(arg(0, "width") ?? .int(4))) ?? 4)
            }()
            let first = arg(1, "first")?.truthy ?? false, blank = arg(2, "blank")?.truthy ?? false
            let lines = PyText.str(v).components(separatedBy: "\n")
            var out: [String] = []
            for (i, l) in lines.enumerated() {
                if i == 0 && !first { out.append(l); continue }
                out.append(l.isEmpty && !blank ? l : width + l)
            }
            return .string(out.joined(separator: "\n"))
        case "unique":
            var out: [Value] = []
            for x in try iterate(v) where !out.contains(where: { equal($0, x) }) { out.append(x) }
            return .array(out)
        case "sort":
            var xs = try iterate(v)
            let attr = kw["attribute"].map(PyText.str), rev = arg(0, "reverse")?.truthy ?? false
            var failed: Flow?
            xs.sort { a, b in
                do {
                    let c = try compare(attr.map { (try? getAttr(a, $0)) ?? .none } ?? a, attr.map { (try? getAttr(b, $0)) ?? .none } ?? b)
                    return rev ? c > 0 : c < 0
                } catch { failed = error as? Flow; return false }
            }
            if let failed { throw failed }
            return .array(xs)
        case "min", "max":
            let xs = try iterate(v)
            guard var best = xs.first else { return .undefined("\(name) of an empty sequence") }
            for x in xs.dropFirst() { let c = try compare(x, best); if (name == "min" && c < 0) || (name == "max" && c > 0) { best = x } }
            return best
        case "sum":
            var acc: Value = .int(0)
            for x in try iterate(v) { acc = try binary("+", acc, x) }
            return acc
        case "map":
            let xs = v.truthy ? try iterate(v) : []   // jinja2: `if value: for item in value`
            if case let .string(a)? = kw["attribute"] {
                return .list(JinjaList(try xs.map { x in
                    let r = try getAttr(x, a)
                    if r.isUndefined, let d = kw["default"] { return d }
                    return r
                }, generator: true))
            }
            guard case let .string(f)? = args.first else { throw rt("map needs a filter name or attribute=") }
            return .list(JinjaList(try xs.map { try applyFilter(f, $0, Array(args.dropFirst()), [:]) }, generator: true))
        case "select", "reject":
            let xs = v.truthy ? try iterate(v) : []
            guard case let .string(t)? = args.first else { return .list(JinjaList(xs.filter { $0.truthy == (name == "select") }, generator: true)) }
            return .list(JinjaList(try xs.filter { try applyTest(t, $0, Array(args.dropFirst())) == (name == "select") }, generator: true))
        case "selectattr", "rejectattr":
            let xs = v.truthy ? try iterate(v) : []
            guard case let .string(a)? = args.first else { throw rt("\(name) needs an attribute name") }
            return .list(JinjaList(try xs.filter { x in
                let attr = try getAttr(x, a)
                let ok = args.count > 1 ? try applyTest(PyText.str(args[1]), attr, Array(args.dropFirst(2))) : attr.truthy
                return ok == (name == "selectattr")
            }, generator: true))
        case "attr": return try getAttr(v, args.first.map(PyText.str) ?? "")
        case "wordcount": return .int(PyText.str(v).split(whereSeparator: { $0.isWhitespace }).count)
        case "format":
            var out = "", i = 0
            let f = Array(PyText.str(v))
            var k = 0
            while k < f.count {
                if f[k] == "%", k + 1 < f.count {
                    if f[k + 1] == "%" { out.append("%"); k += 2; continue }
                    if "sdr".contains(f[k + 1]) { out += i < args.count ? PyText.str(args[i]) : ""; i += 1; k += 2; continue }
                }
                out.append(f[k]); k += 1
            }
            return .string(out)
        case "e", "escape":
            var s = ""
            for c in PyText.str(v) {
                switch c { case "&": s += "&amp;"; case "<": s += "&lt;"; case ">": s += "&gt;"; case "\"": s += "&#34;"; case "'": s += "&#39;"; default: s.append(c) }
            }
            return .string(s)
        default: throw rt("unknown filter '\(name)'")
        }
    }

    func getAttr(_ v: Value, _ path: String) throws -> Value {
        var cur = v
        for part in path.split(separator: ".") {
            switch cur {
            case let .dict(d), let .namespace(d): cur = d[String(part)] ?? .undefined(String(part))
            case let .list(l): if let i = Int(part), i < l.items.count { cur = l.items[i] } else { cur = .undefined(String(part)) }
            default: cur = .undefined(String(part))
            }
        }
        return cur
    }

    func applyTest(_ name: String, _ v: Value, _ args: [Value]) throws -> Bool {
        switch name {
        case "defined": return !v.isUndefined
        case "undefined": return v.isUndefined
        case "none": if case .none = v { return true }; return false
        case "boolean": if case .bool = v { return true }; return false
        case "true": if case .bool(true) = v { return true }; return false
        case "false": if case .bool(false) = v { return true }; return false
        case "integer": if case .int = v { return true }; return false
        case "float": if case .double = v { return true }; return false
        case "number": switch v { case .int, .double: return true; default: return false }
        case "string": switch v { case .string, .markup: return true; default: return false }
        case "mapping": switch v { case .dict: return true; default: return false }
        case "iterable": switch v { case .list, .dict, .string: return true; default: return false }
        case "sequence": switch v { case .list, .string, .dict: return true; default: return false }
        case "callable": switch v { case .macro, .builtin: return true; default: return false }
        case "odd": return try int(v) % 2 != 0
        case "even": return try int(v) % 2 == 0
        case "divisibleby":
            let d = try int(args.first ?? .int(1)), x = try int(v)
            return d != 0 && x % d == 0
        case "eq", "equalto", "==": return equal(v, args.first ?? .none)
        case "ne", "!=": return !equal(v, args.first ?? .none)
        case "lt", "lessthan", "<": return try compare(v, args.first ?? .none) < 0
        case "le", "<=": return try compare(v, args.first ?? .none) <= 0
        case "gt", "greaterthan", ">": return try compare(v, args.first ?? .none) > 0
        case "ge", ">=": return try compare(v, args.first ?? .none) >= 0
        case "in":
            guard let c = args.first else { return false }
            switch c {
            case let .list(l): return l.items.contains { equal($0, v) }
            case let .string(s): if case let .string(x) = v { return s.contains(x) }; return false
            case let .dict(d): return d[value: v] != nil
            default: return false
            }
        case "sameas":
            switch (v, args.first ?? .none) {
            case (.none, .none): return true
            case let (.bool(a), .bool(b)): return a == b
            case let (.list(a), .list(b)): return a === b
            case let (.dict(a), .dict(b)): return a === b
            default: return false
            }
        case "lower": let s = PyText.str(v); return s == s.lowercased()
        case "upper": let s = PyText.str(v); return s == s.uppercased()
        default: throw rt("unknown test '\(name)'")
        }
    }

    /// Python's json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sortKeys).
    func json(_ v: Value, indent: Int?, level: Int, sortKeys: Bool, into s: inout String) throws {
        let (open, sep, kvSep): (String, String, String) = indent.map { n in
            ("\n" + String(repeating: " ", count: n * (level + 1)), ",\n" + String(repeating: " ", count: n * (level + 1)), ": ")
        } ?? ("", ", ", ": ")
        let close = indent.map { "\n" + String(repeating: " ", count: $0 * level) } ?? ""
        switch v {
        case .none, .undefined: s += "null"
        case let .bool(b): s += b ? "true" : "false"
        case let .int(i): s += String(i)
        case let .double(d):
            if d.isNaN { s += "NaN" } else if d.isInfinite { s += d > 0 ? "Infinity" : "-Infinity" } else { s += PyText.float(d) }
        case let .string(str): JSON.quote(str, into: &s)
        case let .list(l):
            if l.isGenerator { throw rt("Object of type generator is not JSON serializable") }
            if l.items.isEmpty { s += "[]"; return }
            s += "[" + open
            for (i, x) in l.items.enumerated() {
                if i > 0 { s += sep }
                try json(x, indent: indent, level: level + 1, sortKeys: sortKeys, into: &s)
            }
            s += close + "]"
        case let .dict(d), let .namespace(d):
            // json.dumps turns keys into strings: ints as digits, True/False/None as true/false/null.
            var pairs = d.items.map { (k, x) -> (String, Value) in
                switch k {
                case let .bool(b): return (b ? "true" : "false", x)
                case .none: return ("null", x)
                default: return (PyText.str(k), x)
                }
            }
            if pairs.isEmpty { s += "{}"; return }
            if sortKeys { pairs.sort { $0.0 < $1.0 } }
            s += "{" + open
            for (i, (k, x)) in pairs.enumerated() {
                if i > 0 { s += sep }
                JSON.quote(k, into: &s)
                s += kvSep
                try json(x, indent: indent, level: level + 1, sortKeys: sortKeys, into: &s)
            }
            s += close + "}"
        case let .markup(str): JSON.quote(str, into: &s)
        case .macro, .builtin: throw rt("Object of type \(v.typeName) is not JSON serializable")
        }
    }
}
