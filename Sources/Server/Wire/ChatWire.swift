// POST /v1/chat/completions: chat.completion objects (an assistant message per choice), the chat
// logprobs shape ({content: [{token, logprob, bytes, top_logprobs}]}), and chat.completion.chunk streams
// that open each choice with the role, then `data: [DONE]`.
import Engine
import Foundation

final class ChatWire: WireFormat {
    let idPrefix = "chatcmpl-"

    private func chunk(_ a: Answer, _ choices: [Any], usage: [String: Any]? = nil) -> [String: Any] {
        var o: [String: Any] = ["id": a.id, "object": "chat.completion.chunk", "created": a.created, "model": a.model, "choices": choices]
        if let usage { o["usage"] = usage }
        return o
    }

    private func logprobs(_ a: Answer, _ tokens: [SampledToken]) -> Any {
        guard a.body.logprobs != nil else { return NSNull() }
        func entry(_ id: Int32, _ lp: Float) -> [String: Any] {
            let b = a.tokenizer.pieceBytes(id)
            return ["token": String(decoding: b, as: UTF8.self), "logprob": Double(lp), "bytes": b.map(Int.init)]
        }
        return ["content": tokens.map { t -> [String: Any] in
            var e = entry(t.token, t.logprob)
            e["top_logprobs"] = t.top.map { entry($0.token, $0.logprob) }
            return e
        }]
    }

    func full(_ a: Answer) -> [String: Any] {
        let arr: [Any] = a.choices.enumerated().map { k, c in
            ["index": k, "message": ["role": "assistant", "content": c.text] as [String: Any],
             "logprobs": logprobs(a, c.tokens), "finish_reason": c.finish?.rawValue ?? "length"] as [String: Any]
        }
        return ["id": a.id, "object": "chat.completion", "created": a.created, "model": a.model, "choices": arr, "usage": a.usage]
    }

    func streamStart(_ a: Answer) -> [ServerEvent] {
        a.choices.indices.map { k in
            ServerEvent(json: chunk(a, [["index": k, "delta": ["role": "assistant", "content": ""], "logprobs": NSNull(),
                                         "finish_reason": NSNull()] as [String: Any]]))
        }
    }

    func delta(_ a: Answer, choice k: Int, text: String, token: SampledToken) -> [ServerEvent] {
        [ServerEvent(json: chunk(a, [["index": k, "delta": ["content": text], "logprobs": logprobs(a, [token]),
                                      "finish_reason": NSNull()] as [String: Any]]))]
    }

    func choiceDone(_ a: Answer, choice k: Int) -> [ServerEvent] {
        [ServerEvent(json: chunk(a, [["index": k, "delta": [String: Any](), "logprobs": NSNull(),
                                      "finish_reason": a.choices[k].finish?.rawValue ?? "length"] as [String: Any]]))]
    }

    func streamEnd(_ a: Answer) -> [ServerEvent] {
        (a.body.includeUsage ? [ServerEvent(json: chunk(a, [], usage: a.usage))] : []) + [ServerEvent("[DONE]")]
    }
}
