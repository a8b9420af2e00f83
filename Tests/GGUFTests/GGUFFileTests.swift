// Reading GGUF files: every metadata type, the tensor directory, real models, and corrupted inputs.
import Foundation
import GGUF
import Testing
import TestSupport

@Test func roundTripsEveryMetadataType() throws {
    var w = GGUFWriter()
    w.add("u8", .uint8(200)); w.add("i8", .int8(-5)); w.add("u16", .uint16(60000)); w.add("i16", .int16(-300))
    w.add("u32", .uint32(4_000_000_000)); w.add("i32", .int32(-7)); w.add("u64", .uint64(1 << 40)); w.add("i64", .int64(-(1 << 40)))
    w.add("f32", .float32(1.5)); w.add("f64", .float64(-2.25)); w.add("b", .bool(true)); w.add("s", .string("héllo"))
    w.add("arr", .array([.int32(1), .int32(2)]))
    w.add("nested", .array([.array([.string("a"), .string("b")]), .array([.string("c")])]))
    w.add("general.alignment", .uint32(64))
    w.alignment = 64
    w.addF32("t", dims: [4, 2], [1, 2, 3, 4, 5, 6, 7, 8])
    let f = try GGUFFile(bytes: w.serialize())
    #expect(f.version == 3)
    #expect(f.metadata["u8"] == .uint8(200) && f.metadata["i8"] == .int8(-5))
    #expect(f.metadata["u16"] == .uint16(60000) && f.metadata["i16"] == .int16(-300))
    #expect(f.metadata["u32"] == .uint32(4_000_000_000) && f.metadata["i32"] == .int32(-7))
    #expect(f.metadata["u64"] == .uint64(1 << 40) && f.metadata["i64"] == .int64(-(1 << 40)))
    #expect(f.metadata["f32"] == .float32(1.5) && f.metadata["f64"] == .float64(-2.25))
    #expect(f.metadata["b"] == .bool(true) && f.metadata["s"] == .string("héllo"))
    #expect(f.metadata["arr"] == .array([.int32(1), .int32(2)]))
    #expect(f.metadata["nested"]?.array?.count == 2)
    #expect(f.alignment == 64)
    let t = try f.tensor("t")
    #expect(t.dims == [4, 2] && t.rowCount == 2 && t.type == .f32)
    #expect(t.fileOffset % 64 == 0)
    #expect(f.floats(t) == [1, 2, 3, 4, 5, 6, 7, 8])
    #expect(f.row(t, 1) == [5, 6, 7, 8])
}

@Test func readsTheRealModels() throws {
    let g = try GGUFFile(path: TestModels.gemma)
    #expect(g.architecture == "gemma3")
    #expect(try g.int("gemma3.block_count") == 18)
    #expect(try g.int("gemma3.attention.sliding_window") == 512)
    #expect(g.tensors.count == 236)
    #expect(try g.tensor("token_embd.weight").type == .q8_0)
    #expect(try g.strings("tokenizer.ggml.tokens").count == 262_144)
    let s = try GGUFFile(path: TestModels.smollm)
    #expect(s.architecture == "llama")
    #expect(try s.strings("tokenizer.ggml.merges").count == 48_900)
    #expect(try s.tensor("blk.0.attn_q.weight").type == .q4_1)
}

func smallFile() -> [UInt8] {
    var w = GGUFWriter()
    w.add("general.architecture", .string("gemma3"))
    w.add("tokens", .array([.string("a"), .string("bb")]))
    w.addF32("x", dims: [8], [1, 2, 3, 4, 5, 6, 7, 8])
    return w.serialize()
}

@Test func truncatedFilesFailCleanlyAtEveryLength() {
    let full = smallFile()
    for n in 0..<full.count - 1 {
        // Any prefix is either a clean error or (for cuts inside trailing padding/data) still rejected.
        #expect(throws: GGUFError.self, "prefix of \(n) bytes") { _ = try GGUFFile(bytes: Array(full[..<n])) }
    }
}

@Test func badMagicAndVersion() {
    var b = smallFile()
    b[0] = 0x58
    #expect(throws: GGUFError.badMagic(found: 0x4655_4758)) { _ = try GGUFFile(bytes: b) }
    var v = smallFile()
    v[4] = 9
    #expect(throws: GGUFError.unsupportedVersion(9)) { _ = try GGUFFile(bytes: v) }
}

