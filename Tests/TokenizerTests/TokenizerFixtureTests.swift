// Token ids must equal llama.cpp's on the real models (fixtures from scripts/make_fixtures.py).
import Foundation
import GGUF
import Testing
import TestSupport
@testable import Tokenizer

struct TokenCase: Decodable { let text: String; let with_bos: [Int32]; let no_bos: [Int32] }
struct TokenFixture: Decodable { let cases: [TokenCase] }

func checkFixture(model: String, fixture: String) throws {
    let tok = try Tokenizer(file: GGUFFile(path: model))
    let f = try JSONDecoder().decode(TokenFixture.self, from: TestModels.fixture("TokenizerTests", fixture))
    #expect(f.cases.count == 118)   // the README's count
    var failures = 0
    for c in f.cases {
        let a = tok.encode(c.text, addSpecial: true)
        let b = tok.encode(c.text, addSpecial: false)
        if a != c.with_bos || b != c.no_bos {
            failures += 1
            Issue.record("\(fixture): \(c.text.debugDescription): got \(b), llama.cpp \(c.no_bos)")
        }
    }
    #expect(failures == 0)
}

@Test func gemmaTokenizerMatchesLlamaCpp() throws {
    try checkFixture(model: TestModels.gemma, fixture: "gemma3-tokens.json")
}

@Test func smolLMTokenizerMatchesLlamaCpp() throws {
    try checkFixture(model: TestModels.smollm, fixture: "smollm2-tokens.json")
}

@Test func decodeRoundTripsPlainText() throws {
    for (path, control) in [(TestModels.gemma, "<start_of_turn>"), (TestModels.smollm, "<|im_start|>")] {
        let tok = try Tokenizer(file: GGUFFile(path: path))
        for s in ["Hello, world!", "naïve café 你好 😀", "  spaces\tand\ttabs\n\nnewlines", "code: x[i] += 1;"] {
            #expect(tok.decode(tok.encode(s, addSpecial: false)) == s, "\(path): \(s)")
        }
        // Control tokens decode to nothing.
        let controls = tok.encode(control + "hi", addSpecial: true).filter { tok.vocab.types[Int($0)] == .control }
        #expect(!controls.isEmpty, "\(path): \(control) is a control token")
        #expect(tok.decode(controls) == "", "\(path)")
    }
}

@Test func streamingDecoderNeverSplitsACharacter() throws {
    let tok = try Tokenizer(file: GGUFFile(path: TestModels.gemma))
    let text = "😀 emoji, 你好, é and 👨‍👩‍👧"
    let ids = tok.encode(text, addSpecial: false)
    var d = StreamingDecoder()
    var out = ""
    for id in ids {
        let piece = d.append(tok.pieceBytes(id))
        #expect(!piece.contains("\u{FFFD}"))
        out += piece
    }
    out += d.flush()
    #expect(out == text)
}

@Test func streamingDecoderHoldsIncompleteBytes() {
    var d = StreamingDecoder()
    let euro: [UInt8] = [0xE2, 0x82, 0xAC]
    #expect(d.append([0x41, euro[0]]) == "A")
    #expect(d.append([euro[1]]) == "")
    #expect(d.append([euro[2], 0x42]) == "€B")
    #expect(d.append([0xF0, 0x9F]) == "")
    #expect(d.flush() == "\u{FFFD}")
}

@Test func endOfGenerationTokens() throws {
    let g = try Tokenizer(file: GGUFFile(path: TestModels.gemma))
    #expect(g.isEndOfGeneration(1) && g.isEndOfGeneration(106) && !g.isEndOfGeneration(2))
    let s = try Tokenizer(file: GGUFFile(path: TestModels.smollm))
    #expect(s.isEndOfGeneration(2))
}
