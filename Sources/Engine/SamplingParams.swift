// What a request asks of the sampler. Defaults follow OpenAI's completions API.

public struct SamplingParams: Sendable, Equatable {
    /// 0 means greedy (arg-max).
    public var temperature: Float = 1
    /// 0 disables.
    public var topK: Int = 0
    public var topP: Float = 1
    public var minP: Float = 0
    /// > 1 discourages tokens already in the prompt or output (llama.cpp/vLLM style: divide positive
    /// logits, multiply negative ones).
    public var repetitionPenalty: Float = 1
    /// Subtracted once from the logit of every token already generated (OpenAI).
    public var presencePenalty: Float = 0
    /// Subtracted per occurrence from the logit of every token already generated (OpenAI).
    public var frequencyPenalty: Float = 0
    /// Added to logits before anything else.
    public var logitBias: [Int32: Float] = [:]
    /// Same seed, same prompt, same parameters: same tokens. nil draws a random seed.
    public var seed: UInt64?
    /// Top-N log-probabilities to report per chosen token (0: none, just the chosen one's).
    public var logprobs: Int = 0
    /// Whether the chosen token's log-probability is computed (a pass over the whole vocabulary per
    /// token); false leaves it NaN. The server asks for it only when the request wants logprobs.
    public var chosenLogprob = true

    public init(temperature: Float = 1, topK: Int = 0, topP: Float = 1, minP: Float = 0,
                repetitionPenalty: Float = 1, presencePenalty: Float = 0, frequencyPenalty: Float = 0,
                logitBias: [Int32: Float] = [:], seed: UInt64? = nil, logprobs: Int = 0) {
        self.temperature = temperature; self.topK = topK; self.topP = topP; self.minP = minP
        self.repetitionPenalty = repetitionPenalty; self.presencePenalty = presencePenalty
        self.frequencyPenalty = frequencyPenalty; self.logitBias = logitBias; self.seed = seed
        self.logprobs = logprobs
    }

    public static let greedy = SamplingParams(temperature: 0)
}

/// SplitMix64: small, fast, and the same sequence on every platform for a given seed.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform in [0, 1) with 24 bits.
    public mutating func nextUnitFloat() -> Float { Float(next() >> 40) / Float(1 << 24) }
}
