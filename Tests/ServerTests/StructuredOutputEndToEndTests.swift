// Structured outputs and tool calls over HTTP on the real models: every constrained answer parses and
// validates (a reference validator, not the grammar), streamed equals non-streamed, n > 1, the three
// endpoints, refusals that name the field and the keyword, and the OpenAI SDK's own parse() helper.
import Foundation
import Grammar
import Testing
import TestSupport
@testable import Server

func content(_ o: [String: Any], _ k: Int = 0) -> String? {
    (((o["choices"] as? [[String: Any]])?[k])?["message"] as? [String: Any])?["content"] as? String
}

func choices(_ o: [String: Any]) -> [[String: Any]] { o["choices"] as? [[String: Any]] ?? [] }

let personSchema = #"{"type":"object","properties":{"name":{"type":"string","maxLength":20},"age":{"type":"integer","minimum":0,"maximum":130},"email":{"type":"string","format":"email"},"tags":{"type":"array","items":{"enum":["friend","work","family"]},"maxItems":2}},"required":["name","age","tags"],"additionalProperties":false}"#

let weatherTools = #"[{"type":"function","function":{"name":"get_weather","description":"Current weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":30},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}}},{"type":"function","function":{"name":"get_time","description":"Local time in a time zone","parameters":{"type":"object","properties":{"zone":{"type":"string","maxLength":30}},"required":["zone"],"additionalProperties":false}}}]"#

