// End-to-end generation on the synthetic model and on Gemma 3: streaming text, stop conditions, seeds.
import Foundation
import GGUF
import Kernels
import Model
import Testing
import TestSupport
import Tokenizer
@testable import Engine

let enginePool = KernelPool(threads: 2)

func generator(_ path: String) throws -> Generator {
    let model = try Transformer(path: path, pool: enginePool)
    return Generator(model: model, tokenizer: try Tokenizer(file: model.weights.file))
}

@Test func streamedTextEqualsDecodedTokens() throws {
    let g = try generator(TestModels.gemma)
    var tokens: [Int32] = [], text = ""
    let st = try g.generate(prompt: g.tokenizer.encode("The capital of France is"), maxTokens: 12, params: .greedy) { t, s in
        tokens.append(t.token); text += s; return true
    }
    #expect(st.generatedTokens == 12 && st.finishReason == .length)
    #expect(text == g.tokenizer.decode(tokens))
    // llama.cpp's greedy text up to its first near-tie (gemma3-greedy.json: margins 0.51, 1.82, 2.64,
    // 0.67, then 0.03); the parity tests check the rest of the continuations against the fixtures.
    #expect(text.hasPrefix(" the capital of the"))
}

@Test func seededSamplingIsReproducible() throws {
    let path = try SyntheticModel.write()
    let g = try generator(path)
    func run(_ seed: UInt64) throws -> [Int32] {
        var out: [Int32] = []
        try g.generate(prompt: [2, 270, 271], maxTokens: 20, params: SamplingParams(temperature: 20, seed: seed), ignoreEOS: true) { t, _ in
            out.append(t.token); return true
        }
        return out
    }
    #expect(try run(1) == run(1))
    #expect(try run(1) != run(2))
}

@Test func rejectsEmptyAndOverlongPrompts() throws {
    let g = try generator(try SyntheticModel.write())
    #expect(throws: EngineError.self) { try g.generate(prompt: [], maxTokens: 4, params: .greedy) { _, _ in true } }
    #expect(throws: EngineError.self) {
        try g.generate(prompt: [Int32](repeating: 270, count: 250), maxTokens: 10, params: .greedy) { _, _ in true }
    }
    // The cache is left empty after errors and after completion.
    try g.generate(prompt: [2, 270], maxTokens: 3, params: .greedy, ignoreEOS: true) { _, _ in true }
    #expect(g.cache.liveSequences.isEmpty && g.cache.allocatedBytes == 0)
}

@Test func stopsEarlyWhenAsked() throws {
    let g = try generator(try SyntheticModel.write())
    var n = 0
    let st = try g.generate(prompt: [2, 270], maxTokens: 50, params: .greedy, ignoreEOS: true) { _, _ in n += 1; return n < 5 }
    #expect(n == 5 && st.generatedTokens == 5 && st.finishReason == .stop)
}
