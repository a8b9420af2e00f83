// JSON Schema -> grammar. The grammar generates compact JSON (no whitespace between tokens, as OpenAI's
// strict mode writes it) that validates against the schema; what cannot be enforced is refused with an
// error naming the keyword, never ignored. Objects: the declared properties in the schema's order,
// required ones always, optional ones may be left out; no undeclared keys are generated when
// `properties` is given (any additionalProperties schema then only matters for keys we never write).
// Without `properties`, keys are any strings and values follow additionalProperties. `oneOf` is
// accepted when its alternatives cannot overlap (different types, or a required property pinned to
// different values: the usual tagged unions), so generating any one of them matches exactly one.

public enum JSONSchema {
    /// Compiles `schema` (a JSON Schema, draft 2020-12 keywords and the common older spellings).
    public static func compile(_ schema: JSON, maxElements: Int = 200_000) throws(GrammarError) -> Grammar {
        var c = SchemaCompiler(root: schema)
        c.b.maxElements = maxElements
        let r = try c.compile(schema, path: "#", depth: 0)
        return try c.b.build(root: r)
    }

    /// A grammar for any JSON object (response_format json_object).
    public static func anyObject() -> Grammar {
        var c = SchemaCompiler(root: .object([]))
        // Cannot fail: fixed rules.
        let r = try! c.json.object(&c.b)
        return try! c.b.build(root: r)
    }

    /// A grammar for a fixed sequence of parts: literal text and JSON values per schema (tool calls).
    public static func sequence(_ parts: [SequencePart], maxElements: Int = 200_000) throws(GrammarError) -> Grammar {
        var c = SchemaCompiler(root: .object([]))
        c.b.maxElements = maxElements
        let r = try c.sequence(parts)
        return try c.b.build(root: r)
    }
}

/// A piece of a sequence grammar.
public indirect enum SequencePart: Sendable {
    case literal(String)
    /// A JSON value valid against the schema (its `$ref`s resolve within it).
    case value(JSON)
    /// One of several sequences.
    case choice([[SequencePart]])
    /// A sequence repeated min...max times with a separator between repetitions.
    case repeated([SequencePart], separator: String, min: Int, max: Int?)
}

/// Reusable JSON rules (created on first use).
struct JSONRules {
    private var cache: [String: Int] = [:]

    static let hex = CharClass(ranges: [0x30...0x39, 0x41...0x46, 0x61...0x66])
    /// Characters a JSON string holds unescaped.
    static let plain = CharClass.any.subtracting(CharClass(ranges: [0...0x1F])).subtracting(CharClass("\"\\"))

    func get(_ key: String) -> Int? { cache[key] }
    mutating func put(_ key: String, _ r: Int) -> Int { cache[key] = r; return r }

    mutating func chars(_ c: CharClass, _ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        var key = "c:\(c.lo),\(c.hi)"
        for r in c.ranges { key += ",\(r.lowerBound)-\(r.upperBound)" }
        if let r = get(key) { return r }
        return put(key, try b.rule([[.chars(c)]]))
    }

    mutating func digit(_ b: inout GrammarBuilder) throws(GrammarError) -> Int { try chars(CharClass(ranges: [0x30...0x39]), &b) }

    /// One character of a JSON string, escapes included (\uXXXX without surrogates: characters beyond
    /// the BMP are written as UTF-8).
    mutating func stringChar(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = get("char") { return r }
        // Two alternatives (a plain character, or a backslash and the rest of an escape): a string's
        // inner state is then three stacks, which is what token masks walk most.
        let h = Symbol.chars(Self.hex), u = Symbol.chars(CharClass("u"))
        let escape = try b.rule([
            [.chars(CharClass("\"\\/bfnrt"))],
            [u, .chars(Self.hex.subtracting(CharClass("dD"))), h, h, h],
            [u, .chars(CharClass("dD")), .chars(CharClass("01234567")), h, h],
        ])
        return put("char", try b.rule([[.chars(Self.plain)], [.chars(CharClass("\\")), .rule(escape)]]))
    }

    mutating func string(_ b: inout GrammarBuilder, min: Int = 0, max: Int? = nil) throws(GrammarError) -> Int {
        let key = "str:\(min):\(max ?? -1)"
        if let r = get(key) { return r }
        let c = try stringChar(&b)
        return put(key, try b.rule([[.chars(CharClass("\"")), .repeated(c, min: min, max: max), .chars(CharClass("\""))]]))
    }

    /// How many digits a generated number's parts may have: an integer part (and an unbounded integer)
    /// of at most 16 digits (what an int64 or a double holds exactly, near JavaScript's 2^53), a
    /// fraction of at most 16 (past a double's precision), an exponent of at most 3 (a double's range).
    /// Unbounded, a model that keeps choosing digits never ends its answer, and a request whose
    /// `max_tokens` is the context runs until the context is full.
    static let maxIntegerDigits = 16, maxFractionDigits = 16, maxExponentDigits = 3

    /// 1 to `max` digits.
    mutating func digits(_ b: inout GrammarBuilder, max: Int) throws(GrammarError) -> Int {
        if let r = get("digits:\(max)") { return r }
        let d = try digit(&b)
        return put("digits:\(max)", try b.rule([[.repeated(d, min: 1, max: max)]]))
    }

