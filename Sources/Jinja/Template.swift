// A Jinja2 template and its interpreter, for chat templates: the statements, expressions, filters,
// tests and Python methods real templates use, rendered as Hugging Face's transformers renders them
// (trim_blocks, lstrip_blocks, loop controls, its `tojson`, `raise_exception` and `strftime_now`).
// A template is code from a model file: the interpreter is a sandbox — no file, network or environment
// access, and limits on output size, loop iterations and call depth, each a clear error.
import Foundation

public struct JinjaLimits: Sendable {
    public var maxOutputBytes = 4 << 20
    public var maxIterations = 1_000_000
    public var maxDepth = 64
    public init() {}
}

public final class Template: @unchecked Sendable {
    let nodes: [Node]
    public let limits: JinjaLimits

    public init(_ source: String, limits: JinjaLimits = JinjaLimits()) throws(JinjaError) {
        nodes = try Parser.parse(source)
        self.limits = limits
    }

    /// Renders with these variables. `now` is what `strftime_now` formats (the current time by default).
    public func render(_ context: [String: Value], now: Date = Date()) throws(JinjaError) -> String {
        var r = Renderer(limits: limits, now: now)
        r.scopes = [context]
        try r.run(nodes)
        return r.out
    }
}

enum Flow: Error { case breakLoop, continueLoop, error(JinjaError) }

struct Renderer {
    let limits: JinjaLimits
    let now: Date
    var out = ""
    var scopes: [[String: Value]] = []
    var iterations = 0
    var depth = 0
    /// Expression evaluation depth (a long `a + a + ...` chain is a deep tree the parser builds by looping).
    var evalDepth = 0

    init(limits: JinjaLimits, now: Date) { self.limits = limits; self.now = now }

    mutating func run(_ nodes: [Node]) throws(JinjaError) {
        do { try exec(nodes) } catch let f as Flow {
            if case let .error(e) = f { throw e }
            throw JinjaError(.syntax, "'break' or 'continue' outside a loop")
        } catch {
            throw JinjaError(.runtime, "\(error)")
        }
    }

    // MARK: statements

    private mutating func exec(_ nodes: [Node]) throws {
        for n in nodes { try exec(n) }
    }

    private mutating func emit(_ s: String) throws {
        out += s
        if out.utf8.count > limits.maxOutputBytes { throw Flow.error(JinjaError(.limit, "template output exceeds \(limits.maxOutputBytes) bytes")) }
    }

    private mutating func exec(_ n: Node) throws {
        switch n {
        case let .text(s): try emit(s)
        case let .output(e): try emit(PyText.str(try eval(e)))
        case let .ifNode(branches, other):
            for (c, body) in branches where try eval(c).truthy { try exec(body); return }
            try exec(other)
        case let .forNode(targets, iterExpr, filter, body, otherwise, _):
            var items = try iterate(try eval(iterExpr))
            if let filter {
                var kept: [Value] = []
                for it in items {
                    scopes.append(bind(targets, it))
                    defer { scopes.removeLast() }
                    if try eval(filter).truthy { kept.append(it) }
                }
                items = kept
            }
            if items.isEmpty { try exec(otherwise); return }
            for (i, it) in items.enumerated() {
                iterations += 1
                if iterations > limits.maxIterations { throw Flow.error(JinjaError(.limit, "template loops exceed \(limits.maxIterations) iterations")) }
                var scope = bind(targets, it)
                scope["loop"] = .object([
                    ("index", .int(i + 1)), ("index0", .int(i)), ("revindex", .int(items.count - i)),
                    ("revindex0", .int(items.count - i - 1)), ("first", .bool(i == 0)), ("last", .bool(i == items.count - 1)),
                    ("length", .int(items.count)), ("depth", .int(1)), ("depth0", .int(0)),
                    ("previtem", i > 0 ? items[i - 1] : .undefined("loop.previtem")),
                    ("nextitem", i + 1 < items.count ? items[i + 1] : .undefined("loop.nextitem")),
                ])
                scopes.append(scope)
                defer { scopes.removeLast() }
                do { try exec(body) } catch Flow.breakLoop { break } catch Flow.continueLoop { continue }
            }
        case let .set(target, e):
            let v = try eval(e)
            switch target {
            case let .name(name): scopes[scopes.count - 1][name] = v
            case let .tuple(names):
                let xs = try iterate(v)
                guard xs.count == names.count else { throw rt("cannot unpack \(xs.count) values into \(names.count) names") }
                for (k, x) in zip(names, xs) { scopes[scopes.count - 1][k] = x }
            case let .attr(obj, attr):
                guard case let .namespace(d) = lookup(obj) else { throw rt("cannot assign attribute '\(attr)' of '\(obj)': not a namespace") }
                d[attr] = v
            }
        case let .setBlock(name, body):
            let saved = out
            out = ""
            try exec(body)
            let captured = out
            out = saved
            scopes[scopes.count - 1][name] = .string(captured)
        case let .macro(m):
            scopes[scopes.count - 1][m.name] = .macro(m)
        case let .call(callee, body, params):
            let caller = Macro(name: "caller", params: params, body: body)
            scopes.append(["caller": .macro(caller)])
            defer { scopes.removeLast() }
            try emit(PyText.str(try eval(callee)))
        case let .filterBlock(name, args, body):
            let saved = out
            out = ""
            try exec(body)
            let captured = out
            out = saved
            try emit(PyText.str(try applyFilter(name, .string(captured), try args.map { try eval($0) }, [:])))
        case .breakNode: throw Flow.breakLoop
        case .continueNode: throw Flow.continueLoop
        }
    }

