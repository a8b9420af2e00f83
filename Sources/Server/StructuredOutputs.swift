// Structured outputs: `response_format` (chat and completions) and the Responses API's `text.format`,
// parsed into a ResponseFormat, compiled once per distinct schema into a grammar constraint bound to the
// model's vocabulary, and cached (requests with the same schema share the compiled grammar and its
// token masks). A schema the grammar compiler cannot enforce is the client's 400, naming the keyword.
import Engine
import Foundation
import Grammar
import HTTP
import Tokenizer

public enum ResponseFormat: Sendable, Equatable {
    case text
    /// Any JSON object.
    case jsonObject
    /// A JSON value valid against `schema` (`name` as the client gave it).
    case jsonSchema(name: String?, schema: JSON)

    public var isConstrained: Bool { self != .text }

    /// Parses OpenAI's `response_format` (`{"type": "json_schema", "json_schema": {name, schema, strict}}`),
    /// or with `flat` the Responses API's `text.format` (`{"type": "json_schema", name, schema, strict}`).
    static func parse(_ v: JSON, field: String, flat: Bool = false) throws(APIError) -> ResponseFormat {
        guard case .object = v, let type = v["type"]?.stringValue else {
            throw .invalid(field, "'\(field)' must be an object with a 'type' (text, json_object or json_schema)")
        }
        switch type {
        case "text": return .text
        case "json_object": return .jsonObject
        case "json_schema":
            let spec: JSON
            let at: String
            if flat { spec = v; at = field } else {
                guard let s = v["json_schema"], case .object = s else {
                    throw .invalid(field + ".json_schema", "'\(field).json_schema' is required for type json_schema and must be an object")
                }
                spec = s; at = field + ".json_schema"
            }
            var name: String?
            if let n = spec["name"], n != .null {
                guard let s = n.stringValue, !s.isEmpty, s.utf8.count <= 64,
                      s.unicodeScalars.allSatisfy({ ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-" })
                else { throw .invalid(at + ".name", "'\(at).name' must be 1-64 characters of a-z, A-Z, 0-9, _ and -") }
                name = s
            }
            if let s = spec["strict"], s != .null, s.boolValue == nil { throw .invalid(at + ".strict", "'\(at).strict' must be a boolean") }
            guard let schema = spec["schema"], schema != .null else { return .jsonSchema(name: name, schema: .object([("type", .string("object"))])) }
            switch schema {
            case .object, .bool: return .jsonSchema(name: name, schema: schema)
            default: throw .invalid(at + ".schema", "'\(at).schema' must be a JSON Schema object")
            }
        default:
            throw .invalid(field + ".type", "'\(field).type' must be text, json_object or json_schema (got '\(type)')")
        }
    }
}

/// Compiled constraints for one model, by schema.
public final class StructuredOutputs: @unchecked Sendable {
    let tokenizer: Tokenizer
    private let lock = Mutex()
    private var trie: TokenTrie?
    private var cache: [String: GrammarConstraint] = [:]
    private var order: [String] = []
    /// Distinct compiled schemas kept, each with up to 128 masks of vocabulary/8 bytes (Gemma 3: 4 MiB
    /// per schema, 64 MiB in all at most).
    public var maxSchemas = 16
    /// Counters of evicted constraints (the live ones are summed on demand).
    private var retired = Stats()

    public struct Stats: Sendable {
        public var compiled = 0, maskBuilds = 0, maskHits = 0
        public var maskSeconds = 0.0
    }

    /// Schemas compiled, masks built and reused, seconds building masks (for /metrics).
    public var stats: Stats {
        lock.withLock {
            var s = retired
            for c in cache.values { let n = c.counters; s.maskBuilds += n.builds; s.maskHits += n.hits; s.maskSeconds += n.seconds }
            return s
        }
    }

    public init(tokenizer: Tokenizer) { self.tokenizer = tokenizer }

    /// Builds the vocabulary's trie now, on a background thread, so the first structured request does
    /// not wait for it (`serve` calls this once the model is loaded).
    public func warm() {
        let t = Thread { [self] in lock.withLock { _ = vocabularyTrie() } }
        t.start()
    }

    /// The vocabulary's byte trie (built on first use: ~0.25 s for a 262k vocabulary).
    private func vocabularyTrie() -> TokenTrie {
        if let t = trie { return t }
        let t = TokenTrie(pieces: (0..<tokenizer.vocab.count).map { tokenizer.pieceBytes(Int32($0)) })
        trie = t
        return t
    }

    /// The constraint for a format (nil for text). Throws a 400 naming the schema keyword it cannot enforce.
    public func constraint(_ format: ResponseFormat, field: String = "response_format") throws(APIError) -> GrammarConstraint? {
        let key: String
        switch format {
        case .text: return nil
        case .jsonObject: key = "object"
        case let .jsonSchema(_, schema): key = "schema:" + schema.compact
        }
        return try constraint(key: key) { () throws(APIError) -> Grammar in
            switch format {
            case let .jsonSchema(_, schema):
                do throws(GrammarError) { return try JSONSchema.compile(schema) } catch {
                    throw APIError(400, "response schema: \(error.message)", param: field + (field == "response_format" ? ".json_schema.schema" : ".schema"),
                                   code: "unsupported_schema")
                }
            default: return JSONSchema.anyObject()
            }
        }
    }

    /// The cached constraint for `key`, compiling `build` on a miss.
    func constraint(key: String, build: () throws(APIError) -> Grammar) throws(APIError) -> GrammarConstraint {
        if let c = lock.withLock({ cache[key] }) { return c }
        let grammar = try build()
        return lock.withLock {
            if let c = cache[key] { return c }
            let ends = (0..<Int32(tokenizer.vocab.count)).filter { tokenizer.isEndOfGeneration($0) }
            let c = GrammarConstraint(grammar: grammar, trie: vocabularyTrie(), endTokens: ends)
            if cache.count >= maxSchemas, let old = order.first, let gone = cache[old] {
                let n = gone.counters
                retired.maskBuilds += n.builds; retired.maskHits += n.hits; retired.maskSeconds += n.seconds
                cache[old] = nil; order.removeFirst()
            }
            retired.compiled += 1
            cache[key] = c
            order.append(key)
            return c
        }
    }
}
