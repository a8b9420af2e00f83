// Hostile model files (issue 22): metadata nested too deep, tensors that lie about their shapes, sizes or
// offsets, vocabularies that are huge or disagree with the weights, and absurd hyperparameters. Each is
// refused at load, through the path `zebra serve` loads a model by, with an error naming the tensor or key:
// never a trap, a hang, or an allocation the file does not pay for.
import Foundation
import GGUF
import Model
import Testing
import TestSupport
import Tokenizer

struct HostileModelTests {
    let n = SyntheticModel.vocab.count

    @Test func theSyntheticModelLoadsUnchanged() throws {
        let (model, tokenizer) = try load(SyntheticModel.bytes())
        #expect(model.config.vocabSize == n && tokenizer.vocab.count == n)
    }

    @Test func theRealModelsPassEveryCheck() throws {
        let (gemma, g) = try load(path: TestModels.gemma)
        #expect(gemma.config.vocabSize == 262_144 && g.vocab.count == 262_144 && gemma.config.nRot == 256)
        let (smol, s) = try load(path: TestModels.smollm)
        #expect(smol.config.vocabSize == 49_152 && s.vocab.count == 49_152 && smol.config.headDim == 64)
    }

    // MARK: 1. Metadata nesting

    /// `depth` arrays, one inside the other, around an integer.
    static func nested(_ depth: Int) -> GGUFValue { depth == 0 ? .int32(7) : .array([nested(depth - 1)]) }

    @Test func metadataNestedDeeperThanTheReaderLimitIsRefused() {
        var w = SyntheticModel.writer()
        w.add("hostile.nested", Self.nested(9))
        expectRefused(w.serialize(), naming: ["'hostile.nested' nests arrays more than 8 deep"])
    }

    @Test func metadataNestedJustInsideTheLimitStillReads() throws {
        var w = SyntheticModel.writer()
        w.add("hostile.nested", Self.nested(8))
        let (model, _) = try load(w.serialize())
        #expect(model.weights.file.metadata["hostile.nested"] == Self.nested(8))
    }

    // MARK: 2. Tensors that disagree with the config

    @Test func tokenEmbeddingRowsOtherThanTheVocabularyAreRefused() {
        for rows in [n - 1, n + 1] {
            var w = SyntheticModel.writer()
            w.replace(tensor: "token_embd.weight", dims: [SyntheticModel.dim, rows])
            expectRefused(w.serialize(), naming: ["tokenizer.ggml.tokens has \(n) tokens but token_embd.weight has \(rows) rows"])
        }
    }

    /// A tensor replaced by one of another shape (dims innermost first, as in the file). The config says
    /// dim 64, two heads and one KV head of 32, FFN 256.
    static let misshapen: [(String, [Int])] = [
        ("blk.1.attn_q.weight", [32, 64]),           // half the embedding's columns
        ("blk.0.attn_k.weight", [64, 64]),           // two KV heads' rows
        ("blk.2.ffn_down.weight", [64, 256]),        // transposed
        ("blk.1.attn_output.weight", [64, 64, 1]),   // the right count in three dimensions
        ("output.weight", [64, 100]),                // an untied output with too few rows
        ("output_norm.weight", [65]),
        ("blk.0.attn_q_norm.weight", [16]),
    ]

    @Test(arguments: misshapen)
    func aTensorOfAnotherShapeIsRefusedByName(name: String, dims: [Int]) {
        var w = SyntheticModel.writer()
        w.replace(tensor: name, dims: dims)
        expectRefused(w.serialize(), naming: ["tensor '\(name)' has shape \(dims)"])
    }

    @Test func aMissingTensorIsRefusedByName() {
        var w = SyntheticModel.writer()
        w.remove(tensor: "blk.2.ffn_up.weight")
        expectRefused(w.serialize(), naming: ["missing tensor 'blk.2.ffn_up.weight'"])
        // The last layer gone entirely while block_count still counts it.
        var l = SyntheticModel.writer()
        l.tensors.removeAll { $0.name.hasPrefix("blk.2.") }
        expectRefused(l.serialize(), naming: ["missing tensor 'blk.2.attn_norm.weight'"])
    }

    // MARK: 3. Sizes and offsets

    @Test func aTensorRunningPastTheEndOfTheFileIsRefused() {
        // The last tensor claims a thousand times its length.
        var b = SyntheticModel.bytes()
        putU64(64_000, at: tensorEntry("blk.2.post_ffw_norm.weight", in: b).dims, in: &b)
        expectRefused(b, naming: ["tensor 'blk.2.post_ffw_norm.weight' data ends at byte", "past the end of the file"])
        // The embedding claims 2^31 - 1 rows (about 146 GB of Q8_0).
        var e = SyntheticModel.bytes()
        putU64(UInt64(Int32.max), at: tensorEntry("token_embd.weight", in: e).dims + 8, in: &e)
        expectRefused(e, naming: ["tensor 'token_embd.weight' data ends at byte", "past the end of the file"])
        // An offset that would wrap around to the header: offsets count from the data section, so only a
        // wrap could reach back, and it is out of bounds first.
        var h = SyntheticModel.bytes()
        putU64(UInt64.max - 31, at: tensorEntry("blk.0.attn_norm.weight", in: h).offset, in: &h)
        expectRefused(h, naming: ["tensor 'blk.0.attn_norm.weight' data ends at byte", "past the end of the file"])
    }

