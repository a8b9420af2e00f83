// The interpreter's own cases: whitespace control, scoping, errors as the template's own messages, and
// the sandbox's limits (a chat template is code from a downloaded file).
import Foundation
import Testing
@testable import Jinja

func render(_ source: String, _ ctx: [String: Value] = [:]) throws(JinjaError) -> String { try Template(source).render(ctx) }

@Test func rendersBasics() throws {
    let t = try Template("{% for m in messages %}{{ m.role }}: {{ m['content'] | trim }}\n{% endfor %}")
    let out = try t.render(["messages": .array([.object([("role", .string("user")), ("content", .string(" hi "))])])])
    #expect(out == "user: hi\n")
}

@Test func whitespaceControlAsHuggingFaceRendersTemplates() throws {
    // trim_blocks drops the newline after a block tag; lstrip_blocks the indentation before one.
    #expect(try render("{% if true %}\n    yes\n    {% endif %}\nend") == "    yes\nend")
    #expect(try render("a  {%- if true -%}  b  {%- endif -%}  c") == "abc")
    #expect(try render("a\n  {%+ if true %}b{% endif %}") == "a\n  b")
    #expect(try render("{{ 'x' }}\n{# note #}\ny") == "x\ny")
}

@Test func loopsScopesAndNamespaces() throws {
    let src = "{% set ns = namespace(n=0) %}{% for x in xs %}{% set ns.n = ns.n + x %}{% set local = x %}"
        + "{{ loop.index }}/{{ loop.length }}{{ ',' if not loop.last }}{% endfor %} {{ ns.n }} {{ local is defined }}"
    #expect(try render(src, ["xs": .array([.int(1), .int(2), .int(3)])]) == "1/3,2/3,3/3 6 False")
    #expect(try render("{% for k, v in d | dictsort %}{{ k }}={{ v }};{% endfor %}",
                       ["d": .object([("b", .int(2)), ("a", .int(1))])]) == "a=1;b=2;")
    #expect(try render("{% for x in [] %}x{% else %}empty{% endfor %}") == "empty")
    #expect(try render("{% for x in [1,2,3,4] %}{% if x == 3 %}{% break %}{% endif %}{{ x }}{% endfor %}") == "12")
    #expect(try render("{% macro m(a, b='B') %}[{{ a }}{{ b }}]{% endmacro %}{{ m(1) }}{{ m(2, b=3) }}") == "[1B][23]")
    #expect(try render("{{ [1, 2, 3][::-1] }} {{ 'abc'[1:] }} {{ 7 // 2 }} {{ 7 / 2 }} {{ 2 ** 10 }}") == "[3, 2, 1] bc 3 3.5 1024")
    #expect(try render("{{ {'a': [1, 2.5, none, true, 'é']} | tojson }}") == #"{"a": [1, 2.5, null, true, "é"]}"#)
}

@Test func errorsAreTheTemplatesOwnMessages() {
    #expect(throws: JinjaError(.raised, "Conversation roles must alternate")) {
        try render("{{ raise_exception('Conversation roles must alternate') }}")
    }
    #expect { try render("{% if x %}never closed") } throws: { ($0 as? JinjaError)?.kind == .syntax }
    #expect { try render("{{ x.y }}") } throws: { ($0 as? JinjaError)?.message == "'x' is undefined" }
    #expect { try render("{% for x in xs %}{% do %}{% endfor %}") } throws: { ($0 as? JinjaError)?.kind == .syntax }
    // transformers' sandbox refuses mutation, so we do too.
    #expect { try render("{% set l = [] %}{{ l.append(1) }}") } throws: { ($0 as? JinjaError)?.message.contains("unsafe") == true }
}

@Test func theSandboxHasLimits() {
    var tight = JinjaLimits()
    tight.maxIterations = 1000
    tight.maxOutputBytes = 1000
    tight.maxDepth = 8
    #expect { try Template("{% for i in range(10) %}{% for j in range(1000) %}{% endfor %}{% endfor %}", limits: tight).render([:]) }
        throws: { ($0 as? JinjaError)?.kind == .limit }
    #expect { try Template("{% for i in range(900) %}xx{% endfor %}", limits: tight).render([:]) } throws: { ($0 as? JinjaError)?.kind == .limit }
    #expect { try Template("{% macro f(n) %}{{ f(n + 1) }}{% endmacro %}{{ f(0) }}", limits: tight).render([:]) }
        throws: { ($0 as? JinjaError)?.kind == .limit }
    #expect { try render("{{ range(100000000000) | length }}") } throws: { ($0 as? JinjaError)?.kind == .limit }
    // No way out: there is nothing to import, no attribute reaches Python internals.
    #expect { try render("{{ ''.__class__ }}") } throws: { e in
        (e as? JinjaError).map { $0.kind == .runtime && $0.message.contains("'__class__'") && $0.message.contains("unsafe") } ?? false
    }
}

@Test func strftimeNowUsesTheGivenClock() throws {
    let t = try Template("{{ strftime_now('%d %b %Y') }}")
    #expect(try t.render([:], now: Date(timeIntervalSince1970: 1_773_500_966)) == "14 Mar 2026")
}