    private func bind(_ targets: [String], _ item: Value) -> [String: Value] {
        if targets.count == 1 { return [targets[0]: item] }
        var s: [String: Value] = [:]
        let xs = (try? iterate(item)) ?? []
        for (i, t) in targets.enumerated() { s[t] = i < xs.count ? xs[i] : .undefined(t) }
        return s
    }

    private func lookup(_ name: String) -> Value {
        for s in scopes.reversed() { if let v = s[name] { return v } }
        switch name {
        case "raise_exception", "strftime_now", "namespace", "range", "dict", "joiner", "cycler", "lipsum": return .builtin(name)
        default: return .undefined(name)
        }
    }

    // MARK: expressions

    mutating func eval(_ e: Expr) throws -> Value {
        evalDepth += 1
        defer { evalDepth -= 1 }
        if evalDepth > 256 { throw Flow.error(JinjaError(.limit, "template expression nests deeper than 256")) }
        switch e {
        case let .literal(v): return v
        case let .name(n): return lookup(n)
        case let .list(xs): return .array(try xs.map { try eval($0) })
        case let .tuple(xs): return .array(try xs.map { try eval($0) })
        case let .dict(kv):
            let d = JinjaDict()
            for (k, v) in kv {
                let kk = try eval(k)
                guard JinjaDict.encode(kk) != nil else { throw rt("unhashable type: '\(kk.typeName)'") }
                d[value: kk] = try eval(v)
            }
            return .dict(d)
        case let .attr(obj, name): return try attribute(try eval(obj).unmarked, name, expr: obj)
        case let .item(obj, k): return try item(try eval(obj).unmarked, try eval(k).unmarked, expr: obj)
        case let .slice(obj, a, b, c):
            let v = try eval(obj).unmarked
            if case let .list(l) = v, l.isGenerator { throw rt("'generator' object is not subscriptable") }
            let step = try c.map { try int(try eval($0)) } ?? 1
            guard step != 0 else { throw rt("slice step cannot be zero") }
            func idx(_ x: Expr?) throws -> Int? {
                guard let x else { return nil }
                let v = try eval(x)
                if case .none = v { return nil }
                return try int(v)
            }
            let lo = try idx(a), hi = try idx(b)
            switch v {
            case let .string(s): return .string(String(slice(Array(s), lo, hi, step)))
            case let .list(l): return .array(slice(l.items, lo, hi, step))
            default: throw rt("'\(v.typeName)' object is not subscriptable")
            }
        case let .call(callee, args, kw): return try call(callee, try args.map { try eval($0) }, try evalKw(kw))
        case let .filter(x, name, args, kw):
            let v = try eval(x)
            if name == "safe" { return .markup(PyText.str(v)) }
            return try applyFilter(name, v.unmarked, try args.map { try eval($0).unmarked }, try evalKw(kw))
        case let .test(x, name, args, negated):
            let r = try applyTest(name, try eval(x).unmarked, try args.map { try eval($0).unmarked })
            return .bool(negated ? !r : r)
        case let .not(x): return .bool(!(try eval(x).truthy))
        case let .neg(x):
            switch try eval(x) {
            case let .int(i): return i == .min ? .double(-Double(i)) : .int(-i)
            case let .double(d): return .double(-d)
            case let v: throw rt("bad operand type for unary -: '\(v.typeName)'")
            }
        case let .pos(x): return try eval(x)
        case let .and(a, b):
            let l = try eval(a)
            return l.truthy ? try eval(b) : l
        case let .or(a, b):
            let l = try eval(a)
            return l.truthy ? l : try eval(b)
        case let .cond(then, test, otherwise):
            if try eval(test).truthy { return try eval(then) }
            return try otherwise.map { try eval($0) } ?? .undefined("the else branch")
        case let .binary(op, a, b):
            let l = try eval(a), r = try eval(b)
            if op == "+" {
                switch (l, r) {
                case let (.markup(x), .markup(y)): return .markup(x + y)
                case let (.markup(x), .string(y)): return .markup(x + htmlEscape(y))
                case let (.string(x), .markup(y)): return .markup(htmlEscape(x) + y)
                default: break
                }
            }
            return try binary(op, l.unmarked, r.unmarked)
        }
    }