    @Test func aMisalignedTensorOffsetIsRefused() {
        var b = SyntheticModel.bytes()
        let at = tensorEntry("blk.1.attn_norm.weight", in: b).offset
        let offset = getU64(at: at, in: b) + 4
        putU64(offset, at: at, in: &b)
        expectRefused(b, naming: ["tensor 'blk.1.attn_norm.weight' data offset \(offset) is not a multiple of the file's alignment 32"])
    }

    @Test func overlappingTensorsAreReadNotRefused() throws {
        // An aligned offset into another tensor's bytes only aliases read-only data, in bounds: not refused
        // (see GGUFFile). Here blk.1's attention norm reads blk.0's bytes.
        var b = SyntheticModel.bytes()
        let first = tensorEntry("blk.0.attn_norm.weight", in: b), second = tensorEntry("blk.1.attn_norm.weight", in: b)
        putU64(getU64(at: first.offset, in: b), at: second.offset, in: &b)
        let (model, _) = try load(b)
        #expect(model.weights.layers[1].attnNorm == model.weights.layers[0].attnNorm)
    }

    // MARK: 4. Vocabulary

    @Test func aTokenCountOfTwoToTheFortyIsRefusedBeforeAllocating() {
        var b = SyntheticModel.bytes()
        // After the key: the value's type (array), the elements' type (string), then the u64 count.
        putU64(1 << 40, at: afterString("tokenizer.ggml.tokens", in: b) + 8, in: &b)
        expectRefused(b, naming: ["metadata array 'tokenizer.ggml.tokens' claims 1099511627776 elements"])
    }

    @Test func aVocabularyOfMoreThanTwoToTheTwentyFourIsRefused() throws {
        // ModelConfig.maxVocabSize + 1 embedding rows of Q4_0: their 604 MB are a hole at the end of a sparse
        // file, since the refusal reads the tensor directory only.
        let rows = (1 << 24) + 1
        var w = SyntheticModel.writer()
        w.remove(tensor: "token_embd.weight")
        // Last and without bytes, so its data starts where the serialized file ends.
        w.tensors.append(.init(name: "token_embd.weight", dims: [SyntheticModel.dim, rows], type: .q4_0, bytes: []))
        let b = w.serialize()
        let path = try scratchFile(b)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.truncate(atOffset: UInt64(b.count + GGMLType.q4_0.bytes(forElements: SyntheticModel.dim * rows)))
        try h.close()
        expectRefused(path: path, naming: ["token_embd.weight has \(rows) rows (one per token), more than the 16777216 tokens supported"])
    }

    @Test func moreTokensThanEmbeddingRowsAreRefused() {
        var w = SyntheticModel.writer()
        let tokens = SyntheticModel.vocab + ["<extra>"]
        w.set("tokenizer.ggml.tokens", .array(tokens.map { .string($0) }))
        w.set("tokenizer.ggml.scores", .array(tokens.map { _ in .float32(0) }))
        w.set("tokenizer.ggml.token_type", .array(tokens.map { _ in .int32(1) }))
        expectRefused(w.serialize(), naming: ["tokenizer.ggml.tokens has \(n + 1) tokens but token_embd.weight has \(n) rows"])
    }

    @Test(arguments: ["tokenizer.ggml.scores", "tokenizer.ggml.token_type"])
    func scoresOrTypesOfAnotherLengthAreRefused(key: String) {
        var w = SyntheticModel.writer()
        let i = w.metadata.firstIndex { $0.0 == key }!
        w.metadata[i].1 = .array(Array(w.metadata[i].1.array!.dropLast()))
        expectRefused(w.serialize(), naming: ["\(key) has \(n - 1) entries for \(n) tokens"])
    }

    // MARK: 5. Hyperparameters

    /// A metadata value set to a hostile one, and what its refusal says.
    static let hostileHyperparameters: [(String, GGUFValue, String)] = [
        ("gemma3.block_count", .uint64(1_000_000_000), "gemma3.block_count is 1000000000 but the file holds only 41 tensors"),
        ("gemma3.block_count", .int32(-3), "gemma3.block_count is -3, not in 1...2147483647"),
        ("gemma3.context_length", .uint64(1 << 40), "gemma3.context_length is 1099511627776, not in 1...2147483647"),
        ("gemma3.context_length", .uint32((1 << 24) + 1), "gemma3.context_length is 16777217, more than the 16777216 positions supported"),
        ("gemma3.attention.head_count", .uint32(0), "gemma3.attention.head_count is 0, not in 1...2147483647"),
        ("gemma3.attention.head_count_kv", .uint32(3), "gemma3.attention.head_count 2 is not a multiple of attention.head_count_kv 3"),
        ("gemma3.attention.key_length", .uint64(1 << 40), "gemma3.attention.key_length is 1099511627776, not in 1...2147483647"),
        ("gemma3.feed_forward_length", .uint32(0), "gemma3.feed_forward_length is 0, not in 1...2147483647"),
        ("gemma3.rope.dimension_count", .uint32(48), "gemma3.rope.dimension_count 48 must be even and at most the head dimension 32"),
        ("gemma3.attention.sliding_window", .uint32(0), "gemma3.attention.sliding_window is 0, not in 1...2147483647"),
        ("gemma3.attention.sliding_window_pattern", .int32(-1), "gemma3.attention.sliding_window_pattern is -1, not in 1...2147483647"),
    ]

