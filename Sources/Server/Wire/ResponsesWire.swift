// POST /v1/responses (the stateless subset): a `response` object whose output is a `message` item holding
// one `output_text` part and, with tools, a `function_call` item per call the model made (parsed as on
// chat, ToolCalls.swift); usage as input/output tokens; streamed as named events (response.created ...
// response.output_text.delta ... the calls' items and arguments ... response.completed or
// response.incomplete), each numbered.
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

    /// The answer's text and calls (with tools; a call's arguments as a JSON string).
    private func answer(_ a: Answer) -> (content: String?, calls: [[String: Any]]) {
        let c = a.choices[0]
        guard let syntax = a.body.toolSyntax else { return (c.text, []) }
        let (content, calls) = ToolCalls.parse(c.text, syntax: syntax)
        let tail = a.id.suffix(12)
        return (content, calls.enumerated().map { i, call in
            ["type": "function_call", "id": "fc_\(tail)\(i)", "call_id": "call_\(tail)\(i)", "name": call.name,
             "arguments": call.arguments, "status": "completed"]
        })
    }

    /// A finished answer's status, and its message item's: cut by max_output_tokens or not.
    private func finishStatus(_ a: Answer) -> String { a.choices[0].finish == .length ? "incomplete" : "completed" }

    /// The output items of a finished answer: the message (unless the answer is only calls; always when
    /// streamed, which announced it first), then the calls.
    private func output(_ a: Answer, streamed: Bool) -> [Any] {
        let (content, calls) = answer(a)
        let message: [Any] = streamed || !(content ?? "").isEmpty || calls.isEmpty ? [item(content ?? "", status: finishStatus(a))] : []
        return message + calls
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
        o["status"] = done ? finishStatus(a) : "in_progress"
        o["error"] = NSNull()
        o["incomplete_details"] = done && c.finish == .length ? ["reason": "max_output_tokens"] as Any : NSNull()
        o["instructions"] = a.body.instructions.map { $0 as Any } ?? NSNull()
        o["max_output_tokens"] = a.body.maxTokensGiven ? a.body.maxTokens as Any : NSNull()
        o["temperature"] = a.body.temperature
        o["top_p"] = a.body.topP
        o["parallel_tool_calls"] = a.body.parallelToolCalls && a.body.toolChoice != .none
        switch a.body.toolChoice {
        case .none: o["tool_choice"] = a.body.responseTools.isEmpty ? "auto" : "none"
        case .auto: o["tool_choice"] = "auto"
        case .required: o["tool_choice"] = "required"
        case let .function(name): o["tool_choice"] = ["type": "function", "name": name]
        }
        o["tools"] = a.body.responseTools.map(toFoundation)
        o["text"] = ["format": ["type": "text"]]
        o["output"] = done ? output(a, streamed: a.body.stream) : [Any]()
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
        let (content, calls) = answer(a), done = response(a, done: true)
        let text = content ?? "", status = finishStatus(a)
        var events: [ServerEvent] = []
        // With tools the text was held back where it could have been a call: the rest of it now.
        let sent = a.choices[0].sentContent
        if a.body.toolSyntax != nil, text.count > sent.count, text.hasPrefix(sent) {
            events.append(event("response.output_text.delta", ["item_id": messageID, "output_index": 0, "content_index": 0,
                                                               "delta": String(text.dropFirst(sent.count)), "logprobs": [Any]()]))
        }
        events += [event("response.output_text.done", ["item_id": messageID, "output_index": 0, "content_index": 0, "text": text, "logprobs": [Any]()]),
                   event("response.content_part.done", ["item_id": messageID, "output_index": 0, "content_index": 0, "part": part(text)]),
                   event("response.output_item.done", ["output_index": 0, "item": item(text, status: status)])]
        for (i, call) in calls.enumerated() {
            let id = call["id"] as? String ?? "", args = call["arguments"] as? String ?? "{}"
            var open = call
            open["status"] = "in_progress"
            open["arguments"] = ""
            events += [event("response.output_item.added", ["output_index": i + 1, "item": open]),
                       event("response.function_call_arguments.delta", ["item_id": id, "output_index": i + 1, "delta": args]),
                       event("response.function_call_arguments.done", ["item_id": id, "output_index": i + 1, "arguments": args]),
                       event("response.output_item.done", ["output_index": i + 1, "item": call])]
        }
        events.append(event(done["status"] as? String == "incomplete" ? "response.incomplete" : "response.completed", ["response": done]))
        return events
    }
}
