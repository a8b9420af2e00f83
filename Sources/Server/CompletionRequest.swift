// POST /v1/completions and /v1/chat/completions request bodies: parsed and validated field by field, so
// every error names the field. Defaults are OpenAI's (completions: max_tokens 16; chat: up to the
// context; temperature 1, top_p 1, n 1); extensions as in llama.cpp and vLLM (top_k, min_p,
// repetition_penalty, ignore_eos, cache_salt) and Zebra's `speculative` (false: no drafts). Chat messages keep their JSON key order (a template's
// `tojson` shows it).
import Engine
import Foundation
import Grammar
import Jinja

public struct CompletionRequest: Sendable {
    public enum Prompt: Sendable, Equatable { case text(String), tokens([Int32]) }
    public var model: String?
    public var prompts: [Prompt]
    public var maxTokens = 16
    public var temperature: Double = 1
    public var topP: Double = 1
    public var n = 1
    public var stream = false
    public var includeUsage = false
    public var logprobs: Int?
    public var echo = false
    public var stop: [String] = []
    public var presencePenalty: Double = 0
    public var frequencyPenalty: Double = 0
    public var logitBias: [Int32: Float] = [:]
    public var seed: UInt64?
    public var user: String?
    /// Prefix-cache isolation: requests share cached prompt prefixes only with requests of the same salt.
    public var cacheSalt: String?
    public var topK = 0
    public var minP: Double = 0
    public var repetitionPenalty: Double = 1
    public var ignoreEOS = false
    /// Whether the request may decode speculatively when the server does (same text either way).
    public var speculative = true
    /// Structured output (`response_format`; the Responses API's `text.format`).
    public var responseFormat = ResponseFormat.text
    /// Chat function calling: the functions (parameters with key order kept), `tool_choice`,
    /// `parallel_tool_calls`, and once the template is known, the call syntax (nil: no calls expected).
    public var toolSpecs: [ToolSpec] = []
    public var toolsJSON: JSON = .null
    public var toolChoice = ToolChoice.none
    public var parallelToolCalls = true
    public var toolSyntax: ToolSyntax?
    /// Chat: the conversation (validated, content parts joined to strings, `developer` as `system`), the
    /// tools the template may describe, and whether `max_tokens` was given (else: up to the context).
    public var messages: Value?
    public var tools: Value?
    public var maxTokensGiven = true
    /// Responses: the instructions (also the conversation's system message) and the tools as given, to
    /// echo in the response object.
    public var instructions: String?
    var responseTools: [Value] = []

    init() { prompts = [] }

    /// Limits applied while validating.
    public struct Limits: Sendable {
        public var maxN = 16
        public var maxPrompts = 64
        /// Largest `max_tokens` a request may ask for (the operator's cap; the context still applies).
        public var maxTokens = Int.max
        public var vocabSize = Int(Int32.max)
        public var maxMessages = 4096
        public init() {}
    }