    /// 0 | [1-9][0-9]{0,15}
    mutating func natural(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = get("nat") { return r }
        let d = try digit(&b)
        return put("nat", try b.rule([[.chars(CharClass("0"))],
                                      [.chars(CharClass(ranges: [0x31...0x39])), .repeated(d, min: 0, max: Self.maxIntegerDigits - 1)]]))
    }

    mutating func fraction(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = get("frac") { return r }
        let ds = try digits(&b, max: Self.maxFractionDigits)
        return put("frac", try b.rule([[.chars(CharClass(".")), .rule(ds)]]))
    }

    mutating func integer(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = get("int") { return r }
        let n = try natural(&b)
        let minus = try chars(CharClass("-"), &b)
        return put("int", try b.rule([[.repeated(minus, min: 0, max: 1), .rule(n)]]))
    }

    mutating func number(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = get("num") { return r }
        let i = try integer(&b), f = try fraction(&b), ds = try digits(&b, max: Self.maxExponentDigits)
        let sign = try chars(CharClass("+-"), &b)
        let e = try b.rule([[.chars(CharClass("eE")), .repeated(sign, min: 0, max: 1), .rule(ds)]])
        return put("num", try b.rule([[.rule(i), .repeated(f, min: 0, max: 1), .repeated(e, min: 0, max: 1)]]))
    }

    mutating func value(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = cache["value"] { return r }
        let v = b.declare()
        cache["value"] = v
        let s = try string(&b), n = try number(&b)
        let t = try b.literal("true"), f = try b.literal("false"), z = try b.literal("null")
        let o = try object(&b), a = try array(&b)
        try b.define(v, [[.rule(o)], [.rule(a)], [.rule(s)], [.rule(n)], [.rule(t)], [.rule(f)], [.rule(z)]])
        return v
    }

    /// Any JSON object.
    mutating func object(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = cache["object"] { return r }
        let o = b.declare()
        cache["object"] = o
        let v = try value(&b)
        try b.define(o, try map(&b, value: v).alternatives)
        return o
    }

    /// `{` (string `:` value (`,` string `:` value)*)? `}` with values of rule `value`.
    mutating func map(_ b: inout GrammarBuilder, value v: Int, min: Int = 0) throws(GrammarError) -> (rule: Int, alternatives: [[Symbol]]) {
        let s = try string(&b)
        let member = try b.rule([[.rule(s), .chars(CharClass(":")), .rule(v)]])
        let more = try b.rule([[.chars(CharClass(",")), .rule(member)]])
        let open = Symbol.chars(CharClass("{")), close = Symbol.chars(CharClass("}"))
        var alts: [[Symbol]] = [[open, .rule(member), .repeated(more, min: Swift.max(min - 1, 0), max: nil), close]]
        if min == 0 { alts.append([open, close]) }
        return (try b.rule(alts), alts)
    }

    /// Any JSON array.
    mutating func array(_ b: inout GrammarBuilder) throws(GrammarError) -> Int {
        if let r = cache["array"] { return r }
        let a = b.declare()
        cache["array"] = a
        let v = try value(&b)
        let more = try b.rule([[.chars(CharClass(",")), .rule(v)]])
        try b.define(a, [[.chars(CharClass("[")), .chars(CharClass("]"))],
                         [.chars(CharClass("[")), .rule(v), .repeated(more, min: 0, max: nil), .chars(CharClass("]"))]])
        return a
    }
}

struct SchemaCompiler {
    var b = GrammarBuilder()
    var json = JSONRules()
    /// The document `$ref`s resolve in (replaced while compiling a `.value` part of a sequence).
    var root: JSON
    private var refs: [String: Int] = [:]

    init(root: JSON) { self.root = root }