    private mutating func evalKw(_ kw: [(String, Expr)]) throws -> [String: Value] {
        var d: [String: Value] = [:]
        for (k, v) in kw { d[k] = try eval(v) }
        return d
    }

    private func slice<T>(_ a: [T], _ lo: Int?, _ hi: Int?, _ step: Int) -> [T] {
        let n = a.count
        func norm(_ x: Int?, _ def: Int) -> Int {
            guard var x else { return def }
            if x < 0 { x += n }
            return step > 0 ? min(max(x, 0), n) : min(max(x, -1), n - 1)
        }
        var out: [T] = []
        if step > 0 {
            var i = norm(lo, 0)
            let e = norm(hi, n)
            while i < e { out.append(a[i]); let (j, o) = i.addingReportingOverflow(step); if o { break }; i = j }
        } else {
            var i = norm(lo, n - 1)
            let e = norm(hi, -1)
            while i > e { out.append(a[i]); let (j, o) = i.addingReportingOverflow(step); if o { break }; i = j }
        }
        return out
    }

    private func attribute(_ v: Value, _ name: String, expr: Expr) throws -> Value {
        // jinja2's sandbox: no underscore attributes (the way to Python internals).
        if name.hasPrefix("_") { throw rt("access to attribute '\(name)' of '\(v.typeName)' object is unsafe.") }
        switch v {
        case let .undefined(n): throw rt("'\(n)' is undefined")
        case let .dict(d), let .namespace(d): return d[name] ?? .undefined(name)
        case let .list(l):
            if let i = Int(name), i >= 0, i < l.items.count { return l.items[i] }
            return .undefined(name)
        default: return .undefined(name)
        }
    }

    private func item(_ v: Value, _ k: Value, expr: Expr) throws -> Value {
        switch (v, k) {
        case let (.undefined(n), _): throw rt("'\(n)' is undefined")
        case let (.dict(d), _), let (.namespace(d), _): return d[value: k] ?? .undefined(PyText.str(k))
        case let (.list(l), _) where l.isGenerator: throw rt("'generator' object is not subscriptable")
        case let (.list(l), .int(i)):
            let j = i < 0 ? i + l.items.count : i
            guard j >= 0 && j < l.items.count else { throw rt("list index out of range") }
            return l.items[j]
        case let (.string(s), .int(i)):
            let cs = Array(s), j = i < 0 ? i + cs.count : i
            guard j >= 0 && j < cs.count else { throw rt("string index out of range") }
            return .string(String(cs[j]))
        case let (.list, .bool(b)): return try item(v, .int(b ? 1 : 0), expr: expr)
        default:
            if case let .string(name) = k { return try attribute(v, name, expr: expr) }
            throw rt("'\(v.typeName)' object is not subscriptable by '\(k.typeName)'")
        }
    }

    // MARK: calls

    private mutating func call(_ callee: Expr, _ args: [Value], _ kw: [String: Value]) throws -> Value {
        if case let .attr(objExpr, name) = callee {
            let obj = try eval(objExpr).unmarked
            switch obj {
            case .string, .list, .dict: return try method(obj, name, args, kw)
            case .namespace, .undefined, .none, .int, .double, .bool, .macro, .builtin, .markup:
                let f = try attribute(obj, name, expr: objExpr)
                return try invoke(f, args, kw, name: name)
            }
        }
        let f = try eval(callee)
        return try invoke(f, args, kw, name: "\(callee)")
    }