    public init(json body: [UInt8], limits: Limits = Limits(), chat: Bool = false) throws(APIError) {
        let obj: Any
        do { obj = try JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }
        catch {
            // Valid JSON that Foundation refuses holds a number no double can (such as 1e400).
            if (try? JSON.parse(body, maxDepth: 256)) != nil {
                throw APIError(400, "request body holds a number out of a double's range", code: "invalid_json")
            }
            throw APIError(400, "request body is not valid JSON", code: "invalid_json")
        }
        guard let o = obj as? [String: Any] else { throw APIError(400, "request body must be a JSON object", code: "invalid_json") }
        let r = Reader(o)
        // Chat messages, tools and response formats keep their key order (a template's `tojson` shows it;
        // a schema's properties are generated in it): one order-keeping parse serves them all.
        let needsOrder = chat || (o["response_format"] != nil && !(o["response_format"] is NSNull))
        let ordered: JSON = needsOrder ? try Self.orderedBody(body) : .null
        model = try r.string("model")
        if chat {
            prompts = []
            try parseChat(ordered, o, limits: limits)
        } else {
            guard let p = o["prompt"], !(p is NSNull) else { throw APIError.invalid("prompt", "'prompt' is required") }
            prompts = try Self.parsePrompt(p, limits: limits)
        }
        let maxField = chat && r.present("max_completion_tokens") != nil ? "max_completion_tokens" : "max_tokens"
        if let v = try r.int(maxField) {
            guard v >= (chat ? 1 : 0) else { throw .invalid(maxField, "'\(maxField)' must be >= \(chat ? 1 : 0)") }
            guard v <= limits.maxTokens else { throw .invalid(maxField, "'\(maxField)' must be at most \(limits.maxTokens) on this server") }
            maxTokens = v
        } else if chat {
            maxTokensGiven = false
        }
        if let v = try r.number("temperature") {
            guard v >= 0 && v <= 2 else { throw .invalid("temperature", "'temperature' must be between 0 and 2") }
            temperature = v
        }
        if let v = try r.number("top_p") {
            guard v > 0 && v <= 1 else { throw .invalid("top_p", "'top_p' must be in (0, 1]") }
            topP = v
        }
        if let v = try r.int("n") {
            guard v >= 1 && v <= limits.maxN else { throw .invalid("n", "'n' must be between 1 and \(limits.maxN)") }
            n = v
        }
        stream = try r.bool("stream") ?? false
        if let so = o["stream_options"], !(so is NSNull) {
            guard let d = so as? [String: Any] else { throw .invalid("stream_options", "'stream_options' must be an object") }
            guard stream else { throw .invalid("stream_options", "'stream_options' is only allowed when 'stream' is true") }
            includeUsage = try Reader(d, prefix: "stream_options.").bool("include_usage") ?? false
        }
        if chat {
            // Chat's shape: logprobs a boolean, top_logprobs 0-20 alternatives.
            if try r.bool("logprobs") == true {
                let top = try r.int("top_logprobs") ?? 0
                guard top >= 0 && top <= 20 else { throw .invalid("top_logprobs", "'top_logprobs' must be between 0 and 20") }
                logprobs = top
            } else if try r.int("top_logprobs") != nil {
                throw .invalid("top_logprobs", "'top_logprobs' needs 'logprobs': true")
            }
        } else {
            if let v = try r.int("logprobs") {
                guard v >= 0 && v <= 5 else { throw .invalid("logprobs", "'logprobs' must be between 0 and 5") }
                logprobs = v
            }
            echo = try r.bool("echo") ?? false
        }
        if let s = o["stop"], !(s is NSNull) {
            if let one = s as? String { stop = [one] }
            else if let many = s as? [Any], many.allSatisfy({ $0 is String }) {
                guard many.count <= 4 else { throw .invalid("stop", "'stop' may hold at most 4 sequences") }
                stop = many as! [String]
            } else { throw .invalid("stop", "'stop' must be a string or an array of strings") }
            guard stop.allSatisfy({ !$0.isEmpty }) else { throw .invalid("stop", "stop sequences must not be empty") }
        }
        if let v = try r.number("presence_penalty") {
            guard v >= -2 && v <= 2 else { throw .invalid("presence_penalty", "'presence_penalty' must be between -2 and 2") }
            presencePenalty = v
        }
        if let v = try r.number("frequency_penalty") {
            guard v >= -2 && v <= 2 else { throw .invalid("frequency_penalty", "'frequency_penalty' must be between -2 and 2") }
            frequencyPenalty = v
        }
        if let lb = o["logit_bias"], !(lb is NSNull) {
            guard let d = lb as? [String: Any] else { throw .invalid("logit_bias", "'logit_bias' must be an object of token id to bias") }
            for (k, v) in d {
                guard let id = Int32(k), id >= 0, Int(id) < limits.vocabSize else { throw .invalid("logit_bias", "'logit_bias' key '\(k)' is not a valid token id") }
                guard let b = (v as? NSNumber).flatMap({ Reader.isBool($0) ? nil : $0.doubleValue }), b >= -100, b <= 100 else {
                    throw .invalid("logit_bias", "'logit_bias' values must be numbers between -100 and 100")
                }
                logitBias[id] = Float(b)
            }
        }
        if let v = try r.int("seed") { seed = UInt64(bitPattern: Int64(v)) }
        user = try r.string("user")
        cacheSalt = try r.string("cache_salt")
        if let c = cacheSalt, c.isEmpty || c.utf8.count > 256 { throw .invalid("cache_salt", "'cache_salt' must be a non-empty string of at most 256 bytes") }
        if let v = try r.int("top_k") {
            guard v >= -1 else { throw .invalid("top_k", "'top_k' must be >= 0 (0 or -1 disables)") }
            topK = max(0, v)
        }
        if let v = try r.number("min_p") {
            guard v >= 0 && v <= 1 else { throw .invalid("min_p", "'min_p' must be between 0 and 1") }
            minP = v
        }
        if let v = try r.number("repetition_penalty") {
            guard v > 0 && v <= 10 else { throw .invalid("repetition_penalty", "'repetition_penalty' must be in (0, 10]") }
            repetitionPenalty = v
        }
        ignoreEOS = try r.bool("ignore_eos") ?? false
        speculative = try r.bool("speculative") ?? true
        if let s = o["suffix"], !(s is NSNull) { throw .invalid("suffix", "'suffix' is not supported by this server") }
        if needsOrder, let v = ordered["response_format"], v != .null {
            responseFormat = try ResponseFormat.parse(v, field: "response_format")
        }
        try checkConstraintCombinations()
        if let b = try r.int("best_of"), b != n { throw .invalid("best_of", "'best_of' other than n is not supported") }
    }