    static let annotations: Set<String> = ["title", "description", "default", "examples", "$schema", "$id", "$comment",
                                           "deprecated", "readOnly", "writeOnly", "$defs", "definitions", "$anchor",
                                           "contentEncoding", "contentMediaType", "strict", "discriminator"]
    static let objectKeys: Set<String> = ["properties", "required", "additionalProperties"]
    static let arrayKeys: Set<String> = ["items", "prefixItems", "minItems", "maxItems", "uniqueItems"]
    static let stringKeys: Set<String> = ["minLength", "maxLength", "pattern", "format"]
    static let numberKeys: Set<String> = ["minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"]
    static let other: Set<String> = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "$ref"]
    static let known = annotations.union(objectKeys).union(arrayKeys).union(stringKeys).union(numberKeys).union(other)

    func fail(_ keyword: String, _ path: String, _ m: String) -> GrammarError {
        GrammarError(keyword, "\(m) (at \(path))")
    }

    mutating func sequence(_ parts: [SequencePart]) throws(GrammarError) -> Int {
        var syms: [Symbol] = []
        for p in parts {
            switch p {
            case let .literal(t): if !t.isEmpty { syms.append(.rule(try b.literal(t))) }
            case let .value(schema):
                let saved = root, savedRefs = refs
                root = schema; refs = [:]
                syms.append(.rule(try compile(schema, path: "#", depth: 0)))
                root = saved; refs = savedRefs
            case let .choice(options):
                var alts: [[Symbol]] = []
                for o in options { alts.append([.rule(try sequence(o))]) }
                syms.append(.rule(try b.rule(alts)))
            case let .repeated(body, sep, mn, mx):
                let one = try sequence(body)
                let more = try b.rule([[.rule(try b.literal(sep)), .rule(one)]])
                let list = try b.rule([[.rule(one), .repeated(more, min: max(mn - 1, 0), max: mx.map { $0 - 1 })]])
                syms.append(.repeated(list, min: mn == 0 ? 0 : 1, max: 1))
            }
        }
        return try b.rule([syms])
    }

    mutating func compile(_ s: JSON, path: String, depth: Int) throws(GrammarError) -> Int {
        guard depth < 64 else { throw fail("schema", path, "the schema nests more than 64 levels") }
        if case let .bool(v) = s {
            guard v else { throw fail("schema", path, "a 'false' schema matches nothing") }
            return try json.value(&b)
        }
        guard case let .object(members) = s else { throw fail("schema", path, "a schema must be an object or a boolean") }
        for (k, _) in members where !Self.known.contains(k) {
            throw fail(k, path, "'\(k)' is not supported in structured-output schemas")
        }
        let keys = Set(members.map(\.0))
        let validating = keys.subtracting(Self.annotations)

        if let ref = s["$ref"] {
            guard validating == ["$ref"] else {
                throw fail("$ref", path, "'$ref' combined with \(validating.subtracting(["$ref"]).sorted().joined(separator: ", ")) is not supported")
            }
            return try reference(ref, path: path, depth: depth)
        }
        if let all = s["allOf"] {
            guard let list = all.arrayValue, list.count == 1, validating == ["allOf"] else {
                throw fail("allOf", path, "'allOf' is supported only with one subschema and no sibling keywords")
            }
            return try compile(list[0], path: path + "/allOf/0", depth: depth + 1)
        }
        for key in ["anyOf", "oneOf"] {
            guard let any = s[key] else { continue }
            guard let list = any.arrayValue, !list.isEmpty else { throw fail(key, path, "'\(key)' must be a non-empty array") }
            guard validating == [key] else {
                throw fail(key, path, "'\(key)' combined with \(validating.subtracting([key]).sorted().joined(separator: ", ")) is not supported; move those keywords into each alternative")
            }
            if key == "oneOf" && list.count > 1 {
                for i in 0..<list.count { for j in (i + 1)..<list.count where !disjoint(list[i], list[j]) {
                    throw fail("oneOf", path, "'oneOf' alternatives \(i) and \(j) may both match one value (a valid answer must match exactly one); give them different types or a required property with different const/enum values, or use anyOf")
                } }
            }
            var alts: [[Symbol]] = []
            for (i, sub) in list.enumerated() { alts.append([.rule(try compile(sub, path: "\(path)/\(key)/\(i)", depth: depth + 1))]) }
            return try b.rule(alts)
        }
        let types = try typeList(s, path: path)
        if s["enum"] != nil || s["const"] != nil {
            var values: [JSON]
            if let c = s["const"] { values = [c] } else {
                guard let e = s["enum"]?.arrayValue, !e.isEmpty else { throw fail("enum", path, "'enum' must be a non-empty array") }
                values = e
            }
            let extra = validating.subtracting(["enum", "const", "type"])
            guard extra.isEmpty else {
                throw fail(extra.sorted()[0], path, "'\(extra.sorted()[0])' beside 'enum'/'const' is not supported")
            }
            if let types { values = values.filter { v in types.contains { Self.hasType(v, $0) } } }
            guard !values.isEmpty else { throw fail("enum", path, "no 'enum' value has the schema's type") }
            return try b.literalSet(values.map(\.compact))
        }
        var chosen: [String]
        if let types { chosen = types } else {
            var fams: [String] = []
            if !validating.isDisjoint(with: Self.objectKeys) { fams.append("object") }
            if !validating.isDisjoint(with: Self.arrayKeys) { fams.append("array") }
            if !validating.isDisjoint(with: Self.stringKeys) { fams.append("string") }
            if !validating.isDisjoint(with: Self.numberKeys) { fams.append("number") }
            if fams.isEmpty { return try json.value(&b) }
            guard fams.count == 1 else { throw fail("type", path, "give 'type': the schema has keywords of several types (\(fams.joined(separator: ", ")))") }
            chosen = fams
        }
        var alts: [[Symbol]] = []
        for t in chosen { alts.append([.rule(try typed(t, s, path: path, depth: depth))]) }
        return alts.count == 1 ? { if case let .rule(r) = alts[0][0] { return r }; return 0 }() : try b.rule(alts)
    }

    /// The JSON types a schema's values can have (nil: any), following local `$ref`s.
    func types(_ s: JSON, depth: Int = 0) -> Set<String>? {
        guard depth < 16 else { return nil }
        if let r = s["$ref"]?.stringValue, let t = resolve(r) { return types(t, depth: depth + 1) }
        if let v = s["const"].map({ [$0] }) ?? s["enum"]?.arrayValue {
            return Set(v.map { v -> String in
                switch v {
                case .null: "null"
                case .bool: "boolean"
                case .string: "string"
                case .array: "array"
                case .object: "object"
                case .number: Self.hasType(v, "integer") ? "integer" : "number"
                }
            })
        }
        guard let t = s["type"] else { return nil }
        var names = Set(t.stringValue.map { [$0] } ?? (t.arrayValue ?? []).compactMap(\.stringValue))
        if names.contains("number") { names.insert("integer") }
        return names
    }

    /// The literal values a property may take when the schema pins them (const / enum), else nil.
    func pinned(_ s: JSON, depth: Int = 0) -> [JSON]? {
        guard depth < 16 else { return nil }
        if let r = s["$ref"]?.stringValue, let t = resolve(r) { return pinned(t, depth: depth + 1) }
        return s["const"].map { [$0] } ?? s["enum"]?.arrayValue
    }

    func resolve(_ r: String) -> JSON? {
        guard r == "#" || r.hasPrefix("#/") else { return nil }
        var target = root
        if r != "#" {
            for raw in r.dropFirst(2).split(separator: "/") {
                guard let next = target[Self.unescapePointer(String(raw))] else { return nil }
                target = next
            }
        }
        return target
    }

    /// Whether no value can match both schemas, as far as can be told simply: disjoint types, or
    /// objects with a required property pinned to disjoint values (a tagged union).
    func disjoint(_ a: JSON, _ b: JSON) -> Bool {
        var a = a, b = b
        if let r = a["$ref"]?.stringValue, let t = resolve(r) { a = t }
        if let r = b["$ref"]?.stringValue, let t = resolve(r) { b = t }
        if let ta = types(a), let tb = types(b), ta.isDisjoint(with: tb) { return true }
        if let va = pinned(a), let vb = pinned(b), !va.contains(where: { x in vb.contains(x) }) { return true }
        let ra = Set((a["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        let rb = Set((b["required"]?.arrayValue ?? []).compactMap(\.stringValue))
        for k in ra.intersection(rb) {
            if let pa = a["properties"]?[k], let pb = b["properties"]?[k], let va = pinned(pa), let vb = pinned(pb),
               !va.contains(where: { x in vb.contains(x) }) { return true }
        }
        return false
    }

    static func hasType(_ v: JSON, _ t: String) -> Bool {
        switch (v, t) {
        case (.null, "null"), (.bool, "boolean"), (.string, "string"), (.array, "array"), (.object, "object"), (.number, "number"): true
        case let (.number(n), "integer"): !n.contains(".") && !n.contains("e") && !n.contains("E") || JSON.number(n).intValue != nil
        default: false
        }
    }

    func typeList(_ s: JSON, path: String) throws(GrammarError) -> [String]? {
        guard let t = s["type"] else { return nil }
        let names: [String]
        if let one = t.stringValue { names = [one] } else if let list = t.arrayValue {
            names = list.compactMap(\.stringValue)
            guard names.count == list.count, !names.isEmpty else { throw fail("type", path, "'type' must be a string or an array of strings") }
        } else { throw fail("type", path, "'type' must be a string or an array of strings") }
        for n in names where !["null", "boolean", "object", "array", "number", "integer", "string"].contains(n) {
            throw fail("type", path, "unknown type '\(n)'")
        }
        return names
    }

    mutating func reference(_ ref: JSON, path: String, depth: Int) throws(GrammarError) -> Int {
        guard let r = ref.stringValue else { throw fail("$ref", path, "'$ref' must be a string") }
        if let rule = refs[r] { return rule }
        guard r == "#" || r.hasPrefix("#/") else { throw fail("$ref", path, "only local references (#/$defs/...) are supported, not '\(r)'") }
        var target = root
        if r != "#" {
            for raw in r.dropFirst(2).split(separator: "/", omittingEmptySubsequences: false) {
                let part = Self.unescapePointer(String(raw))
                if let next = target[part] { target = next } else if let a = target.arrayValue, let i = Int(part), a.indices.contains(i) {
                    target = a[i]
                } else { throw fail("$ref", path, "'\(r)' does not resolve") }
            }
        }
        let rule = b.declare()
        refs[r] = rule
        let body = try compile(target, path: r, depth: depth + 1)
        try b.define(rule, [[.rule(body)]])
        return rule
    }

    /// A JSON Pointer token: ~1 is '/', ~0 is '~'.
    static func unescapePointer(_ s: String) -> String {
        var out = ""
        var it = s.makeIterator()
        while let c = it.next() {
            if c == "~", let n = it.next() { out.append(n == "1" ? "/" : n == "0" ? "~" : n) } else { out.append(c) }
        }
        return out
    }

    mutating func typed(_ t: String, _ s: JSON, path: String, depth: Int) throws(GrammarError) -> Int {
        switch t {
        case "null": return try b.literal("null")
        case "boolean": return try b.rule([[.rule(try b.literal("true"))], [.rule(try b.literal("false"))]])
        case "string": return try string(s, path: path)
        case "integer": return try integer(s, path: path)
        case "number": return try number(s, path: path)
        case "array": return try array(s, path: path, depth: depth)
        default: return try object(s, path: path, depth: depth)
        }
    }

    func count(_ s: JSON, _ key: String, path: String) throws(GrammarError) -> Int? {
        guard let v = s[key] else { return nil }
        guard let n = v.intValue, n >= 0 else { throw fail(key, path, "'\(key)' must be a non-negative integer") }
        return n
    }

    // MARK: strings

    mutating func string(_ s: JSON, path: String) throws(GrammarError) -> Int {
        let mn = try count(s, "minLength", path: path) ?? 0
        let mx = try count(s, "maxLength", path: path)
        if let mx, mx < mn { throw fail("maxLength", path, "'maxLength' is below 'minLength'") }
        if let mx, mx > 100_000 { throw fail("maxLength", path, "'maxLength' above 100000 is not supported") }
        let limited = s["minLength"] != nil || s["maxLength"] != nil
        if let f = s["format"] {
            guard !limited, s["pattern"] == nil else { throw fail("format", path, "'format' with 'pattern' or lengths is not supported") }
            guard let name = f.stringValue else { throw fail("format", path, "'format' must be a string") }
            return try format(name, path: path)
        }
        if let p = s["pattern"] {
            guard !limited else { throw fail("pattern", path, "'pattern' with 'minLength'/'maxLength' is not supported") }
            guard let text = p.stringValue else { throw fail("pattern", path, "'pattern' must be a string") }
            let (node, start, end) = try RegexParser.parse(text)
            var body: [Symbol] = []
            let any = try json.stringChar(&b)
            if !start { body.append(.repeated(any, min: 0, max: nil)) }
            body.append(.rule(try regex(node)))
            if !end { body.append(.repeated(any, min: 0, max: nil)) }
            return try b.rule([[.chars(CharClass("\""))] + body + [.chars(CharClass("\""))]])
        }
        return try json.string(&b, min: mn, max: mx)
    }

    /// A regular expression's language as JSON string content.
    mutating func regex(_ n: RegexNode) throws(GrammarError) -> Int {
        switch n {
        case let .chars(c): return try encoded(c)
        case let .seq(items):
            var syms: [Symbol] = []
            for x in items {
                if case let .rep(inner, mn, mx) = x { syms.append(.repeated(try regex(inner), min: mn, max: mx)) } else { syms.append(.rule(try regex(x))) }
            }
            return try b.rule([syms])
        case let .alt(xs):
            var alts: [[Symbol]] = []
            for x in xs { alts.append([.rule(try regex(x))]) }
            return try b.rule(alts)
        case let .rep(inner, mn, mx):
            return try b.rule([[.repeated(try regex(inner), min: mn, max: mx)]])
        }
    }

    /// A class of characters as they are written inside a JSON string: plain ones as themselves, `"` and
    /// `\` and \n \r \t \b \f escaped; other control characters are not generated.
    mutating func encoded(_ c: CharClass) throws(GrammarError) -> Int {
        var alts: [[Symbol]] = []
        let plain = c.subtracting(CharClass(ranges: [0...0x1F])).subtracting(CharClass("\"\\"))
        if !plain.isEmpty { alts.append([.chars(plain)]) }
        for (ch, esc) in [("\"", "\""), ("\\", "\\"), ("\n", "n"), ("\r", "r"), ("\t", "t"), ("\u{08}", "b"), ("\u{0C}", "f")]
        where c.contains(ch.unicodeScalars.first!.value) {
            alts.append([.chars(CharClass("\\")), .chars(CharClass(esc))])
        }
        guard !alts.isEmpty else { throw GrammarError("pattern", "pattern: a character class with only control characters cannot be generated") }
        let key = "enc:\(alts)"
        if let r = json.get(key) { return r }
        return json.put(key, try b.rule(alts))
    }

    mutating func format(_ name: String, path: String) throws(GrammarError) -> Int {
        let d = try json.digit(&b)
        func lit(_ t: String) -> [Symbol] { t.unicodeScalars.map { .chars(CharClass(String($0))) } }
        func cls(_ t: String) -> Symbol { .chars(CharClass(t)) }
        let q = cls("\"")
        switch name {
        case "date", "time", "date-time":
            let date = try b.rule([[.repeated(d, min: 4, max: 4)] + lit("-") + [.rule(try b.rule([[cls("0"), cls("123456789")], [cls("1"), cls("012")]]))]
                                    + lit("-") + [.rule(try b.rule([[cls("0"), cls("123456789")], [cls("12"), .rule(d)], [cls("3"), cls("01")]]))]])
            let hour = try b.rule([[cls("01"), .rule(d)], [cls("2"), cls("0123")]])
            let min60 = try b.rule([[cls("012345"), .rule(d)]])
            let frac = try b.rule([lit(".") + [.repeated(d, min: 1, max: 9)]])
            let zone = try b.rule([lit("Z"), [cls("+-"), .rule(hour)] + lit(":") + [.rule(min60)]])
            let time = try b.rule([[.rule(hour)] + lit(":") + [.rule(min60)] + lit(":") + [.rule(min60), .repeated(frac, min: 0, max: 1), .rule(zone)]])
            let body: [Symbol] = name == "date" ? [.rule(date)] : name == "time" ? [.rule(time)] : [.rule(date)] + lit("T") + [.rule(time)]
            return try b.rule([[q] + body + [q]])
        case "uuid":
            let h = try b.rule([[.chars(JSONRules.hex)]])
            var body: [Symbol] = []
            for (i, n) in [8, 4, 4, 4, 12].enumerated() {
                if i > 0 { body += lit("-") }
                body.append(.repeated(h, min: n, max: n))
            }
            return try b.rule([[q] + body + [q]])
        case "email":
            let local = try b.rule([[.chars(CharClass(ranges: [0x41...0x5A, 0x61...0x7A, 0x30...0x39]).union(CharClass("._%+-")))]])
            let label = try b.rule([[.chars(CharClass(ranges: [0x41...0x5A, 0x61...0x7A, 0x30...0x39]).union(CharClass("-")))]])
            let dotLabel = try b.rule([lit(".") + [.repeated(label, min: 1, max: 63)]])
            return try b.rule([[q, .repeated(local, min: 1, max: 64)] + lit("@") + [.repeated(label, min: 1, max: 63), .repeated(dotLabel, min: 1, max: 8), q]])
        default:
            throw fail("format", path, "format '\(name)' is not supported (supported: date, time, date-time, uuid, email)")
        }
    }

    // MARK: numbers

    /// Bounds from minimum / maximum / exclusiveMinimum / exclusiveMaximum (draft-4 boolean exclusives too).
    func bounds(_ s: JSON, path: String) throws(GrammarError) -> (lo: Double?, loExclusive: Bool, hi: Double?, hiExclusive: Bool) {
        func num(_ k: String) throws(GrammarError) -> Double? {
            guard let v = s[k] else { return nil }
            if case .bool = v, k.hasPrefix("exclusive") { return nil }
            guard let d = v.doubleValue, d.isFinite else { throw fail(k, path, "'\(k)' must be a number") }
            return d
        }
        var lo = try num("minimum"), hi = try num("maximum")
        var loX = s["exclusiveMinimum"]?.boolValue ?? false, hiX = s["exclusiveMaximum"]?.boolValue ?? false
        if let x = try num("exclusiveMinimum"), lo == nil || x >= lo! { lo = x; loX = true }
        if let x = try num("exclusiveMaximum"), hi == nil || x <= hi! { hi = x; hiX = true }
        return (lo, loX, hi, hiX)
    }

    mutating func integer(_ s: JSON, path: String) throws(GrammarError) -> Int {
        let bd = try bounds(s, path: path)
        guard bd.lo != nil || bd.hi != nil else { return try json.integer(&b) }
        let limit = 9.0e15
        var lo: Int? = nil, hi: Int? = nil
        if let l = bd.lo {
            guard abs(l) < limit else { throw fail("minimum", path, "integer bounds beyond 9e15 are not supported") }
            let c = l.rounded(.up)
            lo = Int(c) + (bd.loExclusive && c == l ? 1 : 0)
        }
        if let h = bd.hi {
            guard abs(h) < limit else { throw fail("maximum", path, "integer bounds beyond 9e15 are not supported") }
            let f = h.rounded(.down)
            hi = Int(f) - (bd.hiExclusive && f == h ? 1 : 0)
        }
        if let lo, let hi, lo > hi { throw fail("minimum", path, "no integer lies between 'minimum' and 'maximum'") }
        return try intRange(lo, hi)
    }

    /// Integers in lo...hi (nil: unbounded) in canonical form.
    mutating func intRange(_ lo: Int?, _ hi: Int?) throws(GrammarError) -> Int {
        var alts: [[Symbol]] = []
        if lo == nil || lo! < 0 {
            let a = -min(hi ?? -1, -1), bb: Int? = lo.map { -$0 }
            if bb == nil || a <= bb! {
                alts.append([.chars(CharClass("-")), .rule(try natRange(a, bb))])
            }
        }
        if hi == nil || hi! >= 0 {
            alts.append([.rule(try natRange(max(lo ?? 0, 0), hi))])
        }
        return try b.rule(alts)
    }

    /// Non-negative integers in lo...hi (hi nil: unbounded), without leading zeros.
    mutating func natRange(_ lo: Int, _ hi: Int?) throws(GrammarError) -> Int {
        let d = try json.digit(&b)
        let los = Array(String(lo).utf8).map { $0 - 0x30 }
        var alts: [[Symbol]] = []
        let top = hi.map { String($0).count } ?? los.count
        for n in los.count...max(top, los.count) {
            let a: [UInt8] = n == los.count ? los : [1] + [UInt8](repeating: 0, count: n - 1)
            let z: [UInt8] = hi != nil && n == top ? Array(String(hi!).utf8).map { $0 - 0x30 } : [UInt8](repeating: 9, count: n)
            if a.lexicographicallyPrecedes(z) || a == z { alts += digitRange(a, z, d) }
        }
        if hi == nil, los.count < JSONRules.maxIntegerDigits {   // longer than lo: up to the digits allowed
            alts.append([.chars(CharClass(ranges: [0x31...0x39])), .repeated(d, min: los.count, max: JSONRules.maxIntegerDigits - 1)])
        }
        return try b.rule(alts)
    }

    /// Digit strings of one length between a and z (inclusive), as alternatives.
    func digitRange(_ a: [UInt8], _ z: [UInt8], _ d: Int) -> [[Symbol]] {
        func cls(_ x: UInt8, _ y: UInt8) -> Symbol { .chars(CharClass(ranges: [UInt32(x) + 0x30...UInt32(y) + 0x30])) }
        let n = a.count
        if n == 1 { return [[cls(a[0], z[0])]] }
        if a[0] == z[0] { return digitRange(Array(a.dropFirst()), Array(z.dropFirst()), d).map { [cls(a[0], a[0])] + $0 } }
        var alts: [[Symbol]] = []
        var midLo = a[0], midHi = z[0]
        let restA = Array(a.dropFirst()), restZ = Array(z.dropFirst())
        if restA.contains(where: { $0 != 0 }) {
            alts += digitRange(restA, [UInt8](repeating: 9, count: n - 1), d).map { [cls(a[0], a[0])] + $0 }
            midLo += 1
        }
        if restZ.contains(where: { $0 != 9 }) {
            alts += digitRange([UInt8](repeating: 0, count: n - 1), restZ, d).map { [cls(z[0], z[0])] + $0 }
            midHi -= 1
        }
        if midLo <= midHi { alts.append([cls(midLo, midHi), .repeated(d, min: n - 1, max: n - 1)]) }
        return alts
    }

    mutating func number(_ s: JSON, path: String) throws(GrammarError) -> Int {
        let bd = try bounds(s, path: path)
        guard bd.lo != nil || bd.hi != nil else { return try json.number(&b) }
        for (v, k) in [(bd.lo, bd.loExclusive ? "exclusiveMinimum" : "minimum"), (bd.hi, bd.hiExclusive ? "exclusiveMaximum" : "maximum")] {
            if let v, v.rounded() != v || abs(v) >= 9e15 {
                throw fail(k, path, "'\(k)' on a number is supported only for integer values (use type integer, or an integer bound)")
            }
        }
        if let lo = bd.lo, lo < 0 {
            throw fail(bd.loExclusive ? "exclusiveMinimum" : "minimum", path, "a negative lower bound on a number is not supported (use type integer)")
        }
        let frac = try json.fraction(&b)
        let d = try json.digit(&b)
        var alts: [[Symbol]] = []
        let lo = bd.lo.map { Int($0) }, hi = bd.hi.map { Int($0) }
        // Integer part in [lo', hi - 1] with any fraction.
        var first = lo.map { bd.loExclusive ? $0 + 1 : $0 }
        let last = hi.map { $0 - 1 }
        if lo == nil, let hi, hi >= 0 {
            // No lower bound: every negative number (-0.5 included), then integer parts from 0.
            alts.append([.chars(CharClass("-")), .rule(try json.natural(&b)), .repeated(frac, min: 0, max: 1)])
            first = 0
        }
        if first == nil || last == nil || first! <= last! {
            alts.append([.rule(try intRange(first, last)), .repeated(frac, min: 0, max: 1)])
        }
        // Exactly the exclusive lower bound, with a fraction that is not all zeros.
        if let lo, bd.loExclusive, hi == nil || lo < hi! {
            let nz = try json.chars(CharClass("123456789"), &b)
            // (a fraction of at most maxFractionDigits: the nonzero digit among them)
            let f = JSONRules.maxFractionDigits
            let tail = try b.rule((0..<f).map { k in [.repeated(d, min: k, max: k), .rule(nz), .repeated(d, min: 0, max: f - 1 - k)] })
            alts.append([.rule(try natRange(lo, lo)), .chars(CharClass(".")), .rule(tail)])
        }
        // Exactly the inclusive upper bound, with zeros after the point at most.
        if let hi, !bd.hiExclusive, first == nil || first! <= hi {
            let zero = try json.chars(CharClass("0"), &b)
            let zeros = try b.rule([[.chars(CharClass(".")), .repeated(zero, min: 1, max: JSONRules.maxFractionDigits)]])
            alts.append([.rule(try intRange(hi, hi)), .repeated(zeros, min: 0, max: 1)])
        }
        guard !alts.isEmpty else { throw fail("minimum", path, "no number lies between the bounds") }
        return try b.rule(alts)
    }

    // MARK: arrays and objects

    mutating func array(_ s: JSON, path: String, depth: Int) throws(GrammarError) -> Int {
        if let u = s["uniqueItems"], u != .bool(false) { throw fail("uniqueItems", path, "'uniqueItems' is not supported") }
        let mn = try count(s, "minItems", path: path) ?? 0
        let mx = try count(s, "maxItems", path: path)
        if let mx, mx < mn { throw fail("maxItems", path, "'maxItems' is below 'minItems'") }
        guard mn <= 10_000, (mx ?? 0) <= 10_000 else { throw fail("maxItems", path, "item counts above 10000 are not supported") }
        var prefix: [JSON] = []
        var rest: JSON? = .bool(true)
        if let p = s["prefixItems"] {
            guard let list = p.arrayValue else { throw fail("prefixItems", path, "'prefixItems' must be an array") }
            prefix = list
            if let i = s["items"] { rest = i == .bool(false) ? nil : i }
        } else if let i = s["items"] {
            if let list = i.arrayValue {   // draft 4-2019: items as an array is prefixItems
                prefix = list
                rest = .bool(true)
            } else { rest = i == .bool(false) ? nil : i }
        }
        var prefixRules: [Int] = []
        for (k, p) in prefix.enumerated() { prefixRules.append(try compile(p, path: "\(path)/prefixItems/\(k)", depth: depth + 1)) }
        let restRule = try rest.map { (r: JSON) throws(GrammarError) -> Int in try compile(r, path: "\(path)/items", depth: depth + 1) }
        let comma = Symbol.chars(CharClass(","))
        // tail(k): after k items (k >= 1), the rest; built from the end.
        let maxTotal = mx ?? (restRule == nil ? prefix.count : nil)
        if let maxTotal, maxTotal < mn { throw fail("minItems", path, "'minItems' exceeds the number of items 'prefixItems' allows") }
        func restAfter(_ k: Int) throws(GrammarError) -> [Symbol] {
            // Items beyond the prefix: `,` item, between max(mn - k, 0) and maxTotal - k times.
            guard let r = restRule else { return [] }
            let more = try b.rule([[comma, .rule(r)]])
            let lo = max(mn - k, 0)
            let hi = maxTotal.map { $0 - k }
            if let hi, hi <= 0 { return [] }
            return [.repeated(more, min: lo, max: hi)]
        }
        var next: [[Symbol]] = [[]]   // alternatives for what follows item k (k = prefix.count initially)
        if prefix.isEmpty {
            guard let r = restRule else { return try b.rule([[.chars(CharClass("[")), .chars(CharClass("]"))]]) }
            var alts: [[Symbol]] = []
            if mn == 0 { alts.append([.chars(CharClass("[")), .chars(CharClass("]"))]) }
            if maxTotal == nil || maxTotal! >= 1 {
                alts.append([.chars(CharClass("[")), .rule(r)] + (try restAfter(1)) + [.chars(CharClass("]"))])
            }
            return try b.rule(alts)
        }
        // With a prefix: item k (0-based) may be the last one when k + 1 >= mn.
        next = [try restAfter(prefix.count)]
        var k = prefix.count - 1
        var following = try b.rule(next)
        while k >= 1 {
            // After item k-1: either stop (if k >= mn) or `,` item k and what follows it.
            var alts: [[Symbol]] = [[comma, .rule(prefixRules[k]), .rule(following)]]
            if k >= mn { alts.append([]) }
            if let mt = maxTotal, k >= mt { alts = [[]] }
            following = try b.rule(alts)
            k -= 1
        }
        var alts: [[Symbol]] = []
        if mn == 0 { alts.append([.chars(CharClass("[")), .chars(CharClass("]"))]) }
        if maxTotal == nil || maxTotal! >= 1 {
            alts.append([.chars(CharClass("[")), .rule(prefixRules[0]), .rule(following), .chars(CharClass("]"))])
        }
        return try b.rule(alts)
    }

    mutating func object(_ s: JSON, path: String, depth: Int) throws(GrammarError) -> Int {
        var required: [String] = []
        if let r = s["required"] {
            guard let list = r.arrayValue, list.allSatisfy({ $0.stringValue != nil }) else { throw fail("required", path, "'required' must be an array of strings") }
            required = list.compactMap(\.stringValue)
        }
        var props: [(String, JSON)] = []
        if let p = s["properties"] {
            guard let ms = p.objectValue else { throw fail("properties", path, "'properties' must be an object") }
            props = ms
        }
        let additional = s["additionalProperties"] ?? .bool(true)
        if props.isEmpty {
            // Required keys without declared properties take the additionalProperties schema.
            if required.isEmpty {
                if additional == .bool(false) { return try b.literal("{}") }
                let v = try compile(additional, path: path + "/additionalProperties", depth: depth + 1)
                return try json.map(&b, value: v).rule
            }
            guard additional != .bool(false) else { throw fail("required", path, "'required' names keys that 'additionalProperties: false' forbids") }
            props = required.map { ($0, additional) }
        }
        let declared = Set(props.map(\.0))
        for r in required where !declared.contains(r) {
            guard additional != .bool(false) else { throw fail("required", path, "required key '\(r)' is not in 'properties'") }
            props.append((r, additional))
        }
        var valueRules: [Int] = []
        for (k, v) in props {
            valueRules.append(try compile(v, path: "\(path)/properties/\(k)", depth: depth + 1))
        }
        let req = Set(required)
        // rest(i, first): properties i... with `first` meaning nothing has been written yet.
        var restFirst = try b.rule([[]]), restAfter = restFirst
        for i in stride(from: props.count - 1, through: 0, by: -1) {
            let key = try b.literal(JSON.quote(props[i].0) + ":")
            let kv: [Symbol] = [.rule(key), .rule(valueRules[i])]
            let comma = Symbol.chars(CharClass(","))
            let firstAlts: [[Symbol]] = req.contains(props[i].0) ? [kv + [.rule(restAfter)]] : [kv + [.rule(restAfter)], [.rule(restFirst)]]
            let afterAlts: [[Symbol]] = req.contains(props[i].0) ? [[comma] + kv + [.rule(restAfter)]] : [[comma] + kv + [.rule(restAfter)], [.rule(restAfter)]]
            let nf = try b.rule(firstAlts), na = try b.rule(afterAlts)
            restFirst = nf; restAfter = na
        }
        return try b.rule([[.chars(CharClass("{")), .rule(restFirst), .chars(CharClass("}"))]])
    }
}
