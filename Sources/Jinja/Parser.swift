// Jinja2 source -> syntax tree. The lexer splits text from `{{ }}`, `{% %}` and `{# #}` tags (tokens
// inside tags, so a quoted "%}" does not end one) and applies whitespace control as Hugging Face renders
// chat templates: `-` strips all whitespace on that side, `trim_blocks` drops the newline after a block or
// comment tag, `lstrip_blocks` drops spaces and tabs before one on its line, `+` turns either off.
// The grammar and precedence follow Jinja2's parser (jinja2/parser.py): or < and < not < comparisons
// (with in / not in) < + - < ~ < * / // % < ** < unary - + < postfix (. [] ()) < filters | and tests `is`.

/// A template error: syntax (with its line), a failed operation while rendering, a limit, or the
/// template's own `raise_exception`.
public struct JinjaError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable { case syntax, runtime, limit, raised }
    public let kind: Kind
    public let message: String
    public var description: String { message }
    init(_ kind: Kind, _ message: String) { self.kind = kind; self.message = message }
}

enum Tok: Equatable {
    case name(String), string(String), int(Int), float(Double), op(String)
}

indirect enum Expr {
    case literal(Value)
    case name(String)
    case list([Expr]), tuple([Expr]), dict([(Expr, Expr)])
    case attr(Expr, String)
    case item(Expr, Expr)
    case slice(Expr, Expr?, Expr?, Expr?)
    case call(Expr, [Expr], [(String, Expr)])
    case filter(Expr, String, [Expr], [(String, Expr)])
    case test(Expr, String, [Expr], negated: Bool)
    case not(Expr)
    case neg(Expr), pos(Expr)
    case binary(String, Expr, Expr)
    case and(Expr, Expr), or(Expr, Expr)
    case cond(Expr, Expr, Expr?)   // then if test else otherwise
}

enum SetTarget { case name(String), attr(String, String), tuple([String]) }

indirect enum Node {
    case text(String)
    case output(Expr)
    case ifNode([(Expr, [Node])], [Node])
    case forNode(targets: [String], iter: Expr, filter: Expr?, body: [Node], otherwise: [Node], recursive: Bool)
    case set(SetTarget, Expr)
    case setBlock(String, [Node])
    case macro(Macro)
    case call(Expr, body: [Node], params: [(String, Expr?)])
    case filterBlock(String, [Expr], [Node])
    case breakNode, continueNode
}

struct Lexer {
    enum Item { case text(String), output([Tok], Int), stmt([Tok], Int) }

