// POST /v1/completions: OpenAI's legacy text_completion objects and chunks, the legacy logprobs shape
// (tokens, token_logprobs, top_logprobs, text_offset), echo, and `data: [DONE]` at the end of a stream.
import Engine
import Foundation

final class CompletionsWire: WireFormat {
    let idPrefix = "cmpl-"

    private func object(_ a: Answer, _ choices: [Any], usage: [String: Any]? = nil) -> [String: Any] {
        var o: [String: Any] = ["id": a.id, "object": "text_completion", "created": a.created, "model": a.model, "choices": choices]
        if let usage { o["usage"] = usage }
        return o
    }

    /// The legacy logprobs object for `generated` tokens of a choice (offsets after its echo), preceded,
    /// with echo, by the prompt's tokens (the first has no log-probability: null).
    private func logprobs(_ a: Answer, _ c: ChoiceState, generated: [SampledToken], offset: Int? = nil) -> Any {
        guard a.body.logprobs != nil else { return NSNull() }
        var textOffset = 0
        var strs: [String] = [], lps: [Any] = [], tops: [Any] = [], offs: [Int] = []
        func add(_ token: Int32, _ scored: SampledToken?) {
            let s = a.piece(token)
            strs.append(s)
            offs.append(textOffset)
            textOffset += s.utf16.count
            guard let t = scored else { lps.append(NSNull()); tops.append(NSNull()); return }
            lps.append(Double(t.logprob))
            var top: [String: Double] = [:]
            for alt in t.top { top[a.piece(alt.token)] = Double(alt.logprob) }
            tops.append(top)
        }
        if let scores = c.promptScores {
            for (i, id) in c.promptIDs.enumerated() { add(id, i == 0 ? nil : scores[i - 1]) }
        }
        textOffset = offset ?? c.echo.utf16.count
        for t in generated { add(t.token, t) }
        return ["tokens": strs, "token_logprobs": lps, "top_logprobs": tops, "text_offset": offs]
    }

    func full(_ a: Answer) -> [String: Any] {
        let arr: [Any] = a.choices.enumerated().map { k, c in
            ["text": c.echo + c.text, "index": k, "logprobs": logprobs(a, c, generated: c.tokens),
             "finish_reason": c.finish?.rawValue ?? "length"] as [String: Any]
        }
        return object(a, arr, usage: a.usage)
    }

    func streamStart(_ a: Answer) -> [ServerEvent] {
        // With logprobs, the echo goes out with the prompt's scores instead.
        guard a.body.echo && a.body.logprobs == nil else { return [] }
        return a.choices.enumerated().filter { !$0.element.echo.isEmpty }.map { k, c in
            ServerEvent(json: object(a, [["text": c.echo, "index": k, "logprobs": NSNull(), "finish_reason": NSNull()] as [String: Any]]))
        }
    }

    func promptScores(_ a: Answer, choice k: Int) -> [ServerEvent] {
        let c = a.choices[k]
        return [ServerEvent(json: object(a, [["text": c.echo, "index": k, "logprobs": logprobs(a, c, generated: []),
                                              "finish_reason": NSNull()] as [String: Any]]))]
    }

    func delta(_ a: Answer, choice k: Int, text: String, token: SampledToken) -> [ServerEvent] {
        // (The caller advanced streamOffset past this token: its offset is where the text stood before.)
        let c = a.choices[k]
        let off = c.echo.utf16.count + c.streamOffset - a.piece(token.token).utf16.count
        let lp = a.body.logprobs == nil ? NSNull() as Any : logprobs(a, ChoiceState(), generated: [token], offset: off)
        return [ServerEvent(json: object(a, [["text": text, "index": k, "logprobs": lp, "finish_reason": NSNull()] as [String: Any]]))]
    }

    func choiceDone(_ a: Answer, choice k: Int) -> [ServerEvent] {
        [ServerEvent(json: object(a, [["text": "", "index": k, "logprobs": NSNull(),
                                       "finish_reason": a.choices[k].finish?.rawValue ?? "length"] as [String: Any]]))]
    }

    func streamEnd(_ a: Answer) -> [ServerEvent] {
        (a.body.includeUsage ? [ServerEvent(json: object(a, [], usage: a.usage))] : []) + [ServerEvent("[DONE]")]
    }
}