    /// The body parsed keeping key order; not JSON (including what Foundation tolerates and RFC 8259
    /// does not, such as unpaired surrogate escapes) is a 400.
    static func orderedBody(_ body: [UInt8]) throws(APIError) -> JSON {
        do { return try JSON.parse(body, maxDepth: 256) } catch { throw APIError(400, "request body is not valid JSON", code: "invalid_json") }
    }

    /// Chat fields: `messages` (and `tools`) from the order-keeping parse of the body, validated.
    private mutating func parseChat(_ ordered: JSON, _ o: [String: Any], limits: Limits) throws(APIError) {
        guard o["messages"] != nil else { throw .invalid("messages", "'messages' is required") }
        // What would change the answer's kind, refused rather than ignored (unknown fields are ignored).
        if let m = o["modalities"], !(m is NSNull) {
            guard let list = m as? [Any], list.allSatisfy({ $0 is String }) else { throw .invalid("modalities", "'modalities' must be an array of strings") }
            if list.contains(where: { $0 as? String != "text" }) { throw .invalid("modalities", "only text output is supported ('modalities': [\"text\"])") }
        }
        if let a = o["audio"], !(a is NSNull) { throw .invalid("audio", "audio output is not supported") }
        for k in ["functions", "function_call"] where o[k] != nil && !(o[k] is NSNull) {
            throw .invalid(k, "the deprecated '\(k)' is not supported: use 'tools' and 'tool_choice'")
        }
        guard case let .dict(root) = Value.from(ordered) else { throw APIError(400, "request body must be a JSON object", code: "invalid_json") }
        guard case let .list(list)? = root["messages"], !list.items.isEmpty else {
            throw .invalid("messages", "'messages' must be a non-empty array of messages")
        }
        guard list.items.count <= limits.maxMessages else { throw .invalid("messages", "at most \(limits.maxMessages) messages per request") }
        var out: [Value] = []
        for (i, m) in list.items.enumerated() {
            let at = "messages[\(i)]"
            guard case let .dict(d) = m else { throw .invalid(at, "'\(at)' must be an object") }
            guard case let .string(role)? = d["role"] else { throw .invalid(at + ".role", "'\(at).role' is required and must be a string") }
            guard ["system", "developer", "user", "assistant", "tool"].contains(role) else {
                throw .invalid(at + ".role", "'\(at).role' must be one of system, developer, user, assistant, tool (got '\(role)')")
            }
            let copy = JinjaDict(d.pairs)
            if role == "developer" { copy["role"] = .string("system") }
            switch d["content"] {
            case .string?: break
            case nil, .none?:
                guard role == "assistant" || role == "tool" else { throw .invalid(at + ".content", "'\(at).content' is required") }
                if d["content"] == nil { copy["content"] = .none }
            case let .list(parts)?:
                var texts: [String] = []
                for (j, part) in parts.items.enumerated() {
                    guard case let .dict(p) = part, case .string("text")? = p["type"], case let .string(t)? = p["text"] else {
                        throw .invalid("\(at).content[\(j)]", "only text content parts ({\"type\": \"text\", \"text\": ...}) are supported")
                    }
                    texts.append(t)
                }
                copy["content"] = .string(texts.joined(separator: "\n"))
            default: throw .invalid(at + ".content", "'\(at).content' must be a string or an array of text parts")
            }
            out.append(.dict(copy))
        }
        messages = .array(out)
        switch root["tools"] {
        case nil, .none?: break
        case let .list(l)?:
            for (i, t) in l.items.enumerated() {
                guard case let .dict(d) = t, case .string("function")? = d["type"], case let .dict(f)? = d["function"], case .string? = f["name"] else {
                    throw .invalid("tools[\(i)]", "'tools[\(i)]' must be {\"type\": \"function\", \"function\": {\"name\": ..., ...}}")
                }
            }
            tools = l.items.isEmpty ? nil : .list(l)
        default: throw .invalid("tools", "'tools' must be an array")
        }
        if tools != nil || (o["tool_choice"] != nil && !(o["tool_choice"] is NSNull)) {
            try parseToolChoice(ordered)
        }
        if let p = o["parallel_tool_calls"], !(p is NSNull) {
            guard let b = p as? NSNumber, Reader.isBool(b) else { throw .invalid("parallel_tool_calls", "'parallel_tool_calls' must be a boolean") }
            parallelToolCalls = b.boolValue
        }
    }

