import Foundation
import Grammar
import Testing
import Engine
import TestSupport

/// Whether the grammar accepts exactly `text`.
func accepts(_ g: Grammar, _ text: String) -> Bool {
    let m = GrammarMatcher(g)
    for b in text.utf8 where !m.accept([b]) { return false }
    return m.isAccepting
}

func schema(_ text: String) throws -> Grammar { try JSONSchema.compile(try JSON.parse(text)) }

@Test func jsonParsesAndKeepsOrder() throws {
    let v = try JSON.parse(#" {"b": 1, "a": [true, null, "x\u00e9\n"], "c": {"z": -1.5e3}} "#)
    #expect(v.compact == #"{"b":1,"a":[true,null,"xé\n"],"c":{"z":-1.5e3}}"#)
    #expect(throws: JSONParseError.self) { try JSON.parse("[1,]") }
    #expect(throws: JSONParseError.self) { try JSON.parse(String(repeating: "[", count: 200) + String(repeating: "]", count: 200)) }
}

@Test func anyObjectGrammar() {
    let g = JSONSchema.anyObject()
    for ok in [#"{}"#, #"{"a":1}"#, #"{"a":{"b":[1,2,{"c":null}]},"d":"\u00e9\"x"}"#, #"{"k":-0.5e+10}"#, "{\"é\":\"日本\"}"] {
        #expect(accepts(g, ok), "\(ok)")
    }
    for bad in [#"{ }"#, #"[]"#, #"{"a":01}"#, #"{"a":1,}"#, #"{"a":"\ud800"}"#, "{\"a\":\"\u{01}\"}", #"{"a":1}}"#, #"{"a" :1}"#] {
        #expect(!accepts(g, bad), "\(bad)")
    }
}

@Test func objectPropertiesInOrder() throws {
    let g = try schema(#"{"type":"object","properties":{"name":{"type":"string","maxLength":3},"age":{"type":"integer","minimum":0,"maximum":120},"tag":{"enum":["a","b",null]}},"required":["name"],"additionalProperties":false}"#)
    for ok in [#"{"name":"abc"}"#, #"{"name":"","age":120}"#, #"{"name":"x","tag":null}"#, #"{"name":"x","age":7,"tag":"b"}"#] {
        #expect(accepts(g, ok), "\(ok)")
    }
    for bad in [#"{}"#, #"{"age":7,"name":"x"}"#, #"{"name":"abcd"}"#, #"{"name":"x","age":121}"#, #"{"name":"x","age":-1}"#,
                #"{"name":"x","tag":"c"}"#, #"{"name":"x","other":1}"#, #"{"name":"x","age":07}"#] {
        #expect(!accepts(g, bad), "\(bad)")
    }
}

@Test func integerRanges() throws {
    for (lo, hi) in [(7, 1234), (-150, -3), (-5, 5), (0, 0), (10, 99), (99, 100), (-1000, 1000), (123, 123)] {
        let g = try schema(#"{"type":"integer","minimum":\#(lo),"maximum":\#(hi)}"#)
        for v in (lo - 30)...(hi + 30) where accepts(g, String(v)) != (lo...hi).contains(v) { Issue.record("\(lo)...\(hi): \(v) \(accepts(g, String(v)))") }
        #expect(!accepts(g, "-0"))
    }
    let open = try schema(#"{"type":"integer","exclusiveMinimum":5}"#)
    for v in [-10, 0, 5] { #expect(!accepts(open, String(v))) }
    for v in [6, 10, 99, 100, 123_456_789] { #expect(accepts(open, String(v))) }
}

@Test func numberBounds() throws {
    let g = try schema(#"{"type":"number","minimum":0,"maximum":1}"#)
    for ok in ["0", "0.5", "1", "1.0", "1.000", "0.999"] { #expect(accepts(g, ok), "\(ok)") }
    for bad in ["-0.1", "1.01", "2", "1e0", "-0"] { #expect(!accepts(g, bad), "\(bad)") }
    let x = try schema(#"{"type":"number","exclusiveMinimum":2,"exclusiveMaximum":4}"#)
    for ok in ["2.1", "3", "3.99", "2.0001"] { #expect(accepts(x, ok), "\(ok)") }
    for bad in ["2", "2.0", "4", "4.0", "1.9"] { #expect(!accepts(x, bad), "\(bad)") }
}

@Test func arraysAndPrefixItems() throws {
    let g = try schema(#"{"type":"array","items":{"type":"boolean"},"minItems":1,"maxItems":3}"#)
    for ok in ["[true]", "[true,false,true]"] { #expect(accepts(g, ok)) }
    for bad in ["[]", "[true,true,true,true]", "[1]"] { #expect(!accepts(g, bad)) }
    let p = try schema(#"{"type":"array","prefixItems":[{"type":"integer"},{"type":"string"}],"items":false,"minItems":1}"#)
    for ok in ["[1]", #"[1,"a"]"#] { #expect(accepts(p, ok)) }
    for bad in ["[]", #"[1,"a",2]"#, #"["a"]"#] { #expect(!accepts(p, bad)) }
}

@Test func recursionThroughRefs() throws {
    let g = try schema(##"{"$defs":{"node":{"type":"object","properties":{"v":{"type":"integer"},"next":{"anyOf":[{"$ref":"#/$defs/node"},{"type":"null"}]}},"required":["v","next"],"additionalProperties":false}},"$ref":"#/$defs/node"}"##)
    #expect(accepts(g, #"{"v":1,"next":{"v":2,"next":null}}"#))
    #expect(!accepts(g, #"{"v":1,"next":{"v":2}}"#))
    #expect(throws: GrammarError.self) { try schema(##"{"anyOf":[{"$ref":"#"},{"type":"null"}]}"##) }
}

@Test func patternsAndFormats() throws {
    let g = try schema(#"{"type":"string","pattern":"^[A-Z]{2}-\\d{3,4}$"}"#)
    for ok in [#""AB-123""#, #""ZZ-0000""#] { #expect(accepts(g, ok)) }
    for bad in [#""AB-12""#, #""ab-123""#, #""AB-12345""#, #"" AB-123""#] { #expect(!accepts(g, bad)) }
    let search = try schema(#"{"type":"string","pattern":"ab+c"}"#)
    #expect(accepts(search, #""xxabbbcyy""#))
    #expect(!accepts(search, #""xxacyy""#))
    let date = try schema(#"{"type":"string","format":"date-time"}"#)
    #expect(accepts(date, #""2026-12-06T05:38:30Z""#))
    #expect(accepts(date, #""2026-12-06T05:38:30.123+01:00""#))
    #expect(!accepts(date, #""2026-13-06T05:38:30Z""#))
    let uuid = try schema(#"{"type":"string","format":"uuid"}"#)
    #expect(accepts(uuid, #""123e4567-e89b-12d3-a456-426614174000""#))
    #expect(!accepts(uuid, #""123e4567e89b12d3a456426614174000""#))
    let quote = try schema(#"{"type":"string","pattern":"^a\"b\\\\c$"}"#)
    #expect(accepts(quote, #""a\"b\\c""#))
}

@Test func utf8IsCheckedPerByte() throws {
    let g = try schema(#"{"type":"string","maxLength":2}"#)
    #expect(accepts(g, "\"日本\""))
    #expect(!accepts(g, "\"日本語\""))
    let m = GrammarMatcher(g)
    #expect(m.accept([UInt8(ascii: "\"")]))
    #expect(!m.allows([0xC0, 0x80]))         // overlong
    #expect(!m.allows([0xED, 0xA0, 0x80]))   // surrogate
    #expect(m.allows([0xE6]))                // a lead byte alone may continue
    #expect(!m.allows([0xE6, 0x41]))
}

@Test func unsupportedKeywordsAreNamed() throws {
    for (s, k) in [(#"{"type":"object","patternProperties":{}}"#, "patternProperties"), (#"{"not":{}}"#, "not"),
                   (#"{"type":"string","format":"uri"}"#, "format"), (#"{"type":"number","minimum":0.5}"#, "minimum"),
                   (#"{"type":"string","pattern":"(a)\\1"}"#, "pattern"), (#"{"$ref":"http://x/y"}"#, "$ref"),
                   (#"{"type":"string","pattern":"(a*)*"}"#, "pattern"), (#"{"allOf":[{},{}]}"#, "allOf")] {
        do {
            _ = try schema(s)
            Issue.record("accepted \(s)")
        } catch let e as GrammarError {
            #expect(e.keyword == k, "\(s): \(e)")
        }
    }
}

@Test func maskMatchesTokenByTokenCheck() throws {
    // A small vocabulary with multi-byte and partial UTF-8 pieces.
    let pieces: [[UInt8]] = ["{", "}", "\"", "\"a", "a", "b\"", ":", "1", "12", ",", " ", "é", "\u{E6}", "true", "{\"", "\":", "x"]
        .map { Array($0.utf8) } + [[0xE6], [0x97, 0xA5], [0xE6, 0x97], [0xA5], []]
    let trie = TokenTrie(pieces: pieces)
    let g = try schema(#"{"type":"object","properties":{"a":{"type":"string"},"b":{"type":"integer"}},"required":["a"]}"#)
    let c = GrammarConstraint(grammar: g, trie: trie, endTokens: [Int32(pieces.count - 1)])
    for seed in UInt64(1)...8 {  // random walks, the same every run
    let m = GrammarMatcher(g)
    var rng = SeededGenerator(seed: seed)
    for _ in 0..<40 {
        let mask = c.mask(m)
        var allowed: [Int] = []
        for t in pieces.indices {
            let bit = mask[t >> 6] >> UInt64(t & 63) & 1 == 1
            let want = t == pieces.count - 1 ? m.isAccepting : m.allows(pieces[t])
            #expect(bit == want, "token \(t)")
            if bit { allowed.append(t) }
        }
        guard let t = allowed.randomElement(using: &rng), t != pieces.count - 1 else { break }
        #expect(m.accept(pieces[t]))
        if m.isFinished { break }
    }
    }
}


/// Fixtures from scripts/make_schema_fixtures.py: documents labelled by Python's jsonschema (valid and in
/// the canonical compact form), and schemas that must be refused naming a keyword.
@Test func schemaFixturesAgreeWithJsonschema() throws {
    let data = try TestModels.fixture("GrammarTests", "schemas.json")
    let root = try JSON.parse(Array(data), maxDepth: 256)
    let cases = root["cases"]?.arrayValue ?? []
    #expect(cases.count >= 40)
    var checked = 0
    for c in cases {
        let name = c["name"]?.stringValue ?? "?"
        let g: Grammar
        do { g = try JSONSchema.compile(c["schema"]!) } catch { Issue.record("\(name): refused: \(error)"); continue }
        for d in c["documents"]?.arrayValue ?? [] {
            let text = d["text"]!.stringValue!
            let want = d["accept"]!.boolValue!
            if accepts(g, text) != want { Issue.record("\(name): \(text) should be \(want ? "accepted" : "rejected") (\(d["why"]?.stringValue ?? ""))") }
            checked += 1
        }
    }
    #expect(checked > 500)
    for u in root["unsupported"]?.arrayValue ?? [] {
        let name = u["name"]?.stringValue ?? "?"
        #expect(refusal(u["schema"]!) == u["keyword"]?.stringValue, "\(name)")
    }
}

/// The keyword a schema is refused for, nil if it compiles.
func refusal(_ schema: JSON) -> String? {
    do throws(GrammarError) {
        _ = try JSONSchema.compile(schema)
        return nil
    } catch {
        return error.keyword
    }
}

@Test func largeEnumsAreATrie() throws {
    let words = (0..<5000).map { "\"w\($0 * 7919 % 100_003)\"" }
    let g = try schema(#"{"enum":[\#(words.joined(separator: ","))]}"#)
    #expect(accepts(g, words[1234]) && accepts(g, words[0]))
    #expect(!accepts(g, #""w""#) && !accepts(g, #""w1x""#))
}

@Test func pathologicalSchemasAreBounded() throws {
    // Too large for the grammar budget: a 400, not a huge allocation.
    let props = (0..<30_000).map { #""p\#($0)":{"type":"string"}"# }.joined(separator: ",")
    #expect(throws: GrammarError.self) { try JSONSchema.compile(try JSON.parse(#"{"type":"object","properties":{\#(props)}}"#), maxElements: 100_000) }
    // Thousands of overlapping alternatives: each step keeps a bounded number of stacks, and a mask
    // walk stops at its budget with only valid tokens in it.
    let alts = Array(repeating: #"{"type":"string"}"#, count: 3000).joined(separator: ",")
    let g = try schema(#"{"anyOf":[\#(alts)]}"#)
    let pieces: [[UInt8]] = ["\"", "\"a", "a", "ab\"", "\"\"", "x"].map { Array($0.utf8) }
    let trie = TokenTrie(pieces: pieces)
    let m = GrammarMatcher(g)
    let c = GrammarConstraint(grammar: g, trie: trie, endTokens: [])
    let mask = c.mask(m)
    #expect(mask[0] & 1 == 1, "a string's opening quote is allowed")
    for t in pieces.indices where mask[0] >> UInt64(t) & 1 == 1 { #expect(m.allows(pieces[t])) }
}

@Test func oneOfMustBeProvablyExclusive() throws {
    // A tagged union and alternatives of different types are accepted; overlapping ones are refused.
    let tagged = try schema(#"{"oneOf":[{"type":"object","properties":{"kind":{"const":"a"},"x":{"type":"integer"}},"required":["kind","x"]},{"type":"object","properties":{"kind":{"const":"b"},"y":{"type":"string"}},"required":["kind","y"]}]}"#)
    #expect(accepts(tagged, #"{"kind":"b","y":"q"}"#) && !accepts(tagged, #"{"kind":"b","x":1}"#))
    _ = try schema(#"{"oneOf":[{"type":"string"},{"type":"integer"},{"enum":[true]}]}"#)
    #expect(refusal(try JSON.parse(#"{"oneOf":[{"type":"string"},{"type":"string","maxLength":3}]}"#)) == "oneOf")
    #expect(refusal(try JSON.parse(#"{"oneOf":[{"type":"number"},{"type":"integer"}]}"#)) == "oneOf")
}

/// Numbers end: a model that keeps choosing digits must still close the answer. An integer part of at
/// most 16 digits, a fraction of 16, an exponent of 3, with and without bounds.
@Test func generatedNumbersHaveBoundedDigits() throws {
    let d16 = String(repeating: "9", count: 16), d17 = String(repeating: "9", count: 17)
    for s in [#"{"type":"integer"}"#, #"{"type":"integer","minimum":0}"#, #"{"type":"integer","maximum":5}"#] {
        let g = try schema(s)
        let tail = s.contains("maximum") ? "-" : ""
        #expect(accepts(g, tail + d16), "\(s)")
        #expect(!accepts(g, tail + d17), "\(s)")
        #expect(!accepts(g, "0" + d16) && accepts(g, "0"), "\(s)")
    }
    let n = try schema(#"{"type":"number"}"#)
    #expect(accepts(n, "-\(d16).\(d16)e+999") && accepts(n, "0.5E-1"))
    #expect(!accepts(n, d17) && !accepts(n, "1.\(d17)") && !accepts(n, "1e1000"))
    let pos = try schema(#"{"type":"number","exclusiveMinimum":0,"maximum":10}"#)
    #expect(accepts(pos, "0.000000000000001") && accepts(pos, "10.\(String(repeating: "0", count: 16))") && accepts(pos, "9.\(d16)"))
    #expect(!accepts(pos, "0.\(String(repeating: "0", count: 16))1") && !accepts(pos, "10.\(String(repeating: "0", count: 17))"))
    #expect(!accepts(pos, "0") && !accepts(pos, "0.0") && !accepts(pos, "10.5"))
}
