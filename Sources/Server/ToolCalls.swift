// Function calling on /v1/chat/completions: how a model writes a call, the grammar that makes a forced
// call valid, and the parser that turns the answer into OpenAI's `tool_calls`.
//
// The syntax the model's chat template shows: Hermes/Qwen (`<tool_call>\n{"name": ..., "arguments":
// {...}}\n</tool_call>`), Llama 3.x's JSON (`{"name": ..., "parameters": {...}}`, one call), Mistral's v3
// (`[TOOL_CALLS][{"name": ..., "arguments": {...}}]`; the marker is a control token, so the text holds
// the array); otherwise a generic JSON answer, as llama.cpp's generic handler does:
// `{"tool_calls": [{"name": ..., "arguments": {...}}]}` for calls and `{"response": "..."}` for text,
// described to the model in a system message (the template may not show tools at all). Decoding is
// constrained whenever a call is forced (tool_choice required or a named function: the call's name
// comes from the list and its arguments validate against the function's parameters) and always in the
// generic syntax (an answer is one of the two shapes); with tool_choice auto a native syntax is free
// text whose calls are parsed after the answer ends.
import Engine
import Foundation
import Grammar
import Jinja

public enum ToolChoice: Sendable, Equatable {
    case none, auto, required
    case function(String)
}

public enum ToolSyntax: String, Sendable {
    case hermes, llama3, mistral, generic

    /// The syntax a chat template's source shows (templates whose <tool_call> holds XML-like
    /// `<function=...>` or `<arg_key>` parts, and Mistral's `[TOOL_CALLS]name[ARGS]` form, get the generic one).
    static func of(templateSource s: String) -> ToolSyntax {
        if s.contains("<tool_call>") && s.contains("\"arguments\"") && !s.contains("<function=") && !s.contains("<arg_key>") { return .hermes }
        if s.contains("[TOOL_CALLS][") { return .mistral }
        if s.contains("dictionary of argument name and its value") { return .llama3 }
        return .generic
    }
}

/// A declared function: its name and its parameters' schema (key order kept).
public struct ToolSpec: Sendable {
    public let name: String
    public let parameters: JSON
}

/// A parsed call.
struct ToolCall: Equatable {
    let name: String
    /// The arguments as compact JSON text (OpenAI sends a string).
    let arguments: String
}

enum ToolCalls {
    /// The grammar an answer must follow, or nil when it is free (Hermes with auto, or no tools).
    static func grammar(_ specs: [ToolSpec], choice: ToolChoice, parallel: Bool, syntax: ToolSyntax) throws(APIError) -> Grammar? {
        guard !specs.isEmpty, choice != .none else { return nil }
        if syntax != .generic && choice == .auto { return nil }
        var allowed = specs
        if case let .function(name) = choice { allowed = specs.filter { $0.name == name } }
        let argsKey = syntax == .llama3 ? "parameters" : "arguments"
        let call: SequencePart = .choice(allowed.map { s in
            [.literal("{\"name\":" + JSON.quote(s.name) + ",\"\(argsKey)\":"), .value(s.parameters), .literal("}")]
        })
        var parts: [SequencePart]
        switch syntax {
        case .hermes:
            parts = [.repeated([.literal("<tool_call>\n"), call, .literal("\n</tool_call>")], separator: "\n", min: 1, max: parallel ? nil : 1)]
        case .llama3:
            parts = [call]
        case .mistral:
            parts = [.literal("["), .repeated([call], separator: ",", min: 1, max: parallel ? nil : 1), .literal("]")]
        case .generic:
            let calls: [SequencePart] = [.literal("{\"tool_calls\":["), .repeated([call], separator: ",", min: 1, max: parallel ? nil : 1), .literal("]}")]
            if choice == .auto {
                parts = [.choice([calls, [.literal("{\"response\":"), .value(.object([("type", .string("string"))])), .literal("}")]])]
            } else {
                parts = calls
            }
        }
        do { return try JSONSchema.sequence(parts) } catch {
            throw APIError(400, "tools: \(error.message)", param: "tools", code: "unsupported_schema")
        }
    }

