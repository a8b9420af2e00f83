// POST /v1/chat/completions: chat.completion objects (an assistant message per choice), the chat
// logprobs shape ({content: [{token, logprob, bytes, top_logprobs}]}), and chat.completion.chunk streams
// that open each choice with the role, then `data: [DONE]`. With tools, an answer's `tool_calls` are
// parsed from its text (ToolCalls.swift); a stream then sends the text and the calls when the choice ends.
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

    /// A choice's text and calls (with tools), and its finish reason ("tool_calls" when it ended with calls).
    private func answer(_ a: Answer, _ k: Int) -> (content: String?, calls: [[String: Any]], finish: String) {
        let c = a.choices[k]
        let finish = c.finish?.rawValue ?? "length"
        guard let syntax = a.body.toolSyntax else { return (c.text, [], finish) }
        let (content, calls) = ToolCalls.parse(c.text, syntax: syntax)
        let json: [[String: Any]] = calls.enumerated().map { i, call in
            ["id": "call_\(a.id.suffix(12))\(k)x\(i)", "type": "function", "function": ["name": call.name, "arguments": call.arguments]]
        }
        return (content, json, calls.isEmpty || c.finish != .stop ? finish : "tool_calls")
    }

    func full(_ a: Answer) -> [String: Any] {
        let arr: [Any] = a.choices.enumerated().map { k, c in
            let (content, calls, finish) = answer(a, k)
            var message: [String: Any] = ["role": "assistant", "content": content ?? NSNull()]
            if !calls.isEmpty { message["tool_calls"] = calls }
            return ["index": k, "message": message, "logprobs": logprobs(a, c.tokens), "finish_reason": finish] as [String: Any]
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
        var events: [ServerEvent] = []
        let (content, calls, finish) = answer(a, k)
        if a.body.toolSyntax != nil {
            // With tools the rest of the answer was held back: its text, then each call whole (index, id,
            // name, arguments).
            let sent = a.choices[k].sentContent
            let rest = content.map { $0.hasPrefix(sent) ? String($0.dropFirst(sent.count)) : $0 } ?? ""
            if !rest.isEmpty {
                events.append(ServerEvent(json: chunk(a, [["index": k, "delta": ["content": rest], "logprobs": NSNull(), "finish_reason": NSNull()] as [String: Any]])))
            }
            for (i, call) in calls.enumerated() {
                var c = call
                c["index"] = i
                events.append(ServerEvent(json: chunk(a, [["index": k, "delta": ["tool_calls": [c]], "logprobs": NSNull(), "finish_reason": NSNull()] as [String: Any]])))
            }
        }
        events.append(ServerEvent(json: chunk(a, [["index": k, "delta": [String: Any](), "logprobs": NSNull(), "finish_reason": finish] as [String: Any]])))
        return events
    }

    func streamEnd(_ a: Answer) -> [ServerEvent] {
        (a.body.includeUsage ? [ServerEvent(json: chunk(a, [], usage: a.usage))] : []) + [ServerEvent("[DONE]")]
    }
}