    private mutating func invoke(_ f: Value, _ args: [Value], _ kw: [String: Value], name: String) throws -> Value {
        switch f {
        case let .macro(m): return try callMacro(m, args, kw)
        case let .builtin(b): return try builtin(b, args, kw)
        case let .undefined(n): throw rt("'\(n)' is undefined")
        default: throw rt("'\(f.typeName)' object is not callable")
        }
    }

    private mutating func callMacro(_ m: Macro, _ args: [Value], _ kw: [String: Value]) throws -> Value {
        depth += 1
        defer { depth -= 1 }
        if depth > limits.maxDepth { throw Flow.error(JinjaError(.limit, "template macro calls nest deeper than \(limits.maxDepth)")) }
        var scope: [String: Value] = [:]
        for (i, (p, def)) in m.params.enumerated() {
            if i < args.count { scope[p] = args[i] }
            else if let v = kw[p] { scope[p] = v }
            else if let def { scope[p] = try eval(def) }
            else { scope[p] = .undefined(p) }
        }
        if args.count > m.params.count { scope["varargs"] = .array(Array(args[m.params.count...])) }
        let saved = out, savedScopes = scopes
        out = ""
        scopes = [scopes[0], scope]   // a macro sees the template's globals and its arguments
        defer { scopes = savedScopes }
        do { try exec(m.body) } catch { out = saved; throw error }
        let result = out
        out = saved
        return .string(result)
    }

    private func builtin(_ name: String, _ args: [Value], _ kw: [String: Value]) throws -> Value {
        switch name {
        case "raise_exception":
            throw Flow.error(JinjaError(.raised, args.first.map(PyText.str) ?? "the template raised an exception"))
        case "strftime_now":
            guard case let .string(fmt)? = args.first else { throw rt("strftime_now needs a format string") }
            return .string(strftime(fmt, now))
        case "namespace":
            let d = JinjaDict()
            if case let .dict(initial)? = args.first { for (k, v) in initial.pairs { d[k] = v } }
            for k in kw.keys.sorted() { d[k] = kw[k]! }
            return .namespace(d)
        case "dict":
            let d = JinjaDict()
            for k in kw.keys.sorted() { d[k] = kw[k]! }
            return .dict(d)
        case "range":
            let xs = try args.map { try int($0) }
            let (a, b, s) = xs.count == 1 ? (0, xs[0], 1) : xs.count == 2 ? (xs[0], xs[1], 1) : xs.count == 3 ? (xs[0], xs[1], xs[2]) : (0, 0, 1)
            guard s != 0 else { throw rt("range() step must not be zero") }
            // In doubles: the bounds may be anything a template computes.
            let span = s > 0 ? (Double(b) - Double(a)) / Double(s) : (Double(a) - Double(b)) / -Double(s)
            guard span.rounded(.up) <= Double(limits.maxIterations) else { throw Flow.error(JinjaError(.limit, "range of \(span) items is too long")) }
            let n = max(0, Int(span.rounded(.up)))
            guard n <= limits.maxIterations else { throw Flow.error(JinjaError(.limit, "range of \(n) items is too long")) }
            return .array((0..<n).map { .int(a + $0 * s) })
        default: throw rt("'\(name)' is not supported in chat templates")
        }
    }

