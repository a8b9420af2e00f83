// The model's chat template: from the GGUF (`tokenizer.chat_template`), a file, or a built-in chosen by
// architecture when the model has none (Gemma's turns for gemma*, ChatML otherwise), rendered by our
// Jinja interpreter exactly as transformers renders it. The rendered prompt is tokenized with special
// tokens parsed; BOS is added only when the template did not write it.
import Foundation
import Jinja
import Tokenizer

public struct ChatTemplate: Sendable {
    /// Where the template came from, for the log and errors.
    public let origin: String
    let template: Template
    let bos: String, eos: String
    /// How the template shows a function call (see ToolCalls.swift).
    public let toolSyntax: ToolSyntax
    /// Whether the template treats a call's `arguments` as an object (`| tojson`, `| items`,
    /// `.items()`): then OpenAI's arguments string is passed parsed; otherwise as the string it is.
    public let objectArguments: Bool

    public init(source: String, origin: String, tokenizer: Tokenizer) throws(JinjaError) {
        template = try Template(source)
        toolSyntax = ToolSyntax.of(templateSource: source)
        let squeezed = source.replacingOccurrences(of: " ", with: "")
        objectArguments = ["arguments|tojson", "arguments|items", "arguments.items()"].contains { squeezed.contains($0) }
        self.origin = origin
        let v = tokenizer.vocab
        bos = v.bos.map { v.tokens[Int($0)] } ?? ""
        eos = v.eos.map { v.tokens[Int($0)] } ?? ""
    }

    /// The built-in templates, by name (`--chat-template NAME`).
    public static let builtins: [String: String] = ["gemma": gemma, "chatml": chatml, "llama3": llama3]

    /// The built-in for an architecture without a template of its own: llama.cpp falls back to ChatML,
    /// which Gemma was never trained on.
    public static func builtinName(architecture: String) -> String { architecture.hasPrefix("gemma") ? "gemma" : "chatml" }

    /// Renders `messages` (and `tools`) into the prompt text.
    public func render(messages: Value, tools: Value?, addGenerationPrompt: Bool = true) throws(JinjaError) -> String {
        var ctx: [String: Value] = ["messages": messages, "add_generation_prompt": .bool(addGenerationPrompt),
                                    "bos_token": .string(bos), "eos_token": .string(eos)]
        if let tools { ctx["tools"] = tools }
        return try template.render(ctx)
    }

    /// The prompt's tokens: special-token text becomes its ids, and BOS is added (as the model's metadata
    /// says) unless the template already wrote it — never doubled.
    public func tokens(_ text: String, tokenizer: Tokenizer) -> [Int32] {
        tokenizer.encode(text, addSpecial: bos.isEmpty || !text.hasPrefix(bos), parseSpecial: true)
    }

    // Gemma 3's own template (google/gemma-3 tokenizer_config.json): a system message goes in front of the
    // first user turn; roles must alternate; the assistant is "model".
    static let gemma = """
    {{ bos_token }}
    {%- if messages[0]['role'] == 'system' -%}
        {%- if messages[0]['content'] is string -%}
            {%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}
        {%- else -%}
            {%- set first_user_prefix = messages[0]['content'][0]['text'] + '\\n\\n' -%}
        {%- endif -%}
        {%- set loop_messages = messages[1:] -%}
    {%- else -%}
        {%- set first_user_prefix = "" -%}
        {%- set loop_messages = messages -%}
    {%- endif -%}
    {%- for message in loop_messages -%}
        {%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}
            {{ raise_exception("Conversation roles must alternate user/assistant/user/assistant/...") }}
        {%- endif -%}
        {%- if (message['role'] == 'assistant') -%}
            {%- set role = "model" -%}
        {%- else -%}
            {%- set role = message['role'] -%}
        {%- endif -%}
        {{ '<start_of_turn>' + role + '\\n' + (first_user_prefix if loop.first else "") }}
        {%- if message['content'] is string -%}
            {{ message['content'] | trim }}
        {%- elif message['content'] is iterable -%}
            {%- for item in message['content'] -%}
                {%- if item['type'] == 'text' -%}
                    {{ item['text'] | trim }}
                {%- endif -%}
            {%- endfor -%}
        {%- else -%}
            {{ raise_exception("Invalid content type") }}
        {%- endif -%}
        {{ '<end_of_turn>\\n' }}
    {%- endfor -%}
    {%- if add_generation_prompt -%}
        {{ '<start_of_turn>model\\n' }}
    {%- endif -%}
    """

    static let chatml = """
    {%- for message in messages -%}
        {{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}
    {%- endfor -%}
    {%- if add_generation_prompt -%}
        {{ '<|im_start|>assistant\\n' }}
    {%- endif -%}
    """

    static let llama3 = """
    {{- bos_token }}
    {%- for message in messages -%}
        {{ '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}
    {%- endfor -%}
    {%- if add_generation_prompt -%}
        {{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}
    {%- endif -%}
    """
}