    static func lex(_ source: String) throws(JinjaError) -> [Item] {
        let b = Array(source.utf8)
        var items: [Item] = []
        var i = 0, line = 1, text: [UInt8] = []
        var stripNext = false, trimNewline = false
        // Whether the text since the last tag starts a line (Jinja2's `line_starting`): at the start, or
        // after a tag whose trimmed newline (or stripped whitespace) ended with one.
        var lineStart = true
        func flushText() {
            if !text.isEmpty { items.append(.text(String(decoding: text, as: UTF8.self))) }
            text = []
        }
        while i < b.count {
            if b[i] == UInt8(ascii: "{"), i + 1 < b.count, b[i + 1] == UInt8(ascii: "{") || b[i + 1] == UInt8(ascii: "%") || b[i + 1] == UInt8(ascii: "#") {
                let kind = b[i + 1]
                var j = i + 2
                var leftMod: UInt8 = 0
                if j < b.count, b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "+") { leftMod = b[j]; j += 1 }
                // Whitespace control on the text before the tag.
                if leftMod == UInt8(ascii: "-") {
                    while let l = text.last, isSpace(l) { text.removeLast() }
                } else if leftMod != UInt8(ascii: "+") && kind != UInt8(ascii: "{") {
                    // lstrip_blocks: only spaces/tabs since the line start (or the template start).
                    var k = text.count
                    while k > 0, text[k - 1] == 0x20 || text[k - 1] == 0x09 { k -= 1 }
                    let atLineStart = k == 0 ? lineStart : text[k - 1] == 0x0A
                    if atLineStart { text.removeSubrange(k...) }
                }
                flushText()
                if kind == UInt8(ascii: "#") {
                    guard let end = find(b, "#}", from: j) else { throw JinjaError(.syntax, "line \(line): unclosed comment") }
                    let dashRight = end > j && b[end - 1] == UInt8(ascii: "-"), plusRight = end > j && b[end - 1] == UInt8(ascii: "+")
                    line += b[i..<end].filter { $0 == 0x0A }.count
                    i = end + 2
                    stripNext = dashRight
                    trimNewline = !dashRight && !plusRight
                    lineStart = false
                    continue
                }
                let close: [UInt8] = kind == UInt8(ascii: "{") ? [0x7D, 0x7D] : [0x25, 0x7D]
                var toks: [Tok] = []
                var rightMod: UInt8 = 0
                let startLine = line
                while true {
                    while j < b.count, isSpace(b[j]) { if b[j] == 0x0A { line += 1 }; j += 1 }
                    guard j < b.count else { throw JinjaError(.syntax, "line \(startLine): unclosed tag") }
                    if b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "+"), j + 2 < b.count, b[j + 1] == close[0], b[j + 2] == close[1] {
                        rightMod = b[j]; j += 3; break
                    }
                    if j + 1 < b.count, b[j] == close[0], b[j + 1] == close[1] { j += 2; break }
                    toks.append(try token(b, &j, line: line))
                }
                i = j
                lineStart = false
                if kind == UInt8(ascii: "{") {
                    items.append(.output(toks, startLine))
                    stripNext = rightMod == UInt8(ascii: "-")
                    trimNewline = false
                } else {
                    if case .name("raw")? = toks.first {
                        // Verbatim until {% endraw %}.
                        guard let end = findEndRaw(b, from: i) else { throw JinjaError(.syntax, "line \(startLine): unclosed raw block") }
                        var body = Array(b[i..<end.start])
                        if rightMod == UInt8(ascii: "-") { while let f = body.first, isSpace(f) { body.removeFirst() } }
                        else if rightMod != UInt8(ascii: "+"), body.first == 0x0A { body.removeFirst() }
                        if end.dash { while let l = body.last, isSpace(l) { body.removeLast() } }
                        items.append(.text(String(decoding: body, as: UTF8.self)))
                        line += b[i..<end.after].filter { $0 == 0x0A }.count
                        i = end.after
                        stripNext = end.dashRight
                        trimNewline = !end.dashRight
                        continue
                    }
                    items.append(.stmt(toks, startLine))
                    stripNext = rightMod == UInt8(ascii: "-")
                    trimNewline = rightMod == 0
                }
                continue
            }
            if stripNext {
                if isSpace(b[i]) { lineStart = b[i] == 0x0A; if b[i] == 0x0A { line += 1 }; i += 1; continue }
                stripNext = false
            }
            if trimNewline {
                trimNewline = false
                if b[i] == 0x0A { line += 1; i += 1; lineStart = true; continue }
                if b[i] == 0x0D, i + 1 < b.count, b[i + 1] == 0x0A { line += 1; i += 2; lineStart = true; continue }
            }
            if b[i] == 0x0A { line += 1 }
            text.append(b[i])
            i += 1
        }
        flushText()
        return items
    }

    static func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D || c == 0x0B || c == 0x0C }

    private static func find(_ b: [UInt8], _ s: String, from: Int) -> Int? {
        let p = Array(s.utf8)
        var i = from
        while i + p.count <= b.count {
            if b[i] == p[0] && b[i + 1] == p[1] { return i }
            i += 1
        }
        return nil
    }

    private static func findEndRaw(_ b: [UInt8], from: Int) -> (start: Int, after: Int, dash: Bool, dashRight: Bool)? {
        var i = from
        while let s = find(b, "{%", from: i) {
            var j = s + 2
            let dash = j < b.count && b[j] == UInt8(ascii: "-")
            if j < b.count, b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "+") { j += 1 }
            while j < b.count, isSpace(b[j]) { j += 1 }
            if j + 6 <= b.count, String(decoding: b[j..<j + 6], as: UTF8.self) == "endraw" {
                j += 6
                while j < b.count, isSpace(b[j]) { j += 1 }
                let dashRight = j < b.count && b[j] == UInt8(ascii: "-")
                if j < b.count, b[j] == UInt8(ascii: "-") || b[j] == UInt8(ascii: "+") { j += 1 }
                if j + 1 < b.count, b[j] == UInt8(ascii: "%"), b[j + 1] == UInt8(ascii: "}") { return (s, j + 2, dash, dashRight) }
            }
            i = s + 2
        }
        return nil
    }

    private static func token(_ b: [UInt8], _ j: inout Int, line: Int) throws(JinjaError) -> Tok {
        let c = b[j]
        if c == UInt8(ascii: "_") || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "z")) {
            let s = j
            while j < b.count, b[j] == UInt8(ascii: "_") || (b[j] | 0x20 >= UInt8(ascii: "a") && b[j] | 0x20 <= UInt8(ascii: "z")) || (b[j] >= 0x30 && b[j] <= 0x39) { j += 1 }
            return .name(String(decoding: b[s..<j], as: UTF8.self))
        }
        if c >= 0x30 && c <= 0x39 {
            let s = j
            while j < b.count, (b[j] >= 0x30 && b[j] <= 0x39) || b[j] == UInt8(ascii: "_") { j += 1 }
            var isFloat = false
            if j + 1 < b.count, b[j] == UInt8(ascii: "."), b[j + 1] >= 0x30 && b[j + 1] <= 0x39 {
                isFloat = true
                j += 1
                while j < b.count, b[j] >= 0x30 && b[j] <= 0x39 { j += 1 }
            }
            if j < b.count, b[j] == UInt8(ascii: "e") || b[j] == UInt8(ascii: "E") {
                var k = j + 1
                if k < b.count, b[k] == UInt8(ascii: "+") || b[k] == UInt8(ascii: "-") { k += 1 }
                if k < b.count, b[k] >= 0x30 && b[k] <= 0x39 {
                    isFloat = true
                    j = k
                    while j < b.count, b[j] >= 0x30 && b[j] <= 0x39 { j += 1 }
                }
            }
            let text = String(decoding: b[s..<j], as: UTF8.self).replacingOccurrences(of: "_", with: "")
            if isFloat { return .float(Double(text) ?? 0) }
            guard let v = Int(text) else { throw JinjaError(.syntax, "line \(line): number \(text) is too large") }
            return .int(v)
        }
        if c == UInt8(ascii: "'") || c == UInt8(ascii: "\"") {
            var out: [UInt8] = []
            j += 1
            while j < b.count, b[j] != c {
                if b[j] == UInt8(ascii: "\\"), j + 1 < b.count {
                    j += 1
                    switch b[j] {
                    case UInt8(ascii: "n"): out.append(0x0A)
                    case UInt8(ascii: "t"): out.append(0x09)
                    case UInt8(ascii: "r"): out.append(0x0D)
                    case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""): out.append(b[j])
                    default: out.append(UInt8(ascii: "\\")); out.append(b[j])
                    }
                } else {
                    out.append(b[j])
                }
                j += 1
            }
            guard j < b.count else { throw JinjaError(.syntax, "line \(line): unterminated string") }
            j += 1
            return .string(String(decoding: out, as: UTF8.self))
        }
        for op in ["//", "**", "==", "!=", "<=", ">="] where j + 1 < b.count && b[j] == op.utf8.first! && b[j + 1] == Array(op.utf8)[1] {
            j += 2
            return .op(op)
        }
        if "+-*/%~<>=()[]{}.,:|".utf8.contains(c) { j += 1; return .op(String(UnicodeScalar(c))) }
        throw JinjaError(.syntax, "line \(line): unexpected character '\(String(UnicodeScalar(c)))'")
    }
}