@Test func tensorOffsetPastTheEnd() {
    var w = GGUFWriter()
    w.addF32("x", dims: [8], [1, 2, 3, 4, 5, 6, 7, 8])
    var b = w.serialize()
    // The tensor's offset is the last u64 of its info, just before the alignment padding.
    let nameEnd = b.indices.first { i in i + 1 < b.count && b[i] == UInt8(ascii: "x") && b[i - 1] == 0 }!
    let offsetAt = nameEnd + 1 + 4 + 8 + 4
    b[offsetAt + 2] = 0xFF
    #expect {
        _ = try GGUFFile(bytes: b)
    } throws: { e in
        if case .tensorOutOfBounds(let name, _, _) = e as? GGUFError { return name == "x" }
        return false
    }
}

@Test func unknownTensorType() {
    var w = GGUFWriter()
    w.tensors.append(.init(name: "x", dims: [32], type: .q8_0, bytes: Array(repeating: 0, count: 34)))
    var b = w.serialize()
    let typeAt = b.indices.first { i in b[i] == UInt8(ascii: "x") && b[i - 1] == 0 }! + 1 + 4 + 8
    b[typeAt] = 99
    #expect(throws: GGUFError.unknownTensorType(99, tensor: "x")) { _ = try GGUFFile(bytes: b) }
}

@Test func hugeCountsAreRejectedNotAllocated() {
    var b = smallFile()
    // kv count (bytes 16..<24) claims 2^60 entries.
    b[23] = 0x10
    #expect(throws: GGUFError.self) { _ = try GGUFFile(bytes: b) }
}

@Test func missingFileAndDirectory() {
    #expect(throws: GGUFError.self) { _ = try GGUFFile(path: "/nonexistent/model.gguf") }
    #expect(throws: GGUFError.self) { _ = try GGUFFile(path: "/tmp") }
}

@Test func randomCorruptionNeverCrashes() throws {
    let good = SyntheticModel.bytes()
    var state: UInt64 = 99
    for _ in 0..<300 {
        var b = good
        for _ in 0..<4 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let i = Int((state >> 33) % UInt64(min(b.count, 4096)))
            b[i] = UInt8(truncatingIfNeeded: state >> 13)
        }
        _ = try? GGUFFile(bytes: b)   // must return or throw, never trap or read out of bounds
    }
}

@Test func arraysNestToTheLimitAndNoDeeper() throws {
    func nested(_ depth: Int) -> GGUFValue { depth == 0 ? .uint8(1) : .array([nested(depth - 1)]) }
    var ok = GGUFWriter()
    ok.add("n", nested(8))
    #expect(try GGUFFile(bytes: ok.serialize()).metadata["n"] == nested(8))
    var deep = GGUFWriter()
    deep.add("n", nested(9))
    #expect(throws: GGUFError.arrayNestedTooDeep(key: "n", limit: 8)) { _ = try GGUFFile(bytes: deep.serialize()) }
}

@Test func arrayCountsAreHeldToTheElementsSmallestSize() {
    var w = GGUFWriter()
    w.add("s", .array([.string(""), .string("")]))
    // The header, the key, two u32 types, the count and two empty strings; without the padding after them.
    let countAt = 24 + 8 + 1 + 4 + 4
    var b = Array(w.serialize()[..<(countAt + 8 + 16)])
    // The count says 3: the 16 bytes left hold at most 2 strings.
    b[countAt] = 3
    #expect(throws: GGUFError.arrayTooLong(key: "s", count: 3, bytesLeft: 16)) { _ = try GGUFFile(bytes: b) }
}

@Test func misalignedTensorOffset() {
    var w = GGUFWriter()
    w.addF32("x", dims: [8], [1, 2, 3, 4, 5, 6, 7, 8])
    w.addF32("y", dims: [8], [1, 2, 3, 4, 5, 6, 7, 8])
    var b = w.serialize()
    // x's offset (0) moves to 4: still inside the file, no longer aligned.
    let offsetAt = b.indices.first { i in b[i] == UInt8(ascii: "x") && b[i - 1] == 0 }! + 1 + 4 + 8 + 4
    b[offsetAt] = 4
    #expect(throws: GGUFError.misalignedTensor(tensor: "x", offset: 4, alignment: 32)) { _ = try GGUFFile(bytes: b) }
}
