// The vocabulary as stored in GGUF metadata (tokenizer.ggml.*): texts, scores, types, special ids.
import GGUF
#if canImport(Glibc)
import Glibc
#endif

/// llama.cpp token types (llama.h `enum llama_token_type`).
public enum TokenType: Int, Sendable {
    case undefined = 0, normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6
}

public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    case missingMetadata(String)
    case unsupportedModel(String)
    case invalidToken(Int)

    public var description: String {
        switch self {
        case let .missingMetadata(k): return "tokenizer metadata missing or malformed: \(k)"
        case let .unsupportedModel(m): return "unsupported tokenizer model '\(m)' (supported: llama (SentencePiece), gpt2 (BPE))"
        case let .invalidToken(t): return "token id \(t) is not in the vocabulary"
        }
    }
}

public struct Vocabulary: Sendable {
    public let tokens: [String]
    public let scores: [Float]
    public let types: [TokenType]
    /// Token text (UTF-8 bytes) -> id; the last id wins for duplicates, as llama.cpp's map assignment.
    /// Keyed by bytes, not String: String equality is canonical equivalence (U+037E == ";").
    public let ids: [[UInt8]: Int32]
    public let bos: Int32?
    public let eos: Int32?
    public let unk: Int32?
    public let addBOS: Bool
    public let addEOS: Bool
    /// End-of-generation tokens: EOS plus the usual end-of-turn markers present in the vocabulary.
    public let endOfGeneration: Set<Int32>
    public var count: Int { tokens.count }

    /// The same map as an open-addressing table looked up from a byte slice without building a key
    /// (the SentencePiece merge loop asks for every adjacent pair of a 35k-character prompt).
    let table: ByteTable

    /// The id of a token text, compared byte for byte.
    public func id(_ text: String) -> Int32? { ids[Array(text.utf8)] }

    /// The id of the token whose text is exactly these bytes.
    @inline(__always)
    public func id(bytes: UnsafeBufferPointer<UInt8>) -> Int32? { table.lookup(bytes) }

    public init(tokens: [String], scores: [Float]?, types: [TokenType]?, bos: Int32?, eos: Int32?, unk: Int32?,
                addBOS: Bool, addEOS: Bool) {
        self.tokens = tokens
        self.scores = scores ?? Array(repeating: 0, count: tokens.count)
        self.types = types ?? Array(repeating: .normal, count: tokens.count)
        var ids: [[UInt8]: Int32] = [:]
        ids.reserveCapacity(tokens.count)
        for (i, t) in tokens.enumerated() { ids[Array(t.utf8)] = Int32(i) }
        self.ids = ids
        table = ByteTable(ids)
        self.bos = bos; self.eos = eos; self.unk = unk
        self.addBOS = addBOS; self.addEOS = addEOS
        var eog: Set<Int32> = []
        if let e = eos { eog.insert(e) }
        for name in ["<end_of_turn>", "<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end|>", "<eot>"] {
            if let id = ids[Array(name.utf8)], self.types[Int(id)] == .control || self.types[Int(id)] == .userDefined { eog.insert(id) }
        }
        endOfGeneration = eog
    }

    public init(file: GGUFFile) throws(TokenizerError) {
        do {
            let tokens = try file.strings("tokenizer.ggml.tokens")
            let scores = file.metadata["tokenizer.ggml.scores"] == nil ? nil : try file.floats("tokenizer.ggml.scores")
            let types = file.metadata["tokenizer.ggml.token_type"] == nil ? nil
                : try file.ints("tokenizer.ggml.token_type").map { TokenType(rawValue: $0) ?? .normal }
            // One score and one type per token: ids index all three arrays.
            for (key, n) in [("tokenizer.ggml.scores", scores?.count), ("tokenizer.ggml.token_type", types?.count)] {
                if let n, n != tokens.count {
                    throw TokenizerError.missingMetadata("\(key) has \(n) entries for \(tokens.count) tokens")
                }
            }
            func id(_ k: String) throws -> Int32? {
                guard file.metadata[k] != nil else { return nil }
                let v = try file.int(k)
                return v >= 0 && v < tokens.count ? Int32(v) : nil
            }
            let model = try file.string("tokenizer.ggml.model")
            self.init(tokens: tokens, scores: scores, types: types,
                      bos: try id("tokenizer.ggml.bos_token_id"), eos: try id("tokenizer.ggml.eos_token_id"),
                      unk: try id("tokenizer.ggml.unknown_token_id"),
                      addBOS: try file.bool("tokenizer.ggml.add_bos_token", default: model == "llama"),
                      addEOS: try file.bool("tokenizer.ggml.add_eos_token", default: false))
        } catch let e as TokenizerError {
            throw e
        } catch {
            throw .missingMetadata("\(error)")
        }
    }
}

/// Token texts -> ids, open addressing with linear probing over FNV-1a hashes; each slot holds an id
/// whose bytes are compared on a hit.
struct ByteTable: Sendable {
    private let slots: [Int32]          // -1: empty
    private let bytes: [UInt8]          // every key's bytes, back to back
    private let offsets: [Int]          // key of id i: bytes[offsets[i] ..< offsets[i + 1]]
    private let mask: Int

    init(_ map: [[UInt8]: Int32]) {
        let n = (map.values.max().map { Int($0) } ?? -1) + 1
        var keys = [[UInt8]](repeating: [], count: n)
        for (k, v) in map { keys[Int(v)] = k }
        var offsets = [0], bytes: [UInt8] = []
        for k in keys { bytes += k; offsets.append(bytes.count) }
        var cap = 16
        while cap < 2 * map.count { cap <<= 1 }
        var slots = [Int32](repeating: -1, count: cap)
        for (k, v) in map {
            var i = k.withUnsafeBufferPointer { Self.hash($0) } & (cap - 1)
            while slots[i] >= 0 { i = (i + 1) & (cap - 1) }
            slots[i] = v
        }
        self.slots = slots; self.bytes = bytes; self.offsets = offsets; mask = cap - 1
    }

    @inline(__always)
    static func hash(_ b: UnsafeBufferPointer<UInt8>) -> Int {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for x in b { h = (h ^ UInt64(x)) &* 0x100_0000_01b3 }
        return Int(truncatingIfNeeded: h ^ (h >> 29))
    }

    func lookup(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        var i = Self.hash(key) & mask
        return slots.withUnsafeBufferPointer { sl in
            bytes.withUnsafeBufferPointer { by in
                while true {
                    let id = sl[i]
                    if id < 0 { return nil }
                    let a = offsets[Int(id)], e = offsets[Int(id) + 1]
                    if e - a == key.count && (key.count == 0 || memcmp(by.baseAddress! + a, key.baseAddress!, key.count) == 0) { return id }
                    i = (i + 1) & mask
                }
            }
        }
    }
}