    /// Python's methods on strings, lists and dicts.
    private func method(_ v: Value, _ name: String, _ args: [Value], _ kw: [String: Value]) throws -> Value {
        if name.hasPrefix("_") { throw rt("access to attribute '\(name)' of '\(v.typeName)' object is unsafe.") }
        switch v {
        case let .string(s):
            func arg(_ i: Int) -> String? { if case let .string(x)? = args.count > i ? args[i] : nil { return x }; return nil }
            switch name {
            case "strip": return .string(strip(s, arg(0), left: true, right: true))
            case "lstrip": return .string(strip(s, arg(0), left: true, right: false))
            case "rstrip": return .string(strip(s, arg(0), left: false, right: true))
            case "upper": return .string(s.uppercased())
            case "lower": return .string(s.lowercased())
            case "title": return .string(title(s))
            case "capitalize": return .string(s.prefix(1).uppercased() + s.dropFirst().lowercased())
            case "startswith":
                if case let .list(l)? = args.first { return .bool(l.items.contains { if case let .string(p) = $0 { s.hasPrefix(p) } else { false } }) }
                return .bool(s.hasPrefix(arg(0) ?? ""))
            case "endswith":
                if case let .list(l)? = args.first { return .bool(l.items.contains { if case let .string(p) = $0 { s.hasSuffix(p) } else { false } }) }
                return .bool(s.hasSuffix(arg(0) ?? ""))
            case "split":
                let maxsplit = args.count > 1 ? try int(args[1]) : (kw["maxsplit"].map { (try? int($0)) ?? -1 } ?? -1)
                if let sep = arg(0) {
                    guard !sep.isEmpty else { throw rt("empty separator") }
                    var parts = s.components(separatedBy: sep)
                    if maxsplit >= 0 && parts.count > maxsplit + 1 {
                        parts = Array(parts[..<maxsplit]) + [parts[maxsplit...].joined(separator: sep)]
                    }
                    return .array(parts.map { .string($0) })
                }
                return .array(s.split(whereSeparator: { $0.isWhitespace }).map { .string(String($0)) })
            case "replace":
                guard let a = arg(0), let b = arg(1) else { throw rt("replace() needs two strings") }
                return .string(a.isEmpty ? s : s.replacingOccurrences(of: a, with: b))
            case "find": return .int(s.range(of: arg(0) ?? "").map { s.distance(from: s.startIndex, to: $0.lowerBound) } ?? -1)
            case "count": return .int(arg(0).map { $0.isEmpty ? s.count + 1 : s.components(separatedBy: $0).count - 1 } ?? 0)
            case "join":
                guard case let .list(l)? = args.first else { throw rt("join() needs a list") }
                return .string(l.items.map(PyText.str).joined(separator: s))
            case "format": return .string(try pyFormat(s, args))
            case "isdigit": return .bool(!s.isEmpty && s.allSatisfy(\.isNumber))
            case "isspace": return .bool(!s.isEmpty && s.allSatisfy(\.isWhitespace))
            default: throw rt("'str' object has no attribute '\(name)'")
            }
        case let .list(l):
            switch name {
            // transformers renders in jinja2's ImmutableSandboxedEnvironment: a template may not
            // mutate a list (what it raises, we raise).
            case "append", "pop", "extend", "insert", "remove", "clear", "sort", "reverse":
                throw rt("access to attribute '\(name)' of 'list' object is unsafe.")
            case "pop":
                guard !l.items.isEmpty else { throw rt("pop from empty list") }
                if let i = args.first { let j = try int(i); let k = j < 0 ? j + l.items.count : j; guard k >= 0 && k < l.items.count else { throw rt("pop index out of range") }; return l.items.remove(at: k) }
                return l.items.removeLast()
            case "extend": l.items += try iterate(args.first ?? .array([])); return .none
            case "insert": l.items.insert(args.count > 1 ? args[1] : .none, at: min(max(0, try int(args.first ?? .int(0))), l.items.count)); return .none
            case "index":
                guard let x = args.first, let i = l.items.firstIndex(where: { equal($0, x) }) else { throw rt("value is not in list") }
                return .int(i)
            case "count": return .int(l.items.filter { equal($0, args.first ?? .none) }.count)
            default: throw rt("'list' object has no attribute '\(name)'")
            }
        case let .dict(d):
            switch name {
            case "items": return .array(d.items.map { .array([$0.0, $0.1]) })
            case "keys": return .array(d.keyValues)
            case "values": return .array(d.items.map(\.1))
            case "get": return d[value: args.first ?? .none] ?? (args.count > 1 ? args[1] : .none)
            case "update", "pop", "setdefault", "clear", "popitem":
                throw rt("access to attribute '\(name)' of 'dict' object is unsafe.")
            default:
                if let f = d[name] { return f }
                throw rt("'dict' object has no attribute '\(name)'")
            }
        default: throw rt("'\(v.typeName)' object has no attribute '\(name)'")
        }
    }

    // MARK: operators

