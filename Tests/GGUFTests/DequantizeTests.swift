// Dequantization must be bit-exact with the gguf package's reference (fixtures from scripts/make_fixtures.py).
import Foundation
import GGUF
import Testing
import TestSupport

struct DequantCase: Decodable { let type: String; let type_id: UInt32; let bytes: String; let bits: [UInt32] }
struct DequantFixture: Decodable { let cases: [DequantCase] }

@Test func dequantizationIsBitExactWithGGUFPy() throws {
    let f = try JSONDecoder().decode(DequantFixture.self, from: TestModels.fixture("GGUFTests", "dequant.json"))
    #expect(Set(f.cases.map(\.type)) == ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"])
    for c in f.cases {
        let type = try #require(GGMLType(rawValue: c.type_id))
        #expect(type.name == c.type)
        let bytes = [UInt8](Data(base64Encoded: c.bytes)!)
        let got = dequantize(type, bytes: bytes)
        #expect(got.count == c.bits.count, "\(c.type)")
        let mismatches = zip(got, c.bits).filter { $0.0.bitPattern != $0.1 }.count
        #expect(mismatches == 0, "\(c.type): \(mismatches) values differ")
    }
}

@Test func blockGeometry() {
    #expect(GGMLType.q8_0.blockBytes == 34 && GGMLType.q8_0.blockElements == 32)
    #expect(GGMLType.q4_K.blockBytes == 144 && GGMLType.q6_K.blockBytes == 210 && GGMLType.q5_K.blockBytes == 176)
    #expect(GGMLType.q4_0.blockBytes == 18 && GGMLType.q4_1.blockBytes == 20)
    #expect(GGMLType.q5_0.blockBytes == 22 && GGMLType.q5_1.blockBytes == 24)
}