    /// `tools` as functions with ordered parameter schemas, and `tool_choice` (default: auto with tools).
    mutating func parseToolChoice(_ root: JSON) throws(APIError) {
        toolsJSON = root["tools"] ?? .null
        var names = Set<String>()
        for (i, t) in (toolsJSON.arrayValue ?? []).enumerated() {
            let f = t["function"]!
            let name = f["name"]!.stringValue!
            guard !name.isEmpty, !names.contains(name) else { throw .invalid("tools[\(i)].function.name", "function names must be non-empty and distinct ('\(name)')") }
            names.insert(name)
            var params = f["parameters"] ?? .object([("type", .string("object"))])
            if params == .null { params = .object([("type", .string("object"))]) }
            toolSpecs.append(ToolSpec(name: name, parameters: params))
        }
        toolChoice = toolSpecs.isEmpty ? .none : .auto
        guard let tc = root["tool_choice"], tc != .null else { return }
        switch tc {
        case .string("none"): toolChoice = .none
        case .string("auto"): break
        case .string("required"):
            guard !toolSpecs.isEmpty else { throw .invalid("tool_choice", "'tool_choice': \"required\" needs 'tools'") }
            toolChoice = .required
        default:
            guard case .object = tc, tc["type"]?.stringValue == "function", let name = tc["function"]?["name"]?.stringValue else {
                throw .invalid("tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or {\"type\": \"function\", \"function\": {\"name\": ...}}")
            }
            guard names.contains(name) else { throw .invalid("tool_choice", "'tool_choice' names '\(name)', which is not in 'tools'") }
            toolChoice = .function(name)
        }
    }

    /// Options that would let a constrained output end invalid are refused with it.
    func checkConstraintCombinations() throws(APIError) {
        if responseFormat.isConstrained && toolChoice != .none {
            throw .invalid("response_format", "a JSON 'response_format' together with 'tools' is not supported (set 'tool_choice': \"none\" or drop one)")
        }
        guard responseFormat.isConstrained || toolChoice != .none else { return }
        if !stop.isEmpty {
            throw .invalid("stop", "'stop' cannot be combined with a JSON response_format or tools: a stop sequence could cut a JSON value or a call short")
        }
    }