    /// The system-message text that tells the model about the tools in the generic syntax.
    static func instructions(_ specs: [ToolSpec], tools: JSON, choice: ToolChoice) -> String {
        let list = (tools.arrayValue ?? []).map { $0["function"]?.compact ?? "" }.joined(separator: "\n")
        var s = "You can call these functions:\n\(list)\n\n"
        switch choice {
        case .required: s += "Call one or more of them: answer with only {\"tool_calls\": [{\"name\": <function name>, \"arguments\": <arguments object>}]}."
        case let .function(name): s += "Call the function \(name): answer with only {\"tool_calls\": [{\"name\": \"\(name)\", \"arguments\": <arguments object>}]}."
        default: s += "To call functions, answer with only {\"tool_calls\": [{\"name\": <function name>, \"arguments\": <arguments object>}]}. Otherwise answer with only {\"response\": <your answer as a string>}."
        }
        return s
    }

    /// The conversation with the generic syntax's instructions at the start of its system message.
    static func withInstructions(_ body: CompletionRequest) -> Value? {
        guard case let .list(l)? = body.messages else { return body.messages }
        let msgs = l.items
        let text = instructions(body.toolSpecs, tools: body.toolsJSON, choice: body.toolChoice)
        var out = msgs
        if case let .dict(first)? = msgs.first, case .string("system")? = first["role"], case let .string(c)? = first["content"] {
            let copy = JinjaDict(first.pairs)
            copy["content"] = .string(c + "\n\n" + text)
            out[0] = .dict(copy)
        } else {
            out.insert(.dict(JinjaDict([("role", .string("system")), ("content", .string(text))])), at: 0)
        }
        return .array(out)
    }

    /// Earlier calls and their results, as the template can render them: a call's `arguments` string
    /// becomes the object it encodes where the template treats it as one (`objectArguments`); in the
    /// generic syntax, an assistant's calls become its content in that syntax, and a tool's result a
    /// user message.
    static func history(_ messages: Value?, syntax: ToolSyntax, objectArguments: Bool) -> Value? {
        guard case let .list(l)? = messages else { return messages }
        var changed = false
        let out: [Value] = l.items.map { m in
            guard case let .dict(d) = m, case let .string(role)? = d["role"] else { return m }
            if role == "tool" && syntax == .generic {
                changed = true
                let result = d["content"].map(\.text) ?? ""
                var pairs: [(String, Value)] = [("content", .string(result))]
                if case let .string(id)? = d["tool_call_id"] { pairs.insert(("tool_call_id", .string(id)), at: 0) }
                let text = "{\"tool_response\":" + JSON.object(pairs.map { ($0.0, JSON.string($0.1.text)) }).compact + "}"
                return .dict(JinjaDict([("role", .string("user")), ("content", .string(text))]))
            }
            guard role == "assistant", case let .list(calls)? = d["tool_calls"], !calls.items.isEmpty else { return m }
            changed = true
            var generic: [JSON] = []
            let converted: [Value] = calls.items.map { call in
                guard case let .dict(c) = call, case let .dict(f)? = c["function"] else { return call }
                let fn = JinjaDict(f.pairs)
                if objectArguments, case let .string(args)? = f["arguments"], let v = try? Value.parseJSON(args) { fn["arguments"] = v }
                let copy = JinjaDict(c.pairs)
                copy["function"] = .dict(fn)
                let argsJSON = (f["arguments"]?.text).flatMap { try? JSON.parse($0) } ?? .object([])
                generic.append(.object([("name", .string(f["name"]?.text ?? "")), ("arguments", argsJSON)]))
                return .dict(copy)
            }
            let copy = JinjaDict(d.pairs)
            copy["tool_calls"] = .array(converted)
            if syntax == .generic {
                let prior = d["content"].flatMap { $0.isNone ? nil : $0.text } ?? ""
                copy["content"] = .string((prior.isEmpty ? "" : prior + "\n") + JSON.object([("tool_calls", .array(generic))]).compact)
            } else if d["content"] == nil {
                copy["content"] = .none
            }
            return .dict(copy)
        }
        return changed ? .array(out) : messages
    }

