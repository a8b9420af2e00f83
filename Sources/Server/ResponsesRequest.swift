// POST /v1/responses request body, the stateless subset: `input` (a string, or message items with text
// parts, function_call and function_call_output items), `instructions` (the system message),
// `max_output_tokens`, temperature, top_p, function `tools` (`tool_choice` auto, none, required or a
// function; the calls come back as `function_call` items), `text.format`
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
        // tool_choice: "auto", "none", "required" or {"type": "function", "name": ...} (chat's nested form
        // for the shared parser below).
        var choiceJSON: JSON = .null
        switch ordered["tool_choice"] {
        case nil, .null?: break
        case let .string(tc)? where ["auto", "none", "required"].contains(tc): choiceJSON = .string(tc)
        case let tc? where tc["type"]?.stringValue == "function" && tc["name"]?.stringValue != nil:
            choiceJSON = .object([("type", .string("function")), ("function", .object([("name", tc["name"]!)]))])
        default:
            throw .invalid("tool_choice", "'tool_choice' must be \"auto\", \"none\", \"required\" or {\"type\": \"function\", \"name\": ...}")
        }
        // Tools: the Responses API's flat function tools, to chat's nested form, which the template shows
        // and the calls are parsed (and with a generic syntax, or a required call, constrained) by.
        var nested: [JSON] = []
        switch ordered["tools"] {
        case nil, .null?: break
        case let .array(l)?:
            for (i, t) in l.enumerated() {
                guard t["type"]?.stringValue == "function", let name = t["name"], name.stringValue != nil else {
                    throw .invalid("tools[\(i)]", "only function tools ({\"type\": \"function\", \"name\": ...}) are supported")
                }
                var f: [(String, JSON)] = [("name", name)]
                if let d = t["description"] { f.append(("description", d)) }
                if let p = t["parameters"] { f.append(("parameters", p)) }
                nested.append(.object([("type", .string("function")), ("function", .object(f))]))
                responseTools.append(Value.from(t))
            }
        default: throw .invalid("tools", "'tools' must be an array")
        }
        tools = nested.isEmpty ? nil : Value.from(.array(nested))
        if !nested.isEmpty {
            try parseToolChoice(.object([("tools", .array(nested)), ("tool_choice", choiceJSON)]))
            switch root["parallel_tool_calls"] {
            case nil, .none?: break
            case let .bool(b)?: parallelToolCalls = b
            default: throw .invalid("parallel_tool_calls", "'parallel_tool_calls' must be a boolean")
            }
        } else if case .string(let tc) = choiceJSON, tc == "required" {
            throw .invalid("tool_choice", "'tool_choice': \"required\" needs 'tools'")
        } else if case .object = choiceJSON {
            throw .invalid("tool_choice", "'tool_choice' names a function, but there are no 'tools'")
        }
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
        if responseFormat.isConstrained && toolChoice != .none {
            throw .invalid("text.format", "a JSON 'text.format' together with 'tools' is not supported (set 'tool_choice': \"none\" or drop one)")
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