    /// Python's binary operators (the filters' `sum` adds with it too).
    func binary(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        switch op {
        case "==": return .bool(equal(a, b))
        case "!=": return .bool(!equal(a, b))
        case "<", ">", "<=", ">=":
            let c = try compare(a, b)
            return .bool(op == "<" ? c < 0 : op == ">" ? c > 0 : op == "<=" ? c <= 0 : c >= 0)
        case "in":
            switch b {
            case let .string(s):
                guard case let .string(x) = a else { throw rt("'in <string>' requires string as left operand") }
                return .bool(x.isEmpty || s.contains(x))
            case let .list(l): return .bool(l.items.contains { equal($0, a) })
            case let .dict(d), let .namespace(d): return .bool(d[value: a] != nil)
            case .undefined: return .bool(false)   // jinja2's Undefined iterates as empty
            default: throw rt("argument of type '\(b.typeName)' is not iterable")
            }
        case "~": return .string(PyText.str(a) + PyText.str(b))
        case "+":
            switch (a, b) {
            case let (.string(x), .string(y)): return .string(x + y)
            case let (.list(x), .list(y)): return .array(x.items + y.items)
            default: return try arith(op, a, b)
            }
        case "*":
            switch (a, b) {
            case let (.string(s), .int(n)), let (.int(n), .string(s)):
                guard n <= 0 || s.utf8.count <= limits.maxOutputBytes / n else { throw Flow.error(JinjaError(.limit, "string repetition beyond \(limits.maxOutputBytes) bytes")) }
                return .string(String(repeating: s, count: max(0, n)))
            case let (.list(l), .int(n)):
                guard n <= 0 || l.items.count <= limits.maxIterations / n else { throw Flow.error(JinjaError(.limit, "list repetition beyond \(limits.maxIterations) items")) }
                return .array(Array([[Value]](repeating: l.items, count: max(0, n)).joined()))
            default: return try arith(op, a, b)
            }
        default: return try arith(op, a, b)
        }
    }

    private func arith(_ op: String, _ a: Value, _ b: Value) throws -> Value {
        func num(_ v: Value) throws -> Double {
            switch v {
            case let .int(i): return Double(i)
            case let .double(d): return d
            case let .bool(b): return b ? 1 : 0
            case let .undefined(n): throw rt("'\(n)' is undefined")
            default: throw rt("unsupported operand type for \(op): '\(a.typeName)' and '\(b.typeName)'")
            }
        }
        let ints: (Int, Int)? = {
            switch (a, b) {
            case let (.int(x), .int(y)): return (x, y)
            case let (.bool(x), .int(y)): return (x ? 1 : 0, y)
            case let (.int(x), .bool(y)): return (x, y ? 1 : 0)
            default: return nil
            }
        }()
        if let (x, y) = ints {
            switch op {
            case "+": return .int(x &+ y)
            case "-": return .int(x &- y)
            case "*": return .int(x &* y)
            case "/": guard y != 0 else { throw rt("division by zero") }; return .double(Double(x) / Double(y))
            case "//":
                guard y != 0 else { throw rt("integer division by zero") }
                if x == .min && y == -1 { return .double(-Double(x)) }
                let q = x / y
                return .int((x % y != 0) && ((x < 0) != (y < 0)) ? q - 1 : q)
            case "%":
                guard y != 0 else { throw rt("modulo by zero") }
                if y == -1 { return .int(0) }
                let m = x % y
                return .int(m != 0 && (m < 0) != (y < 0) ? m + y : m)
            case "**":
                let p = pow(Double(x), Double(y))
                return y >= 0 && abs(p) < 9.2e18 ? .int(Int(p)) : .double(p)
            default: break
            }
        }
        let x = try num(a), y = try num(b)
        switch op {
        case "+": return .double(x + y)
        case "-": return .double(x - y)
        case "*": return .double(x * y)
        case "/": guard y != 0 else { throw rt("division by zero") }; return .double(x / y)
        case "//": guard y != 0 else { throw rt("division by zero") }; return .double((x / y).rounded(.down))
        case "%": guard y != 0 else { throw rt("modulo by zero") }; let m = fmod(x, y); return .double(m != 0 && (m < 0) != (y < 0) ? m + y : m)
        case "**": return .double(pow(x, y))
        default: throw rt("unknown operator \(op)")
        }
    }

    func equal(_ a: Value, _ b: Value) -> Bool {
        switch (a, b) {
        case (.none, .none), (.undefined, .undefined): return true
        case let (.bool(x), .bool(y)): return x == y
        case let (.string(x), .string(y)): return x == y
        case let (.list(x), .list(y)): return x.items.count == y.items.count && zip(x.items, y.items).allSatisfy { equal($0, $1) }
        case let (.dict(x), .dict(y)): return x.count == y.count && x.items.allSatisfy { k, v in y[value: k].map { equal(v, $0) } ?? false }
        case let (.namespace(x), .namespace(y)): return x === y
        default:
            if let x = number(a), let y = number(b) { return x == y }
            return false
        }
    }

