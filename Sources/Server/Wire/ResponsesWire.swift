// POST /v1/responses (the stateless subset): a `response` object with one `message` output item holding
// one `output_text` part, usage as input/output tokens; streamed as named events (response.created ...
// response.output_text.delta ... response.completed or response.incomplete), each numbered.
import Engine
import Foundation
import HTTP

final class ResponsesWire: WireFormat, @unchecked Sendable {
    let idPrefix = "resp_"
    let messageID = "msg_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(24)
    private let lock = Mutex()
    private var sequence = 0

    private func event(_ type: String, _ fields: [String: Any]) -> ServerEvent {
        var o = fields
        o["type"] = type
        o["sequence_number"] = lock.withLock { () -> Int in sequence += 1; return sequence - 1 }
        return ServerEvent(json: o, name: type)
    }

    private func item(_ text: String?, status: String) -> [String: Any] {
        ["type": "message", "id": messageID, "status": status, "role": "assistant",
         "content": text.map { [part($0)] } ?? [Any]()]
    }

    private func part(_ text: String) -> [String: Any] { ["type": "output_text", "text": text, "annotations": [Any]()] }

    /// The response object, complete or (while streaming) in progress.
    private func response(_ a: Answer, done: Bool) -> [String: Any] {
        let c = a.choices[0]
        var o: [String: Any] = [:]
        o["id"] = a.id
        o["object"] = "response"
        o["created_at"] = a.created
        o["model"] = a.model
        o["status"] = done ? (c.finish == .length ? "incomplete" : "completed") : "in_progress"
        o["error"] = NSNull()
        o["incomplete_details"] = done && c.finish == .length ? ["reason": "max_output_tokens"] as Any : NSNull()
        o["instructions"] = a.body.instructions.map { $0 as Any } ?? NSNull()
        o["max_output_tokens"] = a.body.maxTokensGiven ? a.body.maxTokens as Any : NSNull()
        o["temperature"] = a.body.temperature
        o["top_p"] = a.body.topP
        o["parallel_tool_calls"] = false
        o["tool_choice"] = "auto"
        o["tools"] = a.body.responseTools.map(toFoundation)
        o["text"] = ["format": ["type": "text"]]
        o["output"] = done ? [item(c.text, status: "completed")] as [Any] : [Any]()
        if done {
            let u = a.usage
            let p = u["prompt_tokens"] as? Int ?? 0, n = u["completion_tokens"] as? Int ?? 0
            let cached = (u["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? 0
            o["usage"] = ["input_tokens": p, "output_tokens": n, "total_tokens": p + n,
                          "input_tokens_details": ["cached_tokens": cached], "output_tokens_details": ["reasoning_tokens": 0]]
        }
        return o
    }

    func full(_ a: Answer) -> [String: Any] { response(a, done: true) }

    func streamStart(_ a: Answer) -> [ServerEvent] {
        [event("response.created", ["response": response(a, done: false)]),
         event("response.in_progress", ["response": response(a, done: false)]),
         event("response.output_item.added", ["output_index": 0, "item": item(nil, status: "in_progress")]),
         event("response.content_part.added", ["item_id": messageID, "output_index": 0, "content_index": 0, "part": part("")])]
    }

    func delta(_ a: Answer, choice k: Int, text: String, token: SampledToken) -> [ServerEvent] {
        text.isEmpty ? [] : [event("response.output_text.delta", ["item_id": messageID, "output_index": 0, "content_index": 0,
                                                                  "delta": text, "logprobs": [Any]()])]
    }

    func choiceDone(_ a: Answer, choice k: Int) -> [ServerEvent] { [] }   // closed in streamEnd

    func streamEnd(_ a: Answer) -> [ServerEvent] {
        let text = a.choices[0].text, done = response(a, done: true)
        return [event("response.output_text.done", ["item_id": messageID, "output_index": 0, "content_index": 0, "text": text, "logprobs": [Any]()]),
                event("response.content_part.done", ["item_id": messageID, "output_index": 0, "content_index": 0, "part": part(text)]),
                event("response.output_item.done", ["output_index": 0, "item": item(text, status: "completed")]),
                event(done["status"] as? String == "incomplete" ? "response.incomplete" : "response.completed", ["response": done])]
    }
}
