// The three endpoints' wire formats, each in one place: what a finished answer looks like as JSON, and
// which server-sent events a stream carries. The request's orchestration (CompletionJob: validate,
// submit, n choices, cancel, finish, errors) is shared and asks its format what to send.
import Engine
import Foundation
import Tokenizer

/// One choice's answer so far.
struct ChoiceState: Sendable {
    var text = ""
    var tokens: [SampledToken] = []
    var finish: FinishReason?
    var completionTokens = 0
    var promptTokens = 0
    var cachedTokens = 0
    var echo = ""
    /// echo with logprobs: the prompt's ids and the scores of ids 1... (set before the first token).
    var promptIDs: [Int32] = []
    var promptScores: [SampledToken]?
    /// UTF-16 offset of the next streamed token in the choice's text (logprobs.text_offset).
    var streamOffset = 0
    /// With tools: the answer's text already streamed as content (a prefix that cannot be a call).
    var sentContent = ""
}

/// What a format needs to know of a request's answer.
struct Answer {
    let id: String
    let created: Int
    let model: String
    let body: CompletionRequest
    let choices: [ChoiceState]
    let tokenizer: Tokenizer

    /// OpenAI's usage object; `prompt_tokens_details.cached_tokens`: prompt tokens taken from the prefix
    /// cache instead of computed. Prompt tokens count once per prompt, not once per n.
    var usage: [String: Any] {
        var p = 0, cached = 0
        for (i, c) in choices.enumerated() where i % body.n == 0 { p += c.promptTokens; cached += c.cachedTokens }
        let c = choices.reduce(0) { $0 + $1.completionTokens }
        return ["prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c, "prompt_tokens_details": ["cached_tokens": cached]]
    }

    func piece(_ token: Int32) -> String { String(decoding: tokenizer.pieceBytes(token), as: UTF8.self) }
}

/// A server-sent event: an optional event name and its data.
struct ServerEvent {
    var name: String?
    var data: String
    init(_ data: String, name: String? = nil) { self.data = data; self.name = name }
    init(json: Any, name: String? = nil) { self.init(encodeJSON(json), name: name) }
}

protocol WireFormat: AnyObject, Sendable {
    /// The prefix of the answer's id.
    var idPrefix: String { get }
    /// The whole answer as one JSON object.
    func full(_ a: Answer) -> [String: Any]
    /// Events that open a stream.
    func streamStart(_ a: Answer) -> [ServerEvent]
    /// Events for new text of choice k (the sampled token that made it, for logprobs).
    func delta(_ a: Answer, choice k: Int, text: String, token: SampledToken) -> [ServerEvent]
    /// Events for the prompt's scores of choice k, before any token (completions' echo with logprobs).
    func promptScores(_ a: Answer, choice k: Int) -> [ServerEvent]
    /// Events when choice k finishes.
    func choiceDone(_ a: Answer, choice k: Int) -> [ServerEvent]
    /// Events that close the stream (the caller ends the response after them).
    func streamEnd(_ a: Answer) -> [ServerEvent]
}

extension WireFormat {
    func promptScores(_ a: Answer, choice k: Int) -> [ServerEvent] { [] }
}

/// JSON text of Foundation objects, keys sorted (stable output).
func encodeJSON(_ o: Any) -> String {
    String(decoding: (try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data(), as: UTF8.self)
}
