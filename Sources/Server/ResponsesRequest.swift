// POST /v1/responses request body, the stateless subset: `input` (a string, or message items with text
// parts, function_call and function_call_output items), `instructions` (the system message),
// `max_output_tokens`, temperature, top_p, function `tools`, `tool_choice` auto/none, `text.format`
// (text, json_object, json_schema), `stream`. It becomes a chat request (the same template, scheduler and finish rules); what the
// server cannot honour — stored state, background runs, built-in tools, files —
// is refused with a 400 naming the field, never ignored.
import Engine
import Foundation
import Grammar
import Jinja

extension CompletionRequest {
    public init(responses body: [UInt8], limits: Limits) throws(APIError) {
        self.init()
        let ordered = try Self.orderedBody(body)
        guard case let .dict(root) = Value.from(ordered) else { throw APIError(400, "request body must be a JSON object", code: "invalid_json") }
        func string(_ k: String) throws(APIError) -> String? {
            switch root[k] {
            case nil, .none?: return nil
            case let .string(s)?: return s
            default: throw .invalid(k, "'\(k)' must be a string")
            }
        }
        func number(_ k: String, _ lo: Double, _ hi: Double) throws(APIError) -> Double? {
            switch root[k] {
            case nil, .none?: return nil
            case let .int(i)?: guard Double(i) >= lo && Double(i) <= hi else { throw .invalid(k, "'\(k)' must be between \(lo) and \(hi)") }; return Double(i)
            case let .double(d)?: guard d >= lo && d <= hi else { throw .invalid(k, "'\(k)' must be between \(lo) and \(hi)") }; return d
            default: throw .invalid(k, "'\(k)' must be a number")
            }
        }
        // Refused, not ignored.
        for (k, why) in [("previous_response_id", "responses are not stored: send the whole conversation in 'input'"),
                         ("conversation", "conversations are not stored: send the whole conversation in 'input'"),
                         ("prompt", "stored prompts are not supported"), ("reasoning", "reasoning options are not supported by this model")] {
            if let v = root[k], !(v.isNone) { throw .invalid(k, "'\(k)': \(why)") }
        }
        if case .bool(true)? = root["store"] { throw .invalid("store", "'store': true is not supported (this server keeps no responses)") }
        if case .bool(true)? = root["background"] { throw .invalid("background", "'background': true is not supported") }
        if case let .list(l)? = root["include"], !l.items.isEmpty { throw .invalid("include", "'include' is not supported") }
        model = try string("model")
        instructions = try string("instructions")
        if let t = try number("temperature", 0, 2) { temperature = t }
        if let p = try number("top_p", 0, 1) { guard p > 0 else { throw .invalid("top_p", "'top_p' must be in (0, 1]") }; topP = p }
        switch root["max_output_tokens"] {
        case nil, .none?: maxTokensGiven = false
        case let .int(n)?:
            guard n >= 1 else { throw .invalid("max_output_tokens", "'max_output_tokens' must be >= 1") }
            guard n <= limits.maxTokens else { throw .invalid("max_output_tokens", "'max_output_tokens' must be at most \(limits.maxTokens) on this server") }
            maxTokens = n
        default: throw .invalid("max_output_tokens", "'max_output_tokens' must be an integer")
        }
        switch root["stream"] {
        case nil, .none?: break
        case let .bool(b)?: stream = b
        default: throw .invalid("stream", "'stream' must be a boolean")
        }
        switch root["speculative"] {
        case nil, .none?: break
        case let .bool(b)?: speculative = b
        default: throw .invalid("speculative", "'speculative' must be a boolean")
        }
        user = try string("user")
        cacheSalt = try string("cache_salt")
        if let c = cacheSalt, c.isEmpty || c.utf8.count > 256 { throw .invalid("cache_salt", "'cache_salt' must be a non-empty string of at most 256 bytes") }
        if case let .dict(text)? = root["text"], let format = text["format"], !format.isNone {
            responseFormat = try ResponseFormat.parse(ordered["text"]?["format"] ?? .null, field: "text.format", flat: true)
        }
        if case let .string(tc)? = root["tool_choice"], tc != "auto" && tc != "none" {
            throw .invalid("tool_choice", "'tool_choice' may be \"auto\" or \"none\" on this server")
        } else if let tc = root["tool_choice"], !tc.isNone, !tc.isString {
            throw .invalid("tool_choice", "'tool_choice' may be \"auto\" or \"none\" on this server")
        }
        // Tools: the Responses API's flat function tools, to the chat template's nested form.
        var chatTools: [Value] = []
        if case let .list(l)? = root["tools"] {
            for (i, t) in l.items.enumerated() {
                guard case let .dict(d) = t, case .string("function")? = d["type"], case let .string(name)? = d["name"] else {
                    throw .invalid("tools[\(i)]", "only function tools ({\"type\": \"function\", \"name\": ...}) are supported")
                }
                var f: [(String, Value)] = [("name", .string(name))]
                if let desc = d["description"] { f.append(("description", desc)) }
                if let params = d["parameters"] { f.append(("parameters", params)) }
                chatTools.append(.object([("type", .string("function")), ("function", .object(f))]))
                responseTools.append(t)
            }
        } else if let t = root["tools"], !t.isNone { throw .invalid("tools", "'tools' must be an array") }
        tools = chatTools.isEmpty ? nil : .array(chatTools)
        // The conversation.
        var msgs: [Value] = []
        if let i = instructions { msgs.append(.object([("role", .string("system")), ("content", .string(i))])) }
        switch root["input"] {
        case let .string(s)?: msgs.append(.object([("role", .string("user")), ("content", .string(s))]))
        case let .list(items)?:
            guard !items.items.isEmpty else { throw .invalid("input", "'input' must not be empty") }
            for (i, item) in items.items.enumerated() {
                let at = "input[\(i)]"
                guard case let .dict(d) = item else { throw .invalid(at, "'\(at)' must be an object") }
                let type = d["type"].map(\.text) ?? "message"
                switch type {
                case "message":
                    guard case let .string(role)? = d["role"], ["user", "system", "developer", "assistant"].contains(role) else {
                        throw .invalid(at + ".role", "'\(at).role' must be user, system, developer or assistant")
                    }
                    let content: String
                    switch d["content"] {
                    case let .string(s)?: content = s
                    case let .list(parts)?:
                        var texts: [String] = []
                        for (j, part) in parts.items.enumerated() {
                            guard case let .dict(p) = part, let pt = p["type"].map(\.text), pt == "input_text" || pt == "output_text",
                                  case let .string(t)? = p["text"] else {
                                throw .invalid("\(at).content[\(j)]", "only input_text and output_text parts are supported")
                            }
                            texts.append(t)
                        }
                        content = texts.joined(separator: "\n")
                    default: throw .invalid(at + ".content", "'\(at).content' must be a string or an array of text parts")
                    }
                    msgs.append(.object([("role", .string(role == "developer" ? "system" : role)), ("content", .string(content))]))
                case "function_call":
                    guard case let .string(name)? = d["name"], case let .string(callID)? = d["call_id"] else {
                        throw .invalid(at, "'\(at)' needs 'name' and 'call_id'")
                    }
                    let argsText = d["arguments"].map(\.text) ?? "{}"
                    let args = (try? Value.parseJSON(argsText)) ?? .string(argsText)
                    let call = Value.object([("id", .string(callID)), ("type", .string("function")),
                                             ("function", .object([("name", .string(name)), ("arguments", args)]))])
                    msgs.append(.object([("role", .string("assistant")), ("content", .none), ("tool_calls", .array([call]))]))
                case "function_call_output":
                    guard case let .string(callID)? = d["call_id"] else { throw .invalid(at + ".call_id", "'\(at).call_id' is required") }
                    guard case let .string(output)? = d["output"] else { throw .invalid(at + ".output", "'\(at).output' must be a string") }
                    msgs.append(.object([("role", .string("tool")), ("tool_call_id", .string(callID)), ("content", .string(output))]))
                default:
                    throw .invalid(at + ".type", "input items of type '\(type)' are not supported")
                }
            }
        case nil, .none?: throw .invalid("input", "'input' is required")
        default: throw .invalid("input", "'input' must be a string or an array of items")
        }
        guard msgs.count <= limits.maxMessages else { throw .invalid("input", "at most \(limits.maxMessages) items per request") }
        messages = .array(msgs)
    }
}

func toFoundation(_ v: Value) -> Any {
    switch v {
    case .none, .undefined: return NSNull()
    case let .bool(b): return b
    case let .int(i): return i
    case let .double(d): return d
    case let .string(s), let .markup(s): return s
    case let .list(l): return l.items.map(toFoundation)
    case let .dict(d), let .namespace(d):
        var o: [String: Any] = [:]
        for (k, x) in d.pairs { o[k] = toFoundation(x) }
        return o
    default: return v.text
    }
}

extension Value {
    var isNone: Bool { if case .none = self { true } else { false } }
    var isString: Bool { if case .string = self { true } else { false } }
}