@Suite(.serialized) struct StructuredOutputEndToEndTests {
    @Test(arguments: [TestModels.smollm, TestModels.gemma])
    func jsonSchemaAnswersValidate(_ path: String) throws {
        let s = try startAPI(model: path); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 120)
        let schema = try JSON.parse(personSchema)
        let rf = #""response_format":{"type":"json_schema","json_schema":{"name":"person","strict":true,"schema":\#(personSchema)}}"#
        let msgs = #"[{"role":"user","content":"Invent a person and give it as JSON."}]"#
        let greedy = object(c.request("POST", "/v1/chat/completions", json: #"{"messages":\#(msgs),"max_tokens":80,"temperature":0,\#(rf)}"#))
        let text = content(greedy) ?? "<missing>"
        // Every answer that finished validates; sampled ones may run out of tokens, but not all of them.
        var complete = 0
        if choices(greedy).first?["finish_reason"] as? String == "stop" {
            complete += 1
            #expect(SchemaValidator.violation(try JSON.parse(text), schema) == nil, "\(text)")
        }
        // Streamed: the same text.
        let r = c.request("POST", "/v1/chat/completions", json: #"{"messages":\#(msgs),"max_tokens":80,"temperature":0,"stream":true,\#(rf)}"#)
        let streamed = events(r).dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            .compactMap { ((($0["choices"] as? [[String: Any]])?.first)?["delta"] as? [String: Any])?["content"] as? String }.joined()
        #expect(streamed == text)
        // Sampled, n = 3, on chat and on completions: every finished choice validates.
        for (endpoint, body) in [("/v1/chat/completions", #"{"messages":\#(msgs),"max_tokens":80,"temperature":1.2,"top_p":0.95,"n":3,"seed":5,\#(rf)}"#),
                                 ("/v1/completions", #"{"prompt":"A person as JSON:","max_tokens":80,"temperature":1,"n":3,"seed":6,\#(rf)}"#)] {
            let o = object(c.request("POST", endpoint, json: body))
            #expect(choices(o).count == 3)
            for (k, ch) in choices(o).enumerated() {
                let t = endpoint.contains("chat") ? content(o, k) ?? "" : ch["text"] as? String ?? ""
                let finish = ch["finish_reason"] as? String
                #expect(finish == "stop" || finish == "length")
                if finish == "stop" {
                    complete += 1
                    #expect(SchemaValidator.violation(try JSON.parse(t), schema) == nil, "\(t)")
                }
            }
        }
        #expect(complete >= 4, "\(complete) of 7 constrained answers finished")
        // json_object: any object.
        let any = object(c.request("POST", "/v1/completions", json: #"{"prompt":"{","max_tokens":60,"temperature":0.7,"seed":1,"response_format":{"type":"json_object"}}"#))
        let anyText = choices(any).first?["text"] as? String ?? ""
        #expect(anyText.drop { $0.isWhitespace }.first == "{", "\(anyText)")
        if choices(any).first?["finish_reason"] as? String == "stop" {
            guard case .object? = try? JSON.parse(anyText) else { Issue.record("not an object: \(anyText)"); return }
        }
    }

    @Test func refusalsNameTheFieldAndKeyword() throws {
        let s = try startAPI(model: TestModels.smollm); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 120)
        let m = #""messages":[{"role":"user","content":"x"}]"#
        for (body, param, code, mentions) in [
            (#"{\#(m),"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"object","patternProperties":{"a":{}}}}}}"#, "response_format.json_schema.schema", "unsupported_schema", "patternProperties"),
            (#"{\#(m),"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","format":"uri"}}}}"#, "response_format.json_schema.schema", "unsupported_schema", "uri"),
            (#"{\#(m),"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"type":"string","pattern":"(?=a)"}}}}"#, "response_format.json_schema.schema", "unsupported_schema", "pattern"),
            (##"{\##(m),"response_format":{"type":"json_schema","json_schema":{"name":"x","schema":{"$ref":"#/$defs/missing"}}}}"##, "response_format.json_schema.schema", "unsupported_schema", "does not resolve"),
            (#"{\#(m),"response_format":{"type":"yaml"}}"#, "response_format.type", "invalid_value", "yaml"),
            (#"{\#(m),"response_format":{"type":"json_schema"}}"#, "response_format.json_schema", "invalid_value", "required"),
            (#"{\#(m),"response_format":{"type":"json_object"},"stop":["}"]}"#, "stop", "invalid_value", "stop"),
            (#"{\#(m),"tools":\#(weatherTools),"tool_choice":{"type":"function","function":{"name":"nope"}}}"#, "tool_choice", "invalid_value", "nope"),
            (#"{\#(m),"tools":\#(weatherTools),"response_format":{"type":"json_object"}}"#, "response_format", "invalid_value", "tools"),
            (#"{\#(m),"tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object","properties":{"a":{"not":{}}}}}}],"tool_choice":"required"}"#, "tools", "unsupported_schema", "not"),
        ] {
            let r = c.request("POST", "/v1/chat/completions", json: body)
            let e = object(r)["error"] as? [String: Any] ?? [:]
            #expect(r?.status == 400 && e["param"] as? String == param && e["code"] as? String == code, "\(body): \(e)")
            #expect((e["message"] as? String)?.contains(mentions) == true, "\(e)")
        }
        // The Responses API's text.format.
        let ok = object(c.request("POST", "/v1/responses", json: #"{"input":"A person as JSON","max_output_tokens":60,"temperature":0,"text":{"format":{"type":"json_schema","name":"person","schema":\#(personSchema)}}}"#))
        let out = ((((ok["output"] as? [[String: Any]])?.first)?["content"] as? [[String: Any]])?.first)?["text"] as? String ?? ""
        #expect(ok["status"] as? String == "completed", "\(ok)")
        #expect(SchemaValidator.violation(try JSON.parse(out), try JSON.parse(personSchema)) == nil, "\(out)")
        let bad = c.request("POST", "/v1/responses", json: #"{"input":"x","text":{"format":{"type":"json_schema","name":"p","schema":{"if":{}}}}}"#)
        #expect(bad?.status == 400 && (object(bad)["error"] as? [String: Any])?["param"] as? String == "text.format.schema")
        // The constrained request shows in /metrics.
        let metrics = c.request("GET", "/metrics")?.text ?? ""
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]) }
        }
        #expect(value("zebra_structured_schemas_compiled_total") == 1)
        #expect((value("zebra_structured_masks_built_total") ?? 0) + (value("zebra_structured_mask_cache_hits_total") ?? 0) > 0)
    }

    @Test func forcedToolCallsAreValidCalls() throws {
        let s = try startAPI(model: TestModels.smollm); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 120)
        let tools = try JSON.parse(weatherTools).arrayValue!
        func params(_ name: String) -> JSON { tools.first { $0["function"]?["name"]?.stringValue == name }!["function"]!["parameters"]! }
        let m = #""messages":[{"role":"user","content":"What's the weather like in Paris right now?"}]"#
        for (choice, only) in [(#""required""#, nil), (#"{"type":"function","function":{"name":"get_time"}}"#, "get_time")] as [(String, String?)] {
            let body = #"{\#(m),"tools":\#(weatherTools),"tool_choice":\#(choice),"parallel_tool_calls":false,"max_tokens":60,"temperature":0}"#
            let o = object(c.request("POST", "/v1/chat/completions", json: body))
            let ch = choices(o).first ?? [:]
            let msg = ch["message"] as? [String: Any] ?? [:]
            let calls = msg["tool_calls"] as? [[String: Any]] ?? []
            #expect(ch["finish_reason"] as? String == "tool_calls" && calls.count == 1, "\(o)")
            #expect(msg["content"] is NSNull)
            for call in calls {
                let f = call["function"] as? [String: Any] ?? [:]
                let name = f["name"] as? String ?? ""
                #expect(call["type"] as? String == "function" && (call["id"] as? String)?.hasPrefix("call_") == true)
                if let only { #expect(name == only) } else { #expect(["get_weather", "get_time"].contains(name)) }
                let args = try JSON.parse(f["arguments"] as? String ?? "")
                #expect(SchemaValidator.violation(args, params(name)) == nil, "\(args.compact)")
            }
            // Streamed: the same call in delta.tool_calls, then finish_reason tool_calls.
            let r = c.request("POST", "/v1/chat/completions", json: String(body.dropLast()) + #","stream":true}"#)
            let chunks = events(r).dropLast().compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let deltas = chunks.compactMap { (($0["choices"] as? [[String: Any]])?.first)?["delta"] as? [String: Any] }
            let streamedCalls = deltas.compactMap { $0["tool_calls"] as? [[String: Any]] }.flatMap { $0 }
            #expect(streamedCalls.count == 1)
            #expect(((streamedCalls.first?["function"] as? [String: Any])?["arguments"] as? String) == ((calls.first?["function"] as? [String: Any])?["arguments"] as? String))
            #expect(((chunks.last?["choices"] as? [[String: Any]])?.first)?["finish_reason"] as? String == "tool_calls")
        }
    }

    /// /apply-template shows exactly the prompt chat renders, tools and tool history included: its
    /// token count is chat's prompt_tokens.
    @Test func applyTemplateIsChatsPrompt() throws {
        let s = try startAPI(model: TestModels.smollm); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 120)
        let history = #"[{"role":"user","content":"Weather in Paris?"},{"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\",\"unit\":\"celsius\"}"}}]},{"role":"tool","tool_call_id":"c1","content":"18 C"}]"#
        for extra in [#","tools":\#(weatherTools)"#, #","tools":\#(weatherTools),"tool_choice":"none""#, ""] {
            let applied = c.request("POST", "/apply-template", json: #"{"messages":\#(history)\#(extra)}"#)
            #expect(applied?.status == 200, "\(extra): \(applied?.text ?? "")")
            let prompt = object(applied)["prompt"] as? String ?? ""
            if !extra.isEmpty && !extra.contains("none") { #expect(prompt.contains("get_weather") && prompt.contains("tool_calls"), "\(prompt)") }
            let tokenizeBody = String(decoding: try JSONSerialization.data(withJSONObject: ["content": prompt, "add_special": false]), as: UTF8.self)
            let ids = object(c.request("POST", "/tokenize", json: tokenizeBody))["tokens"] as? [Int] ?? []
            let chat = object(c.request("POST", "/v1/chat/completions", json: #"{"messages":\#(history)\#(extra),"max_tokens":1}"#))
            #expect((chat["usage"] as? [String: Any])?["prompt_tokens"] as? Int == ids.count, "\(extra)")
        }
    }

    /// The Responses API with function tools answers as chat does (the same template, syntax and
    /// constraint): the same calls as function_call items, or the same text; streamed, the same items.
    @Test func responsesToolsAnswerAsChatDoes() throws {
        let s = try startAPI(model: TestModels.smollm); defer { s.stop() }
        let c = try TestClient(port: s.port, timeout: 120)
        let flat = #"[{"type":"function","name":"get_weather","description":"Current weather in a city","parameters":{"type":"object","properties":{"city":{"type":"string","maxLength":30},"unit":{"enum":["celsius","fahrenheit"]}},"required":["city","unit"],"additionalProperties":false}},{"type":"function","name":"get_time","description":"Local time in a time zone","parameters":{"type":"object","properties":{"zone":{"type":"string","maxLength":30}},"required":["zone"],"additionalProperties":false}}]"#
        var calledOnce = false
        for (question, required) in [("What's the weather like in Paris right now?", true), ("What time is it in Tokyo?", false), ("Say hello.", false)] {
            let choice = (required ? #","tool_choice":"required""# : "") + #","parallel_tool_calls":false"#
            let chat = object(c.request("POST", "/v1/chat/completions", json: #"{"messages":[{"role":"user","content":"\#(question)"}],"tools":\#(weatherTools)\#(choice),"max_tokens":60,"temperature":0}"#))
            let msg = choices(chat).first?["message"] as? [String: Any] ?? [:]
            let chatCalls = (msg["tool_calls"] as? [[String: Any]] ?? []).map { ($0["function"] as? [String: Any] ?? [:]) }
            let body = #"{"input":"\#(question)","tools":\#(flat)\#(choice),"max_output_tokens":60,"temperature":0}"#
            let o = object(c.request("POST", "/v1/responses", json: body))
            let output = o["output"] as? [[String: Any]] ?? []
            let calls = output.filter { $0["type"] as? String == "function_call" }
            if required { #expect(!calls.isEmpty && o["tool_choice"] as? String == "required", "\(o)") }
            #expect(calls.map { $0["name"] as? String ?? "" } == chatCalls.map { $0["name"] as? String ?? "?" }, "\(question): \(o)")
            #expect(calls.map { $0["arguments"] as? String ?? "" } == chatCalls.map { $0["arguments"] as? String ?? "?" })
            for call in calls {
                #expect((call["call_id"] as? String)?.hasPrefix("call_") == true && call["status"] as? String == "completed")
                calledOnce = true
            }
            let text = output.filter { $0["type"] as? String == "message" }
                .flatMap { $0["content"] as? [[String: Any]] ?? [] }.compactMap { $0["text"] as? String }.joined()
            #expect(text == (msg["content"] as? String ?? ""), "\(question)")
            #expect(!text.contains("{\"response\"") && !text.contains("{\"tool_calls\""))
            // Streamed: the same items at the end.
            let r = c.request("POST", "/v1/responses", json: String(body.dropLast()) + #","stream":true}"#)
            let evs = events(r).compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            let final = evs.last?["response"] as? [String: Any] ?? [:]
            let finalCalls = (final["output"] as? [[String: Any]] ?? []).filter { $0["type"] as? String == "function_call" }
            #expect(finalCalls.map { $0["arguments"] as? String ?? "" } == calls.map { $0["arguments"] as? String ?? "?" })
            let argDone = evs.filter { $0["type"] as? String == "response.function_call_arguments.done" }.compactMap { $0["arguments"] as? String }
            #expect(argDone == calls.map { $0["arguments"] as? String ?? "?" })
            let deltas = evs.filter { $0["type"] as? String == "response.output_text.delta" }.compactMap { $0["delta"] as? String }
            #expect(deltas.joined() == text)
        }
        #expect(calledOnce, "at least one question got a call")
        let none = c.request("POST", "/v1/responses", json: #"{"input":"x","tool_choice":"required"}"#)
        #expect(none?.status == 400 && (object(none)["error"] as? [String: Any])?["param"] as? String == "tool_choice")
        // Tools with a JSON text.format are refused naming text.format; the context limit names input.
        let both = c.request("POST", "/v1/responses", json: #"{"input":"x","tools":\#(flat),"text":{"format":{"type":"json_object"}}}"#)
        #expect(both?.status == 400 && (object(both)["error"] as? [String: Any])?["param"] as? String == "text.format")
        let long = c.request("POST", "/v1/responses", json: #"{"input":"\#(String(repeating: "word ", count: 9000))"}"#)
        let e = object(long)["error"] as? [String: Any] ?? [:]
        #expect(long?.status == 400 && e["param"] as? String == "input" && (e["message"] as? String)?.contains("max_output_tokens") == true, "\(e)")
    }

    @Test func openAISDKParsesStructuredOutputsAndToolCalls() throws {
        let s = try startAPI(model: TestModels.smollm); defer { s.stop() }
        let script = """
        import json, openai, pydantic
        from typing import Literal, Optional
        class Address(pydantic.BaseModel):
            city: str
            country: str
        class Person(pydantic.BaseModel):
            name: str
            age: int
            role: Literal["engineer", "artist"]
            home: Address
            nickname: Optional[str]
        c = openai.OpenAI(base_url="http://127.0.0.1:\(s.port)/v1", api_key="unused", timeout=120, max_retries=0)
        msgs = [{"role": "user", "content": "Invent a person."}]
        r = c.chat.completions.parse(model="test-model", messages=msgs, response_format=Person, max_tokens=150, temperature=0)
        ch = r.choices[0]
        assert ch.finish_reason == "stop", ch
        p = ch.message.parsed
        assert isinstance(p, Person) and p.role in ("engineer", "artist"), p
        tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object",
                  "properties": {"city": {"type": "string"}}, "required": ["city"], "additionalProperties": False}}}]
        t = c.chat.completions.create(model="test-model", messages=[{"role": "user", "content": "Weather in Rome?"}], tools=tools,
                                      tool_choice="required", parallel_tool_calls=False, max_tokens=60, temperature=0)
        call = t.choices[0].message.tool_calls[0]
        assert t.choices[0].finish_reason == "tool_calls" and call.function.name == "get_weather", t
        assert isinstance(json.loads(call.function.arguments)["city"], str), call
        # The call and its result go back into the conversation (role tool) and the model answers.
        follow = msgs + [t.choices[0].message.model_dump(exclude_none=True), {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"}]
        f = c.chat.completions.create(model="test-model", messages=follow, max_tokens=20, temperature=0)
        assert f.choices[0].message.content is not None, f
        print("ok", p.model_dump_json(), call.function.arguments)
        """
        let (status, o, e) = try runPython(script)
        #expect(status == 0, "\(e)")
        #expect(o.hasPrefix("ok "), "\(o)")
    }
}