    static func parsePrompt(_ p: Any, limits: Limits) throws(APIError) -> [Prompt] {
        func tokens(_ a: [Any]) throws(APIError) -> [Int32] {
            var out: [Int32] = []
            for e in a {
                guard let n = e as? NSNumber, !Reader.isBool(n), let i = Int(exactly: n.doubleValue), i >= 0, i < limits.vocabSize else {
                    throw .invalid("prompt", "token ids in 'prompt' must be integers in [0, \(limits.vocabSize))")
                }
                out.append(Int32(i))
            }
            return out
        }
        var out: [Prompt]
        if let s = p as? String { out = [.text(s)] }
        else if let a = p as? [Any] {
            if a.isEmpty { throw .invalid("prompt", "'prompt' must not be empty") }
            if a.allSatisfy({ $0 is String }) { out = (a as! [String]).map { .text($0) } }
            else if a.allSatisfy({ $0 is NSNumber }) { out = [.tokens(try tokens(a))] }
            else if a.allSatisfy({ $0 is [Any] }) {
                out = []
                for e in a { out.append(.tokens(try tokens(e as! [Any]))) }
            } else {
                throw .invalid("prompt", "'prompt' must be a string, an array of strings, an array of token ids, or an array of arrays of token ids")
            }
        } else {
            throw .invalid("prompt", "'prompt' must be a string, an array of strings, an array of token ids, or an array of arrays of token ids")
        }
        guard out.count <= limits.maxPrompts else { throw .invalid("prompt", "at most \(limits.maxPrompts) prompts per request") }
        return out
    }

    public func sampling(index: Int) -> SamplingParams {
        var p = SamplingParams(temperature: Float(temperature), topK: topK, topP: Float(topP), minP: Float(minP),
                               repetitionPenalty: Float(repetitionPenalty), presencePenalty: Float(presencePenalty),
                               frequencyPenalty: Float(frequencyPenalty), logitBias: logitBias,
                               seed: seed.map { $0 &+ UInt64(index) }, logprobs: logprobs ?? 0)
        p.chosenLogprob = logprobs != nil
        return p
    }
}

/// Typed field access that names the field on a type error.
struct Reader {
    let o: [String: Any]
    let prefix: String
    init(_ o: [String: Any], prefix: String = "") { self.o = o; self.prefix = prefix }

    /// JSON true/false arrive as NSNumber too; their type encoding is "c" (numbers are "i", "q", "d").
    static func isBool(_ n: NSNumber) -> Bool { String(cString: n.objCType) == "c" }

    func present(_ k: String) -> Any? {
        guard let v = o[k], !(v is NSNull) else { return nil }
        return v
    }
    func string(_ k: String) throws(APIError) -> String? {
        guard let v = present(k) else { return nil }
        guard let s = v as? String else { throw .invalid(prefix + k, "'\(prefix + k)' must be a string") }
        return s
    }
    func bool(_ k: String) throws(APIError) -> Bool? {
        guard let v = present(k) else { return nil }
        guard let n = v as? NSNumber, Self.isBool(n) else { throw .invalid(prefix + k, "'\(prefix + k)' must be a boolean") }
        return n.boolValue
    }
    func number(_ k: String) throws(APIError) -> Double? {
        guard let v = present(k) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), n.doubleValue.isFinite else { throw .invalid(prefix + k, "'\(prefix + k)' must be a number") }
        return n.doubleValue
    }
    func int(_ k: String) throws(APIError) -> Int? {
        guard let v = present(k) else { return nil }
        guard let n = v as? NSNumber, !Self.isBool(n), let i = Int(exactly: n.doubleValue) else {
            throw .invalid(prefix + k, "'\(prefix + k)' must be an integer")
        }
        return i
    }
}