    /// The longest prefix of an answer so far that is surely text, not the start of a call (with
    /// tool_choice auto and a native syntax): before any `<tool_call>` and any tail that could begin one
    /// (Hermes); nothing once the answer starts like a call (Llama 3's `{`, Mistral's `[`); nothing in
    /// the generic syntax, whose text is inside JSON.
    static func streamablePrefix(_ text: String, syntax: ToolSyntax) -> String {
        switch syntax {
        case .generic: return ""
        case .llama3, .mistral:
            let t = text.drop { $0.isWhitespace }
            if t.isEmpty { return "" }
            // The answer so far begins a call opener, or an opener begins it.
            let openers: [String] = syntax == .llama3 ? ["{", "<|python_tag|>"] : ["[", "[TOOL_CALLS]"]
            return openers.contains { $0.hasPrefix(String(t.prefix($0.count))) } ? "" : text
        case .hermes:
            let marker = "<tool_call>"
            var end = text.endIndex
            if let r = text.range(of: marker) { end = r.lowerBound } else {
                // Hold back a tail that is a prefix of the marker.
                for n in stride(from: min(marker.count - 1, text.count), through: 1, by: -1) where marker.hasPrefix(String(text.suffix(n))) {
                    end = text.index(text.endIndex, offsetBy: -n)
                    break
                }
            }
            return String(text[..<end])
        }
    }

    /// A generic answer cut short (max_tokens): the text decoded so far from {"response": "..., and no
    /// content and no calls from a cut {"tool_calls": [... (a partial set of calls is not one the model
    /// chose to make); the wrapper itself is never shown as text.
    static func cutGeneric(_ text: String) -> (content: String?, calls: [ToolCall]) {
        let opener = "{\"response\":\""
        if text.hasPrefix(opener) { return (JSON.stringPrefix(text.utf8.dropFirst(opener.utf8.count)), []) }
        let calls = "{\"tool_calls\":"
        if text.hasPrefix(calls) || calls.hasPrefix(text) || opener.hasPrefix(text) { return (nil, []) }
        return (text, [])
    }

    /// Splits an answer into its text and its calls.
    static func parse(_ text: String, syntax: ToolSyntax) -> (content: String?, calls: [ToolCall]) {
        switch syntax {
        case .generic:
            guard let v = try? JSON.parse(text) else { return cutGeneric(text) }
            if let r = v["response"]?.stringValue { return (r, []) }
            guard let list = v["tool_calls"]?.arrayValue else { return (text, []) }
            var calls: [ToolCall] = []
            for c in list {
                guard let name = c["name"]?.stringValue, let args = c["arguments"] else { return (text, []) }
                calls.append(ToolCall(name: name, arguments: args.compact))
            }
            return (nil, calls)
        case .llama3:
            var t = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
            if t.hasPrefix("<|python_tag|>") { t = t.dropFirst("<|python_tag|>".count) }
            guard let v = try? JSON.parse(String(t)), let name = v["name"]?.stringValue,
                  let args = v["parameters"] ?? v["arguments"] else { return (text, []) }
            return (nil, [ToolCall(name: name, arguments: args.compact)])
        case .mistral:
            var t = Substring(text.trimmingCharacters(in: .whitespacesAndNewlines))
            if t.hasPrefix("[TOOL_CALLS]") { t = t.dropFirst("[TOOL_CALLS]".count) }
            guard t.hasPrefix("["), let list = (try? JSON.parse(String(t)))?.arrayValue, !list.isEmpty else { return (text, []) }
            var calls: [ToolCall] = []
            for c in list {
                guard let name = c["name"]?.stringValue else { return (text, []) }
                calls.append(ToolCall(name: name, arguments: (c["arguments"] ?? .object([])).compact))
            }
            return (nil, calls)
        case .hermes:
            var calls: [ToolCall] = []
            var content = ""
            var rest = Substring(text)
            while let open = rest.range(of: "<tool_call>") {
                guard let close = rest[open.upperBound...].range(of: "</tool_call>") else { break }
                let inner = rest[open.upperBound..<close.lowerBound]
                if let v = try? JSON.parse(String(inner)), let name = v["name"]?.stringValue {
                    content += rest[..<open.lowerBound]
                    calls.append(ToolCall(name: name, arguments: (v["arguments"] ?? .object([])).compact))
                } else {
                    content += rest[..<close.upperBound]
                }
                rest = rest[close.upperBound...]
            }
            content += rest
            let blank = content.allSatisfy(\.isWhitespace)
            return (calls.isEmpty ? text : (blank ? nil : content), calls)
        }
    }
}