    @Test(arguments: hostileHyperparameters)
    func anAbsurdHyperparameterIsRefusedByKey(key: String, value: GGUFValue, says: String) {
        var w = SyntheticModel.writer()
        w.set(key, value)
        expectRefused(w.serialize(), naming: [says])
    }

    @Test func anEmbeddingTheHeadsDoNotDivideIsRefused() {
        // Without key_length the head dimension is embedding_length / head_count: 64 / 6 leaves a remainder.
        var w = SyntheticModel.writer()
        w.remove(key: "gemma3.attention.key_length")
        w.remove(key: "gemma3.attention.value_length")
        w.set("gemma3.attention.head_count", .uint32(6))
        expectRefused(w.serialize(), naming: ["gemma3.embedding_length 64 is not a multiple of attention.head_count 6"])
    }
}

// MARK: - Loading as `zebra serve` does

/// The model and tokenizer from a file, as `Loaded` in Sources/zebra/Commands.swift makes them for
/// `zebra serve`: the transformer (file, config, weights) from the path, then the tokenizer from its file.
private func load(path: String) throws -> (Transformer, Tokenizer) {
    let model = try Transformer(path: path, pool: sharedPool)
    return (model, try Tokenizer(file: model.weights.file))
}

/// Expects loading the file at `path` to throw an error whose description contains each of `words`.
private func expectRefused(path: String, naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        _ = try load(path: path)
        Issue.record("the hostile model loaded; expected an error saying \(words)", sourceLocation: sourceLocation)
    } catch {
        let text = "\(error)"
        for w in words { #expect(text.contains(w), "error \"\(text)\" does not say \"\(w)\"", sourceLocation: sourceLocation) }
    }
}

/// The same for a file of these bytes.
private func expectRefused(_ bytes: [UInt8], naming words: [String], sourceLocation: SourceLocation = #_sourceLocation) {
    do {
        let path = try scratchFile(bytes)
        expectRefused(path: path, naming: words, sourceLocation: sourceLocation)
    } catch {
        Issue.record(error, sourceLocation: sourceLocation)
    }
}

private func load(_ bytes: [UInt8]) throws -> (Transformer, Tokenizer) { try load(path: scratchFile(bytes)) }

/// Writes `bytes` to a new file in the test process's scratch directory (removed at exit).
private func scratchFile(_ bytes: [UInt8]) throws -> String {
    let path = ScratchFiles.path("hostile", suffix: ".gguf")
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    return path
}

// MARK: - Changing a synthetic model

private extension GGUFWriter {
    mutating func set(_ key: String, _ value: GGUFValue) {
        if let i = metadata.firstIndex(where: { $0.0 == key }) { metadata[i].1 = value } else { add(key, value) }
    }

    mutating func remove(key: String) { metadata.removeAll { $0.0 == key } }
    mutating func remove(tensor name: String) { tensors.removeAll { $0.name == name } }

    /// Replaces (or adds) tensor `name` by an F32 one of `dims`.
    mutating func replace(tensor name: String, dims: [Int]) {
        remove(tensor: name)
        addF32(name, dims: dims, Array(repeating: 0.01, count: dims.reduce(1, *)))
    }
}

// Byte surgery for the lies the writer cannot tell (it derives every size and offset itself).

/// The index just past the first GGUF string `s` (u64 length, then UTF-8) in `b`: where a key's value
/// type or a tensor's directory fields begin.
private func afterString(_ s: String, in b: [UInt8]) -> Int {
    var pattern: [UInt8] = []
    withUnsafeBytes(of: UInt64(s.utf8.count).littleEndian) { pattern += $0 }
    pattern += Array(s.utf8)
    let i = (0...(b.count - pattern.count)).first { i in b[i..<i + pattern.count].elementsEqual(pattern) }!
    return i + pattern.count
}

/// Where tensor `name`'s directory entry stores its dimensions (u64 each, innermost first) and its data
/// offset; between them the u32 type.
private func tensorEntry(_ name: String, in b: [UInt8]) -> (dims: Int, offset: Int) {
    let i = afterString(name, in: b)
    let nDims = Int(b[i])   // u32, 1 to 4
    return (i + 4, i + 4 + 8 * nDims + 4)
}

private func getU64(at i: Int, in b: [UInt8]) -> UInt64 {
    (0..<8).reduce(0) { v, k in v | UInt64(b[i + k]) << (8 * k) }
}

private func putU64(_ v: UInt64, at i: Int, in b: inout [UInt8]) {
    for k in 0..<8 { b[i + k] = UInt8(truncatingIfNeeded: v >> (8 * k)) }
}