    private func number(_ v: Value) -> Double? {
        switch v {
        case let .int(i): return Double(i)
        case let .double(d): return d
        case let .bool(b): return b ? 1 : 0
        default: return nil
        }
    }

    /// Python's ordering: numbers (bools as 0/1), strings, lists element by element; else an error. The
    /// operators, the `<`-family tests and sort/min/max/dictsort all use it.
    func compare(_ a: Value, _ b: Value) throws -> Int {
        if let x = number(a), let y = number(b) { return x < y ? -1 : x > y ? 1 : 0 }
        if case let .string(x) = a, case let .string(y) = b { return x < y ? -1 : x > y ? 1 : 0 }
        if case let .list(x) = a, case let .list(y) = b {
            for (p, q) in zip(x.items, y.items) where !equal(p, q) { return try compare(p, q) }
            return x.items.count < y.items.count ? -1 : x.items.count > y.items.count ? 1 : 0
        }
        throw rt("'<' not supported between instances of '\(a.typeName)' and '\(b.typeName)'")
    }

    func iterate(_ v: Value) throws -> [Value] {
        switch v.unmarked {
        case let .list(l): return l.items
        case let .dict(d): return d.keyValues
        case let .string(s): return s.map { .string(String($0)) }
        case .undefined: return []   // jinja2's Undefined iterates as empty
        case .none: throw rt("'NoneType' object is not iterable")
        default: throw rt("'\(v.typeName)' object is not iterable")
        }
    }

    func int(_ v: Value) throws -> Int {
        switch v {
        case let .int(i): return i
        case let .bool(b): return b ? 1 : 0
        case let .double(d): guard d.isFinite, abs(d) < 9e18 else { throw rt("cannot convert \(d) to an integer") }; return Int(d)
        case let .string(s): guard let i = Int(s.trimmingCharacters(in: .whitespaces)) else { throw rt("invalid literal for int(): '\(s)'") }; return i
        default: throw rt("'\(v.typeName)' is not a number")
        }
    }

    func rt(_ m: String) -> Flow { .error(JinjaError(.runtime, m)) }

    func htmlEscape(_ s: String) -> String {
        var out = ""
        for c in s {
            switch c { case "&": out += "&amp;"; case "<": out += "&lt;"; case ">": out += "&gt;"; case "\"": out += "&#34;"; case "'": out += "&#39;"; default: out.append(c) }
        }
        return out
    }

    private func strip(_ s: String, _ chars: String?, left: Bool, right: Bool) -> String {
        let set: (Character) -> Bool = chars.map { cs in { cs.contains($0) } } ?? { $0.isWhitespace }
        var sub = Substring(s)
        if left { sub = sub.drop(while: set) }
        if right { while let l = sub.last, set(l) { sub = sub.dropLast() } }
        return String(sub)
    }

    func title(_ s: String) -> String {
        var out = "", prevLetter = false
        for c in s {
            out += prevLetter ? c.lowercased() : c.uppercased()
            prevLetter = c.isLetter
        }
        return out
    }

    private func pyFormat(_ f: String, _ args: [Value]) throws -> String {
        var out = "", i = 0, chars = Array(f), k = 0
        while k < chars.count {
            if chars[k] == "{", k + 1 < chars.count, chars[k + 1] == "{" { out.append("{"); k += 2; continue }
            if chars[k] == "}", k + 1 < chars.count, chars[k + 1] == "}" { out.append("}"); k += 2; continue }
            if chars[k] == "{", let e = chars[k...].firstIndex(of: "}") {
                let spec = String(chars[k + 1..<e])
                let idx = Int(spec) ?? i
                i += 1
                guard idx < args.count else { throw rt("format: not enough arguments") }
                out += PyText.str(args[idx])
                k = e + 1
                continue
            }
            out.append(chars[k]); k += 1
        }
        return out
    }

    private func strftime(_ fmt: String, _ date: Date) -> String {
        var t = time_t(date.timeIntervalSince1970)
        var tmv = tm()
        gmtime_r(&t, &tmv)
        var buf = [Int8](repeating: 0, count: 256)
        let n = Foundation.strftime(&buf, buf.count, fmt, &tmv)
        return String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
