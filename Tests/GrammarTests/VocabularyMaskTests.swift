// Token masks over the real vocabularies (Gemma 3: 262k SentencePiece tokens with byte fallback;
// SmolLM2: 49k GPT-2 byte-level BPE tokens): the trie walk must agree with checking every token alone.
import Foundation
import GGUF
import Grammar
import TestSupport
import Testing
import Tokenizer

func loadPieces(_ path: String) throws -> (Tokenizer, [[UInt8]]) {
    let t = try Tokenizer(file: try GGUFFile(path: path))
    return (t, (0..<t.vocab.count).map { t.pieceBytes(Int32($0)) })
}

@Test(arguments: [TestModels.gemma, TestModels.smollm])
func vocabularyMaskAgreesWithTokenChecks(_ path: String) throws {
    let (tok, pieces) = try loadPieces(path)
    var clock = ContinuousClock.now
    let trie = TokenTrie(pieces: pieces)
    let trieTime = ContinuousClock.now - clock
    let g = try JSONSchema.compile(try JSON.parse(#"{"type":"object","properties":{"name":{"type":"string"},"n":{"type":"integer","minimum":-5,"maximum":500},"tags":{"type":"array","items":{"enum":["a","日本"]}}},"required":["name","n","tags"],"additionalProperties":false}"#))
    let ends = (0..<Int32(pieces.count)).filter { tok.isEndOfGeneration($0) }
    let c = GrammarConstraint(grammar: g, trie: trie, endTokens: ends)
    let m = GrammarMatcher(g)
    // Walk a valid document a token at a time (each byte as its own token where the vocabulary has
    // it), checking the full mask against token-by-token checks at a few states.
    let doc = Array(#"{"name":"Zé \"q\"","n":-5,"tags":["日本","a"]}"#.utf8)
    var worst = Duration.zero
    for (i, byte) in doc.enumerated() {
        if i % 7 == 0 || i == 9 {
            clock = .now
            let mask = c.mask(m)
            worst = max(worst, ContinuousClock.now - clock)
            var mismatches = 0
            for t in pieces.indices {
                let bit = mask[t >> 6] >> UInt64(t & 63) & 1 == 1
                let want = c.allows(m, token: Int32(t), bytes: pieces[t])
                if bit != want { mismatches += 1 }
            }
            #expect(mismatches == 0, "at byte \(i)")
            #expect(mask.contains { $0 != 0 })
        }
        #expect(m.accept([byte]), "byte \(i)")
    }
    #expect(m.isFinished && m.isAccepting)
    print("vocabulary \(pieces.count): trie \(trie.count) nodes in \(trieTime), slowest mask \(worst)")
}
