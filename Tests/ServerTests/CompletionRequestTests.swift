// Request validation: every field's type and range, with the field named in the error.
import Grammar
import Jinja
import TestSupport
import Testing
@testable import Server

func parse(_ json: String) throws(APIError) -> CompletionRequest {
    var l = CompletionRequest.Limits(); l.vocabSize = 1000
    return try CompletionRequest(json: Array(json.utf8), limits: l)
}

func param(_ json: String) -> String? {
    do { _ = try parse(json); return nil } catch { return error.param ?? "<\(error.status)>" }
}

@Test func defaultsAreOpenAIs() throws {
    let r = try parse(#"{"prompt":"hi"}"#)
    #expect(r.maxTokens == 16 && r.temperature == 1 && r.topP == 1 && r.n == 1 && !r.stream && r.logprobs == nil && r.speculative)
    #expect(r.prompts == [.text("hi")])
}

@Test func everyPromptForm() throws {
    #expect(try parse(#"{"prompt":["a","b"]}"#).prompts == [.text("a"), .text("b")])
    #expect(try parse(#"{"prompt":[1,2,3]}"#).prompts == [.tokens([1, 2, 3])])
    #expect(try parse(#"{"prompt":[[1],[2,3]]}"#).prompts == [.tokens([1]), .tokens([2, 3])])
    for bad in [#"{"prompt":[]}"#, #"{"prompt":[1,"a"]}"#, #"{"prompt":[1.5]}"#, #"{"prompt":[1000]}"#, #"{"prompt":[-1]}"#,
                #"{"prompt":5}"#, #"{"prompt":{"a":1}}"#, #"{}"#, #"{"prompt":null}"#, #"{"prompt":[true]}"#] {
        #expect(param(bad) == "prompt", "\(bad)")
    }
}

@Test func fieldTypesAndRanges() {
    let cases: [(String, String)] = [
        (#""max_tokens":-1"#, "max_tokens"), (#""max_tokens":"5""#, "max_tokens"), (#""max_tokens":1.5"#, "max_tokens"),
        (#""temperature":2.5"#, "temperature"), (#""temperature":-0.1"#, "temperature"), (#""temperature":"hot""#, "temperature"),
        (#""top_p":0"#, "top_p"), (#""top_p":1.1"#, "top_p"), (#""n":0"#, "n"), (#""n":17"#, "n"), (#""n":true"#, "n"),
        (#""stream":"yes""#, "stream"), (#""stream":1"#, "stream"), (#""logprobs":6"#, "logprobs"), (#""logprobs":-1"#, "logprobs"),
        (#""echo":"no""#, "echo"), (#""stop":5"#, "stop"), (#""stop":["a","b","c","d","e"]"#, "stop"), (#""stop":[""]"#, "stop"),
        (#""presence_penalty":3"#, "presence_penalty"), (#""frequency_penalty":-2.1"#, "frequency_penalty"),
        (#""logit_bias":{"x":1}"#, "logit_bias"), (#""logit_bias":{"5":101}"#, "logit_bias"), (#""logit_bias":{"5000":1}"#, "logit_bias"),
        (#""logit_bias":[1]"#, "logit_bias"), (#""seed":"1""#, "seed"), (#""user":5"#, "user"), (#""top_k":-2"#, "top_k"),
        (#""min_p":1.5"#, "min_p"), (#""repetition_penalty":0"#, "repetition_penalty"), (#""ignore_eos":"x""#, "ignore_eos"), (#""speculative":"off""#, "speculative"),
        (#""suffix":"x""#, "suffix"), (#""best_of":3"#, "best_of"), (#""model":7"#, "model"),
        (#""stream_options":{"include_usage":true}"#, "stream_options"),
        (#""stream":true,"stream_options":{"include_usage":"y"}"#, "stream_options.include_usage"),
    ]
    for (field, want) in cases {
        #expect(param(#"{"prompt":"x","# + field + "}") == want, "\(field)")
    }
}

@Test func acceptsEveryFieldInRange() throws {
    let r = try parse(#"{"model":"m","prompt":"x","max_tokens":0,"temperature":0,"top_p":0.5,"n":2,"stream":true,"stream_options":{"include_usage":true},"logprobs":5,"echo":false,"stop":["a","b"],"presence_penalty":-2,"frequency_penalty":2,"logit_bias":{"5":-100,"6":100},"seed":-3,"user":"u","top_k":-1,"min_p":0.1,"repetition_penalty":1.1,"ignore_eos":true,"speculative":false,"best_of":2,"suffix":null}"#)
    #expect(r.n == 2 && r.includeUsage && r.logprobs == 5 && r.stop == ["a", "b"] && r.logitBias == [5: -100, 6: 100])
    #expect(r.topK == 0 && r.ignoreEOS && !r.speculative && r.seed == UInt64(bitPattern: -3))
    #expect(r.sampling(index: 1).seed == UInt64(bitPattern: -3) &+ 1)
    #expect(r.sampling(index: 0).chosenLogprob)
    // The chosen token's log-probability is computed only for a request that asks for logprobs.
    #expect(try !parse(#"{"prompt":"x"}"#).sampling(index: 0).chosenLogprob)
    #expect(try parse(#"{"prompt":"x","logprobs":0}"#).sampling(index: 0).chosenLogprob)
}

@Test func operatorCapOnMaxTokens() throws {
    var l = CompletionRequest.Limits(); l.maxTokens = 32
    #expect(try CompletionRequest(json: Array(#"{"prompt":"x","max_tokens":32}"#.utf8), limits: l).maxTokens == 32)
    #expect(throws: APIError.self) { try CompletionRequest(json: Array(#"{"prompt":"x","max_tokens":33}"#.utf8), limits: l) }
}

@Test func invalidJSON() {
    #expect(param("{") == "<400>")
    #expect(param("[1]") == "<400>")
    #expect(param("") == "<400>")
}

@Test func toolCallsParseFromBothSyntaxes() {
    let h = ToolCalls.parse("Let me check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>\n<tool_call>\n{\"name\":\"t\",\"arguments\":{}}\n</tool_call>", syntax: .hermes)
    #expect(h.content == "Let me check.\n\n" && h.calls == [ToolCall(name: "get_weather", arguments: #"{"city":"Paris"}"#), ToolCall(name: "t", arguments: "{}")])
    let broken = ToolCalls.parse("<tool_call>\n{\"name\": \"get_weather\", \"argu", syntax: .hermes)
    #expect(broken.calls.isEmpty && broken.content == "<tool_call>\n{\"name\": \"get_weather\", \"argu")
    let g = ToolCalls.parse(#"{"tool_calls":[{"name":"f","arguments":{"a":[1,2]}}]}"#, syntax: .generic)
    #expect(g.content == nil && g.calls == [ToolCall(name: "f", arguments: #"{"a":[1,2]}"#)])
    #expect(ToolCalls.parse(#"{"response":"Hi \"there\""}"#, syntax: .generic) == ("Hi \"there\"", []))
    // Cut by max_tokens: the wrapper never shows; the answer's text so far, decoded; a cut call is no call.
    let cut = ToolCalls.parse(#"{"tool_calls":[{"name":"f","arguments":{"a":1}},{"na"#, syntax: .generic)
    #expect(cut.content == nil && cut.calls.isEmpty)
    #expect(ToolCalls.parse(#"{"respo"#, syntax: .generic).content == nil)
    #expect(ToolCalls.parse(#"{"response":"Paris, \"France\"\n2"#, syntax: .generic) == ("Paris, \"France\"\n2", []))
    #expect(ToolCalls.parse(#"{"response":"caf\u00e9 \ud83d\ude00 x\u00"#, syntax: .generic).content == "café 😀 x")
    #expect(ToolCalls.parse(#"{"response":"a\ud83d\ude"#, syntax: .generic).content == "a")
    #expect(ToolCalls.parse(#"{"response":"tab\"#, syntax: .generic).content == "tab")
    #expect(JSON.stringPrefix(Array("abé".utf8).dropLast()) == "ab")   // é cut after its first byte
    #expect(JSON.stringPrefix(Array(#"done" tail"#.utf8)) == "done")
}

@Test func toolHistoryRendersInEitherSyntax() throws {
    let msgs = try Value.parseJSON(#"[{"role":"user","content":"Weather?"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"w","arguments":"{\"city\":\"Rome\"}"}}]},{"role":"tool","tool_call_id":"call_1","content":"18 C"}]"#)
    guard case let .list(h)? = ToolCalls.history(msgs, syntax: .hermes, objectArguments: true), case let .dict(a) = h.items[1],
          case let .list(calls)? = a["tool_calls"], case let .dict(c) = calls.items[0], case let .dict(f)? = c["function"],
          case let .dict(args)? = f["arguments"] else { Issue.record("hermes history"); return }
    #expect(args["city"]?.text == "Rome")
    // A template that prints the arguments as they are keeps OpenAI's string.
    guard case let .list(k)? = ToolCalls.history(msgs, syntax: .hermes, objectArguments: false), case let .dict(ka) = k.items[1],
          case let .list(kc)? = ka["tool_calls"], case let .dict(c0) = kc.items[0], case let .dict(f0)? = c0["function"],
          case .string(#"{"city":"Rome"}"#)? = f0["arguments"] else { Issue.record("string arguments"); return }
    guard case let .list(g)? = ToolCalls.history(msgs, syntax: .generic, objectArguments: false), case let .dict(ga) = g.items[1], case let .dict(gt) = g.items[2] else {
        Issue.record("generic history"); return
    }
    #expect(ga["content"]?.text == #"{"tool_calls":[{"name":"w","arguments":{"city":"Rome"}}]}"#)
    #expect(gt["role"]?.text == "user" && gt["content"]?.text == #"{"tool_response":{"tool_call_id":"call_1","content":"18 C"}}"#)
}

@Test func toolSyntaxFollowsTheTemplate() throws {
    // llama.cpp's corpus of real templates: which call syntax each one shows.
    let root = try Value.parseJSON(String(decoding: try TestModels.fixture("JinjaTests", "templates.json"), as: UTF8.self))
    guard case let .dict(d) = root, case let .list(templates)? = d["templates"] else { Issue.record("fixture"); return }
    var found: [ToolSyntax: Set<String>] = [:]
    for case let .dict(t) in templates.items {
        found[ToolSyntax.of(templateSource: t["source"]!.text), default: []].insert(t["name"]!.text)
    }
    #expect(found[.hermes] == ["Bielik-11B-v3.0-Instruct", "MiMo-VL", "NousResearch-Hermes-2-Pro-Llama-3-8B-tool_use",
                               "NousResearch-Hermes-3-Llama-3.1-8B-tool_use", "Qwen-QwQ-32B", "Qwen-Qwen2.5-7B-Instruct", "Qwen-Qwen3-0.6B",
                               "Reka-Edge", "ibm-granite-granite-4.0", "ibm-granite-granite-4.1", "unsloth-Apriel-1.5"])
    #expect(found[.llama3] == ["meta-llama-Llama-3.1-8B-Instruct", "meta-llama-Llama-3.2-3B-Instruct", "meta-llama-Llama-3.3-70B-Instruct"])
    #expect(found[.mistral] == ["mistralai-Mistral-Nemo-Instruct-2407"])
    #expect(found[.generic]?.contains("Qwen3-Coder") == true && found[.generic]?.contains("Mistral-Small-3.2-24B-Instruct-2506") == true)
    // Their answers parse.
    #expect(ToolCalls.parse(#"{"name": "w", "parameters": {"city": "Rome"}}"#, syntax: .llama3).calls == [ToolCall(name: "w", arguments: #"{"city":"Rome"}"#)])
    #expect(ToolCalls.parse(#"[TOOL_CALLS][{"name": "w", "arguments": {}}, {"name": "t", "arguments": {"z": 1}}]"#, syntax: .mistral).calls
            == [ToolCall(name: "w", arguments: "{}"), ToolCall(name: "t", arguments: #"{"z":1}"#)])
    #expect(ToolCalls.parse("Plain answer.", syntax: .llama3) == ("Plain answer.", []))
    // Streaming with tool_choice auto: text goes out until something could start a call.
    #expect(ToolCalls.streamablePrefix("Sure, <tool", syntax: .hermes) == "Sure, ")
    #expect(ToolCalls.streamablePrefix("Sure.\n<tool_call>\n{", syntax: .hermes) == "Sure.\n")
    #expect(ToolCalls.streamablePrefix("a < b", syntax: .hermes) == "a < b")
    #expect(ToolCalls.streamablePrefix("  {\"name\"", syntax: .llama3) == "" && ToolCalls.streamablePrefix("Hello", syntax: .llama3) == "Hello")
    #expect(ToolCalls.streamablePrefix("[{", syntax: .mistral) == "" && ToolCalls.streamablePrefix("{\"a\"", syntax: .generic) == "")
    // A forced call's grammar accepts the syntax's own form.
    let specs = [ToolSpec(name: "w", parameters: try JSON.parse(#"{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}"#))]
    for (syntax, text) in [(ToolSyntax.llama3, #"{"name":"w","parameters":{"city":"Rome"}}"#), (.mistral, #"[{"name":"w","arguments":{"city":"Rome"}}]"#),
                           (.hermes, "<tool_call>\n{\"name\":\"w\",\"arguments\":{\"city\":\"Rome\"}}\n</tool_call>"),
                           (.generic, #"{"tool_calls":[{"name":"w","arguments":{"city":"Rome"}}]}"#)] {
        let g = try #require(try ToolCalls.grammar(specs, choice: .required, parallel: false, syntax: syntax))
        let m = GrammarMatcher(g)
        #expect(m.accept(Array(text.utf8)) && m.isAccepting, "\(syntax)")
    }
}

/// Chat fields that would change what kind of answer comes back are refused, not ignored; fields the
/// server does not know are ignored (clients send vendor extras).
@Test func chatRefusesAudioAndTheDeprecatedFunctions() throws {
    func chatParam(_ extra: String) -> String? {
        do throws(APIError) {
            _ = try CompletionRequest(json: Array(#"{"messages":[{"role":"user","content":"x"}],\#(extra)}"#.utf8), limits: .init(), chat: true)
            return nil
        } catch { return error.param }
    }
    for (extra, want) in [(#""modalities":["text","audio"]"#, "modalities"), (#""modalities":"text""#, "modalities"),
                          (#""audio":{"voice":"alloy","format":"wav"}"#, "audio"),
                          (#""functions":[{"name":"f","parameters":{}}]"#, "functions"), (#""function_call":"auto""#, "function_call")] {
        #expect(chatParam(extra) == want, "\(extra)")
    }
    for extra in [#""modalities":["text"]"#, #""audio":null"#, #""functions":null"#, #""frobnicate":1"#] {
        #expect(chatParam(extra) == nil, "\(extra)")
    }
}

@Test func aNumberBeyondADoubleIsNamedAsSuch() {
    do throws(APIError) { _ = try parse(#"{"prompt":"x","temperature":1e400}"#); Issue.record("accepted") }
    catch { #expect(error.status == 400 && error.message.contains("out of a double's range"), "\(error.message)") }
    do throws(APIError) { _ = try parse(#"{"prompt":"x","#); Issue.record("accepted") }
    catch { #expect(error.status == 400 && error.message.contains("not valid JSON")) }
}
