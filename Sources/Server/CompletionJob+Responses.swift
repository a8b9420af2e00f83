// The Responses API's wire format (POST /v1/responses, the stateless subset): one `message` output item
// with one `output_text` part; usage as input/output tokens; streamed as named server-sent events
// (response.created ... response.output_text.delta ... response.completed), each with a sequence number.
import Foundation

extension CompletionJob {
    /// The response object, complete or (while streaming) in progress.
    func responseObject(status: String) -> [String: Any] {
        let c = lock.withLock { choices[0] }
        var o: [String: Any] = [:]
        o["id"] = String(id)
        o["object"] = "response"
        o["created_at"] = created
        o["model"] = server.config.modelName
        o["status"] = status
        o["error"] = NSNull()
        o["incomplete_details"] = NSNull()
        o["instructions"] = body.instructions.map { $0 as Any } ?? NSNull()
        o["max_output_tokens"] = body.maxTokensGiven ? body.maxTokens as Any : NSNull()
        o["temperature"] = body.temperature
        o["top_p"] = body.topP
        o["parallel_tool_calls"] = false
        o["tool_choice"] = "auto"
        o["tools"] = body.responseTools.map(toFoundation)
        o["text"] = ["format": ["type": "text"]]
        o["output"] = status == "in_progress" ? [Any]() : [outputItem(text: c.text, status: "completed")] as [Any]
        if status != "in_progress" {
            let u = usage()
            let p = u["prompt_tokens"] as? Int ?? 0, n = u["completion_tokens"] as? Int ?? 0
            let cached = (u["prompt_tokens_details"] as? [String: Any])?["cached_tokens"] as? Int ?? 0
            o["usage"] = ["input_tokens": p, "output_tokens": n, "total_tokens": p + n,
                          "input_tokens_details": ["cached_tokens": cached], "output_tokens_details": ["reasoning_tokens": 0]]
            if c.finish == .length {
                o["status"] = "incomplete"
                o["incomplete_details"] = ["reason": "max_output_tokens"]
            }
        }
        return o
    }

    func outputItem(text: String?, status: String) -> [String: Any] {
        ["type": "message", "id": messageID, "status": status, "role": "assistant",
         "content": text.map { [["type": "output_text", "text": $0, "annotations": [Any]()] as [String: Any]] } ?? [Any]()]
    }

    func sendResponse() {
        let o = responseObject(status: "completed")
        writer.respond(.json(200, encode(o)))
        logDone()
    }

    private func event(_ type: String, _ fields: [String: Any]) -> Bool {
        var o = fields
        o["type"] = type
        o["sequence_number"] = lock.withLock { () -> Int in sequence += 1; return sequence - 1 }
        return writer.sendEvent(encode(o), name: type)
    }

    func startResponseStream() {
        _ = event("response.created", ["response": responseObject(status: "in_progress")])
        _ = event("response.in_progress", ["response": responseObject(status: "in_progress")])
        _ = event("response.output_item.added", ["output_index": 0, "item": outputItem(text: nil, status: "in_progress")])
        _ = event("response.content_part.added", ["item_id": messageID, "output_index": 0, "content_index": 0,
                                                  "part": ["type": "output_text", "text": "", "annotations": [Any]()] as [String: Any]])
    }

    func sendResponseDelta(_ text: String) -> Bool {
        text.isEmpty ? true : event("response.output_text.delta", ["item_id": messageID, "output_index": 0, "content_index": 0,
                                                                   "delta": text, "logprobs": [Any]()])
    }

    func endResponseStream() {
        let text = lock.withLock { choices[0].text }
        _ = event("response.output_text.done", ["item_id": messageID, "output_index": 0, "content_index": 0, "text": text, "logprobs": [Any]()])
        _ = event("response.content_part.done", ["item_id": messageID, "output_index": 0, "content_index": 0,
                                                 "part": ["type": "output_text", "text": text, "annotations": [Any]()] as [String: Any]])
        _ = event("response.output_item.done", ["output_index": 0, "item": outputItem(text: text, status: "completed")])
        let done = responseObject(status: "completed")
        _ = event(done["status"] as? String == "incomplete" ? "response.incomplete" : "response.completed", ["response": done])
        writer.finish()
    }

    func logDone() {
        let u = usage()
        let ttft = lock.withLock { firstTokenAt.map { $0 - started } }
        server.logRequest(request, status: 200, started: started, id: String(id), promptTokens: u["prompt_tokens"] as? Int,
                          completionTokens: u["completion_tokens"] as? Int, ttft: ttft)
    }
}
