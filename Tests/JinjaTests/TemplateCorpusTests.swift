// Real chat templates (llama.cpp's corpus of 70) over six conversations, against what Python's jinja2
// renders with transformers' settings (Fixtures/templates.json, made by scripts/make_template_fixtures.py):
// byte-identical text where jinja2 renders, an error where it raises.
import Foundation
import Testing
@testable import Jinja

struct Corpus {
    let templates: [(name: String, source: String)]
    let conversations: [Value]
    let cases: [(template: Int, conversation: Int, expected: String?, error: String?)]
    let now: Date

    static let shared: Corpus = {
        let url = Bundle.module.url(forResource: "templates", withExtension: "json", subdirectory: "Fixtures")!
        let text = try! String(contentsOf: url, encoding: .utf8)
        guard case let .dict(root) = try! Value.parseJSON(text) else { fatalError("fixture") }
        func str(_ v: Value?) -> String? { if case let .string(s)? = v { return s }; return nil }
        func int(_ v: Value?) -> Int { if case let .int(i)? = v { return i }; return -1 }
        guard case let .list(ts)? = root["templates"], case let .list(cs)? = root["conversations"], case let .list(cases)? = root["cases"] else { fatalError("fixture") }
        let templates = ts.items.map { t -> (String, String) in
            guard case let .dict(d) = t else { fatalError("fixture") }
            return (str(d["name"])!, str(d["source"])!)
        }
        let parsed = cases.items.map { c -> (Int, Int, String?, String?) in
            guard case let .dict(d) = c else { fatalError("fixture") }
            return (int(d["template"]), int(d["conversation"]), str(d["expected"]), str(d["error"]))
        }
        let iso = ISO8601DateFormatter()
        iso.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withDashSeparatorInDate]
        iso.timeZone = TimeZone(identifier: "UTC")
        let now = iso.date(from: str(root["now"])!) ?? Date(timeIntervalSince1970: 0)
        return Corpus(templates: templates, conversations: cs.items, cases: parsed, now: now)
    }()

    func context(_ c: Int) -> [String: Value] {
        guard case let .dict(conv) = conversations[c] else { return [:] }
        var ctx: [String: Value] = ["messages": conv["messages"]!, "bos_token": .string("<s>"), "eos_token": .string("</s>"),
                                    "add_generation_prompt": conv["add_generation_prompt"] ?? .bool(true)]
        if let tools = conv["tools"] { ctx["tools"] = tools }
        return ctx
    }
}

/// Where two texts part, with some context on both sides.
func difference(_ got: String, _ want: String) -> String {
    let a = Array(got), b = Array(want)
    var at = 0
    while at < a.count && at < b.count && a[at] == b[at] { at += 1 }
    let ga = String(a[max(0, at - 30)..<min(a.count, at + 30)]), wb = String(b[max(0, at - 30)..<min(b.count, at + 30)])
    return "differs at \(at): got \(ga.debugDescription) want \(wb.debugDescription)"
}

/// Renders every (template, conversation) pair; returns the failures by template name.
func corpusFailures() -> (passed: Int, total: Int, failures: [String: String]) {
    let corpus = Corpus.shared
    var failures: [String: String] = [:], passed = 0
    var compiled: [Int: Result<Template, JinjaError>] = [:]
    for c in corpus.cases {
        let name = corpus.templates[c.template].name
        let t: Result<Template, JinjaError>
        if let known = compiled[c.template] { t = known } else {
            do throws(JinjaError) { t = .success(try Template(corpus.templates[c.template].source)) } catch { t = .failure(error) }
        }
        compiled[c.template] = t
        switch (t, c.expected) {
        case let (.success(tpl), expected?):
            do {
                let got = try tpl.render(corpus.context(c.conversation), now: corpus.now)
                if got == expected { passed += 1 } else if failures[name] == nil {
                    failures[name] = "conversation \(c.conversation): " + difference(got, expected)
                }
            } catch {
                if failures[name] == nil { failures[name] = "conversation \(c.conversation): \(error)" }
            }
        case let (.failure(e), _?):
            if failures[name] == nil { failures[name] = "parse: \(e)" }
        case let (.failure(e), nil):
            // jinja2 refused to parse it too; if it parsed and only raised while rendering, so must we.
            if c.conversation < 0 { passed += 1 } else if failures[name] == nil {
                failures[name] = "parse: \(e), where jinja2 parsed it and raised \(c.error ?? "") rendering"
            }
        case let (.success(tpl), nil):
            if c.conversation < 0 { failures[name] = "jinja2 refused to parse it: \(c.error ?? "")"; continue }
            do {
                _ = try tpl.render(corpus.context(c.conversation), now: corpus.now)
                if failures[name] == nil { failures[name] = "conversation \(c.conversation): rendered where jinja2 raised \(c.error ?? "")" }
            } catch {
                // The template's own raise_exception: the same message as jinja2's.
                let raised = c.error.flatMap { $0.hasPrefix("TemplateError: ") ? String($0.dropFirst(15)) : nil }
                if let raised, !"\(error)".contains(raised) {
                    if failures[name] == nil { failures[name] = "conversation \(c.conversation): raised \(error), jinja2 \(raised)" }
                } else { passed += 1 }
            }
        }
    }
    return (passed, corpus.cases.count, failures)
}

@Test func chatTemplateCorpusMatchesJinja2() {
    let r = corpusFailures()
    print("chat templates: \(r.passed)/\(r.total) cases match jinja2; \(Corpus.shared.templates.count - r.failures.count)/\(Corpus.shared.templates.count) templates fully")
    for (name, f) in r.failures.sorted(by: { $0.key < $1.key }) { print("  \(name): \(f)") }
    #expect(r.failures.isEmpty)
}