struct Parser {
    private var items: [Lexer.Item]
    private var pos = 0
    // The current tag's tokens.
    private var toks: [Tok] = []
    private var t = 0
    private var line = 0
    /// Nesting of blocks and expressions: bounded, so a hostile template cannot overflow the stack.
    private var depth = 0
    static let maxDepth = 200

    static func parse(_ source: String) throws(JinjaError) -> [Node] {
        var p = Parser(items: try Lexer.lex(source))
        let (body, end) = try p.block(until: [])
        if let end { throw JinjaError(.syntax, "line \(p.line): unexpected '\(end)'") }
        return body
    }

    private init(items: [Lexer.Item]) { self.items = items }

    /// Nodes until a statement tag starting with one of `until` (returned, its tokens current) or the end.
    private mutating func block(until: Set<String>) throws(JinjaError) -> ([Node], String?) {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw err("blocks nest deeper than \(Self.maxDepth)") }
        var nodes: [Node] = []
        while pos < items.count {
            let item = items[pos]
            pos += 1
            switch item {
            case let .text(s): nodes.append(.text(s))
            case let .output(tk, l):
                toks = tk; t = 0; line = l
                let e = try expr()
                try expectEnd()
                nodes.append(.output(e))
            case let .stmt(tk, l):
                toks = tk; t = 0; line = l
                guard case let .name(kw)? = next() else { throw err("expected a statement") }
                if until.contains(kw) { return (nodes, kw) }
                nodes.append(try statement(kw))
            }
        }
        return (nodes, nil)
    }

    private mutating func statement(_ kw: String) throws(JinjaError) -> Node {
        switch kw {
        case "if":
            var branches: [(Expr, [Node])] = []
            var cond = try expr()
            try expectEnd()
            while true {
                let (body, end) = try block(until: ["elif", "else", "endif"])
                branches.append((cond, body))
                switch end {
                case "elif": cond = try expr(); try expectEnd()
                case "else":
                    try expectEnd()
                    let (other, e2) = try block(until: ["endif"])
                    guard e2 == "endif" else { throw err("missing endif") }
                    try expectEnd()
                    return .ifNode(branches, other)
                case "endif": try expectEnd(); return .ifNode(branches, [])
                default: throw err("missing endif")
                }
            }
        case "for":
            var targets: [String] = []
            repeat {
                guard case let .name(n)? = next() else { throw err("expected a loop variable") }
                targets.append(n)
            } while accept(.op(","))
            guard accept(.name("in")) else { throw err("expected 'in'") }
            let iter = try orExpr(noCondExpr: true)
            var filter: Expr?
            if accept(.name("if")) { filter = try orExpr(noCondExpr: true) }
            let recursive = accept(.name("recursive"))
            try expectEnd()
            let (body, end) = try block(until: ["else", "endfor"])
            var otherwise: [Node] = []
            if end == "else" {
                try expectEnd()
                let (o, e2) = try block(until: ["endfor"])
                guard e2 == "endfor" else { throw err("missing endfor") }
                otherwise = o
            } else if end != "endfor" { throw err("missing endfor") }
            try expectEnd()
            return .forNode(targets: targets, iter: iter, filter: filter, body: body, otherwise: otherwise, recursive: recursive)
        case "set":
            guard case let .name(n)? = next() else { throw err("expected a name to set") }
            var target = SetTarget.name(n)
            if accept(.op(".")) {
                guard case let .name(a)? = next() else { throw err("expected an attribute name") }
                target = .attr(n, a)
            } else if peek == .op(",") {
                var names = [n]
                while accept(.op(",")) {
                    guard case let .name(m)? = next() else { throw err("expected a name") }
                    names.append(m)
                }
                target = .tuple(names)
            }
            if accept(.op("=")) {
                let v = try tupleOrExpr()
                try expectEnd()
                return .set(target, v)
            }
            guard case let .name(name) = target else { throw err("a block set takes one name") }
            try expectEnd()
            let (body, end) = try block(until: ["endset"])
            guard end == "endset" else { throw err("missing endset") }
            try expectEnd()
            return .setBlock(name, body)
        case "macro":
            guard case let .name(name)? = next() else { throw err("expected a macro name") }
            let params = try paramList()
            try expectEnd()
            let (body, end) = try block(until: ["endmacro"])
            guard end == "endmacro" else { throw err("missing endmacro") }
            try expectEnd()
            return .macro(Macro(name: name, params: params, body: body))
        case "call":
            var params: [(String, Expr?)] = []
            if peek == .op("(") { params = try paramList() }
            let callee = try expr()
            try expectEnd()
            let (body, end) = try block(until: ["endcall"])
            guard end == "endcall" else { throw err("missing endcall") }
            try expectEnd()
            return .call(callee, body: body, params: params)
        case "filter":
            guard case let .name(name)? = next() else { throw err("expected a filter name") }
            var args: [Expr] = []
            if accept(.op("(")) { (args, _) = try callArgs() }
            try expectEnd()
            let (body, end) = try block(until: ["endfilter"])
            guard end == "endfilter" else { throw err("missing endfilter") }
            try expectEnd()
            return .filterBlock(name, args, body)
        case "break": try expectEnd(); return .breakNode
        case "continue": try expectEnd(); return .continueNode
        case "generation":   // transformers' assistant-mask marker: renders its body
            try expectEnd()
            let (body, end) = try block(until: ["endgeneration"])
            guard end == "endgeneration" else { throw err("missing endgeneration") }
            try expectEnd()
            return .ifNode([(.literal(.bool(true)), body)], [])
        default:
            throw err("unknown tag '\(kw)'")
        }
    }

    private mutating func paramList() throws(JinjaError) -> [(String, Expr?)] {
        guard accept(.op("(")) else { throw err("expected '('") }
        var params: [(String, Expr?)] = []
        while !accept(.op(")")) {
            guard case let .name(p)? = next() else { throw err("expected a parameter name") }
            params.append((p, accept(.op("=")) ? try expr() : nil))
            if !accept(.op(",")) { guard accept(.op(")")) else { throw err("expected ')'") }; break }
        }
        return params
    }

    // MARK: expressions

    private mutating func tupleOrExpr() throws(JinjaError) -> Expr {
        let e = try expr()
        guard peek == .op(",") else { return e }
        var xs = [e]
        while accept(.op(",")) { if atEnd { break }; xs.append(try expr()) }
        return .tuple(xs)
    }

    mutating func expr() throws(JinjaError) -> Expr { try orExpr(noCondExpr: false) }

    private mutating func orExpr(noCondExpr: Bool) throws(JinjaError) -> Expr {
        var e = try andExpr()
        while accept(.name("or")) { e = .or(e, try andExpr()) }
        if !noCondExpr && accept(.name("if")) {
            let test = try orExpr(noCondExpr: true)
            let otherwise: Expr? = accept(.name("else")) ? try expr() : nil
            return .cond(e, test, otherwise)
        }
        return e
    }

    private mutating func andExpr() throws(JinjaError) -> Expr {
        var e = try notExpr()
        while accept(.name("and")) { e = .and(e, try notExpr()) }
        return e
    }

    private mutating func notExpr() throws(JinjaError) -> Expr {
        if accept(.name("not")) {
            depth += 1
            defer { depth -= 1 }
            guard depth <= Self.maxDepth else { throw err("expression nests deeper than \(Self.maxDepth)") }
            return .not(try notExpr())
        }
        return try compare()
    }

    private mutating func compare() throws(JinjaError) -> Expr {
        var e = try math1()
        while true {
            if case let .op(o)? = peek, ["==", "!=", "<", ">", "<=", ">="].contains(o) { t += 1; e = .binary(o, e, try math1()) }
            else if accept(.name("in")) { e = .binary("in", e, try math1()) }
            else if peek == .name("not"), t + 1 < toks.count, toks[t + 1] == .name("in") { t += 2; e = .not(.binary("in", e, try math1())) }
            else { return e }
        }
    }

    private mutating func math1() throws(JinjaError) -> Expr {
        var e = try concat()
        while case let .op(o)? = peek, o == "+" || o == "-" { t += 1; e = .binary(o, e, try concat()) }
        return e
    }

    private mutating func concat() throws(JinjaError) -> Expr {
        var e = try math2()
        while accept(.op("~")) { e = .binary("~", e, try math2()) }
        return e
    }

    private mutating func math2() throws(JinjaError) -> Expr {
        var e = try pow()
        while case let .op(o)? = peek, ["*", "/", "//", "%"].contains(o) { t += 1; e = .binary(o, e, try pow()) }
        return e
    }

    private mutating func pow() throws(JinjaError) -> Expr {
        var e = try unary(filters: true)
        while accept(.op("**")) { e = .binary("**", e, try unary(filters: true)) }
        return e
    }

    private mutating func unary(filters: Bool) throws(JinjaError) -> Expr {
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else { throw err("expression nests deeper than \(Self.maxDepth)") }
        var e: Expr
        if accept(.op("-")) { e = .neg(try unary(filters: false)) }
        else if accept(.op("+")) { e = .pos(try unary(filters: false)) }
        else { e = try postfix(try primary()) }
        return filters ? try filterChain(e) : e
    }

    private mutating func filterChain(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            if accept(.op("|")) {
                guard case let .name(n)? = next() else { throw err("expected a filter name") }
                var args: [Expr] = [], kw: [(String, Expr)] = []
                if accept(.op("(")) { (args, kw) = try callArgs() }
                e = .filter(e, n, args, kw)
            } else if accept(.name("is")) {
                let negated = accept(.name("not"))
                guard case let .name(n)? = next() else { throw err("expected a test name") }
                var args: [Expr] = []
                if accept(.op("(")) { (args, _) = try callArgs() }
                else if let p = peek, startsPrimary(p) { args = [try postfix(try primary())] }
                e = .test(e, n, args, negated: negated)
            } else {
                return e
            }
        }
    }

    private func startsPrimary(_ p: Tok) -> Bool {
        switch p {
        case .string, .int, .float: return true
        case let .name(n): return !["and", "or", "else", "if", "in", "not", "is", "recursive"].contains(n)
        case let .op(o): return o == "(" || o == "[" || o == "{"
        }
    }

    private mutating func primary() throws(JinjaError) -> Expr {
        guard let tok = next() else { throw err("unexpected end of expression") }
        switch tok {
        case var .string(s):
            while case let .string(more)? = peek { t += 1; s += more }   // adjacent literals concatenate
            return .literal(.string(s))
        case let .int(i): return .literal(.int(i))
        case let .float(d): return .literal(.double(d))
        case let .name(n):
            switch n {
            case "true", "True": return .literal(.bool(true))
            case "false", "False": return .literal(.bool(false))
            case "none", "None": return .literal(.none)
            default: return .name(n)
            }
        case .op("("):
            if accept(.op(")")) { return .tuple([]) }
            let e = try expr()
            if accept(.op(",")) {
                var xs = [e]
                while !accept(.op(")")) {
                    xs.append(try expr())
                    if !accept(.op(",")) { guard accept(.op(")")) else { throw err("expected ')'") }; break }
                }
                return .tuple(xs)
            }
            guard accept(.op(")")) else { throw err("expected ')'") }
            return e
        case .op("["):
            var xs: [Expr] = []
            while !accept(.op("]")) {
                xs.append(try expr())
                if !accept(.op(",")) { guard accept(.op("]")) else { throw err("expected ']'") }; break }
            }
            return .list(xs)
        case .op("{"):
            var kv: [(Expr, Expr)] = []
            while !accept(.op("}")) {
                let k = try expr()
                guard accept(.op(":")) else { throw err("expected ':' in a dict") }
                kv.append((k, try expr()))
                if !accept(.op(",")) { guard accept(.op("}")) else { throw err("expected '}'") }; break }
            }
            return .dict(kv)
        default: throw err("unexpected \(tok)")
        }
    }

    private mutating func postfix(_ base: Expr) throws(JinjaError) -> Expr {
        var e = base
        while true {
            if accept(.op(".")) {
                switch next() {
                case let .name(n)?: e = .attr(e, n)
                case let .int(i)?: e = .item(e, .literal(.int(i)))
                default: throw err("expected an attribute name")
                }
            } else if accept(.op("[")) {
                var parts: [Expr?] = [nil]
                var isSlice = false
                while !accept(.op("]")) {
                    if accept(.op(":")) { isSlice = true; parts.append(nil); continue }
                    parts[parts.count - 1] = try expr()
                }
                if isSlice {
                    while parts.count < 3 { parts.append(nil) }
                    e = .slice(e, parts[0], parts[1], parts[2])
                } else {
                    guard let k = parts[0] else { throw err("empty subscript") }
                    e = .item(e, k)
                }
            } else if accept(.op("(")) {
                let (args, kw) = try callArgs()
                e = .call(e, args, kw)
            } else {
                return e
            }
        }
    }

    /// Arguments after '(' up to and including ')'.
    private mutating func callArgs() throws(JinjaError) -> ([Expr], [(String, Expr)]) {
        var args: [Expr] = [], kw: [(String, Expr)] = []
        while !accept(.op(")")) {
            if case let .name(n)? = peek, t + 1 < toks.count, toks[t + 1] == .op("=") {
                t += 2
                kw.append((n, try expr()))
            } else {
                args.append(try expr())
            }
            if !accept(.op(",")) { guard accept(.op(")")) else { throw err("expected ')' or ','") }; break }
        }
        return (args, kw)
    }

    // MARK: tokens

    private var peek: Tok? { t < toks.count ? toks[t] : nil }
    private var atEnd: Bool { t >= toks.count }
    private mutating func next() -> Tok? { defer { t += 1 }; return peek }
    private mutating func accept(_ tok: Tok) -> Bool {
        guard peek == tok else { return false }
        t += 1
        return true
    }
    private func expectEnd() throws(JinjaError) {
        guard atEnd else { throw err("unexpected \(toks[t]) in tag") }
    }
    private func err(_ m: String) -> JinjaError { JinjaError(.syntax, "template syntax error, line \(line): \(m)") }
}
