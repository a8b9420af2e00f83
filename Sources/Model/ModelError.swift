// Typed errors of model loading and running.
import GGUF

public enum ModelError: Error, CustomStringConvertible {
    case gguf(GGUFError)
    case unsupportedArchitecture(String)
    case invalidConfig(String)
    case invalidLayerPattern(String)
    case tokenOutOfRange(Int32, vocab: Int)
    case contextOverflow(needed: Int, limit: Int)
    /// The KV cache budget cannot hold the batch (the scheduler reserves first, so this is a bug there).
    case kvCacheFull(sequence: Int)

    public var description: String {
        switch self {
        case let .gguf(e): return e.description
        case let .unsupportedArchitecture(a): return "unsupported model architecture '\(a)' (supported: gemma3, llama)"
        case let .invalidConfig(m): return "invalid model configuration: \(m)"
        case let .invalidLayerPattern(m): return "invalid --layers pattern: \(m)"
        case let .tokenOutOfRange(t, v): return "token id \(t) is out of range (vocabulary has \(v) tokens)"
        case let .contextOverflow(n, l): return "sequence needs \(n) positions, the model's context is \(l)"
        case let .kvCacheFull(s): return "KV cache budget exhausted for sequence \(s)"
        }
    }
}

/// The one wording of "prompt + max_tokens exceeds the context" (OpenAI's), for every layer that checks it:
/// the API's 400, the scheduler's refusal and `generate`'s error.
public enum ContextLimit {
    public static func exceeded(promptTokens p: Int, maxTokens m: Int, context c: Int, prompt what: String = "prompt",
                                maxTokensField: String = "max_tokens") -> String {
        "This model's maximum context length is \(c) tokens. However, you requested \(p + m) tokens (\(p) in the \(what), \(m) in \(maxTokensField)). Please reduce the \(what) or \(maxTokensField)."
    }
}
