// Constrained decoding on the real models: random schemas from the supported subset x seeds x both
// vocabularies; every output that finishes with "stop" parses and validates (a reference validator,
// not the grammar), none fails, and a constrained request gives the same tokens alone or batched.
import Foundation
import Grammar
import Kernels
import Model
import Testing
import TestSupport
import Tokenizer
@testable import Engine

func realScheduler(_ path: String, _ configure: (inout SchedulerConfig) -> Void = { _ in }) throws -> Scheduler {
    let model = try Transformer(path: path, pool: KernelPool(threads: 2))
    var c = SchedulerConfig()
    c.kvBudgetBytes = 256 << 20
    configure(&c)
    return Scheduler(model: model, tokenizer: try Tokenizer(file: model.weights.file), config: c)
}

func constraint(_ schema: String, _ tok: Tokenizer, _ trie: TokenTrie) throws -> GrammarConstraint {
    let g = try JSONSchema.compile(try JSON.parse(schema))
    return GrammarConstraint(grammar: g, trie: trie, endTokens: (0..<Int32(tok.vocab.count)).filter { tok.isEndOfGeneration($0) })
}

@Test(.serialized, arguments: [TestModels.smollm, TestModels.gemma])
func randomSchemasAlwaysGiveValidJSON(_ path: String) throws {
    let s = try realScheduler(path); defer { s.stop() }
    let tok = s.tokenizer
    let trie = TokenTrie(pieces: (0..<tok.vocab.count).map { tok.pieceBytes(Int32($0)) })
    var gen = RandomSchema(seed: 7)
    var jobs: [(schema: String, params: SamplingParams)] = []
    for i in 0..<6 {
        let schema = gen.schema()
        jobs.append((schema, .greedy))
        jobs.append((schema, SamplingParams(temperature: 1.0, topP: 0.95, seed: UInt64(i))))
        jobs.append((schema, SamplingParams(temperature: 1.5, topK: 40, minP: 0.02, presencePenalty: 1, seed: UInt64(100 + i))))
    }
    let c = Collector()
    let prompt = tok.encode("Here is the requested JSON document:\n")
    for (k, j) in jobs.enumerated() {
        try s.submit(GenerationRequest(prompt: prompt, maxTokens: 120, params: j.params, constraint: try constraint(j.schema, tok, trie)), sink: c.sink(k))
    }
    // An unconstrained request in the same batch.
    try s.submit(GenerationRequest(prompt: prompt, maxTokens: 20, params: .greedy, ignoreEOS: true), sink: c.sink(999))
    for _ in 0...jobs.count { c.wait(seconds: 300) }
    var complete = 0
    for (k, j) in jobs.enumerated() {
        #expect(c.failure(k) == nil, "\(j.schema): \(c.failure(k) ?? "")")
        let (_, text, finish) = c.result(k)
        guard finish == .stop else { #expect(finish == .length, "\(j.schema)"); continue }
        complete += 1
        guard let doc = try? JSON.parse(text) else { Issue.record("not JSON: \(text) for \(j.schema)"); continue }
        let v = SchemaValidator.violation(doc, try JSON.parse(j.schema))
        #expect(v == nil, "\(text) for \(j.schema): \(v ?? "")")
    }
    #expect(complete >= jobs.count / 2, "most outputs complete within 120 tokens")
    #expect(c.result(999).2 == .length && c.result(999).0.count == 20)
}

@Test func constrainedOutputIsTheSameAloneOrBatched() throws {
    let s = try realScheduler(TestModels.smollm); defer { s.stop() }
    let tok = s.tokenizer
    let trie = TokenTrie(pieces: (0..<tok.vocab.count).map { tok.pieceBytes(Int32($0)) })
    let schema = #"{"type":"object","properties":{"city":{"type":"string","maxLength":20},"population":{"type":"integer","minimum":0}},"required":["city","population"],"additionalProperties":false}"#
    let request = GenerationRequest(prompt: tok.encode("The largest city in France, as JSON:"), maxTokens: 40,
                                    params: SamplingParams(temperature: 0.8, seed: 42), constraint: try constraint(schema, tok, trie))
    let alone = Collector()
    try s.submit(request, sink: alone.sink(0))
    alone.wait(seconds: 120)
    let crowd = Collector()
    for i in 1..<6 {
        try s.submit(GenerationRequest(prompt: tok.encode("Story \(i):"), maxTokens: 30, params: SamplingParams(temperature: 1, seed: UInt64(i)), ignoreEOS: true), sink: crowd.sink(i))
    }
    try s.submit(request, sink: crowd.sink(0))
    for _ in 0..<6 { crowd.wait(seconds: 120) }
    #expect(alone.result(0).0 == crowd.result(0).0)
    #expect(alone.result(0).2 == .stop)
    // The token that completes the object ends the answer: no end-of-generation step after it.
    #expect(alone.result(0).0.last.map { !tok.isEndOfGeneration($0) } == true)
    let doc = try JSON.parse(alone.result(0).1)
    #expect(SchemaValidator.violation(doc, try JSON.parse(schema)) == nil)
}

@Test func maxTokensBeforeTheEndIsLength() throws {
    let s = try realScheduler(TestModels.smollm); defer { s.stop() }
    let tok = s.tokenizer
    let trie = TokenTrie(pieces: (0..<tok.vocab.count).map { tok.pieceBytes(Int32($0)) })
    let c = Collector()
    try s.submit(GenerationRequest(prompt: tok.encode("JSON:"), maxTokens: 3, params: .greedy,
                                   constraint: try constraint(#"{"type":"array","items":{"type":"string"},"minItems":5}"#, tok, trie)), sink: c.sink(0))
    c.wait(seconds: 60)
    #expect(c.result(0).2 == .length && c.result(0).0.count == 3)
    #expect(c.result(0).1.hasPrefix("["))
}
