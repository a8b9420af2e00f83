// The scheduler's vocabulary: its configuration, a generation request, the events a request's sink
// receives, submission errors, and the counters /metrics reads.
import Grammar
import Model

public struct SchedulerConfig: Sendable {
    /// Tokens per forward step (decode tokens + prompt chunks).
    public var maxBatchTokens = 512
    /// Prompt chunk boundaries (positions that are multiples of this).
    public var chunkTokens = 256
    /// Prompt chunk length for requests that score their prompt (`promptLogprobs`): each row of such a
    /// chunk needs a full row of logits (vocabulary-sized), so these chunks are short.
    public var scoredChunkTokens = 32
    /// Logit rows for prompt scoring per step (bounds the logits buffer: rows x vocabulary floats).
    public var maxScoredRows = 64
    /// Sequences decoding at once.
    public var maxRunning = 64
    /// Requests waiting for admission; beyond it, submissions are refused (HTTP 429).
    public var maxQueue = 256
    /// KV cache bytes shared by all sequences.
    public var kvBudgetBytes = 4 << 30
    /// How the KV cache stores keys and values.
    public var kvCacheType = KVCacheType.f16
    /// Positions per KV block: the prefix cache's granularity (`chunkTokens` must be a multiple).
    public var kvBlockTokens = 64
    /// Whether finished and dropped blocks are kept for later requests with the same prefix.
    public var prefixCaching = true
    /// Prompt-lookup speculative decoding (see Speculation.swift).
    public var speculation = SpeculationConfig()
    public init() {}
}

public struct GenerationRequest: Sendable {
    public var prompt: [Int32]
    public var maxTokens: Int
    public var params: SamplingParams
    public var stop: [String]
    public var ignoreEOS: Bool
    /// Score the prompt: the log-probability of each prompt token after the first, with this many
    /// top alternatives (0-5), delivered as one `.promptLogprobs` event before any token. nil: no.
    /// `maxTokens` may then be 0 (score only).
    public var promptLogprobs: Int?
    /// Requests share cached prefixes only with requests of the same salt (vLLM's `cache_salt`).
    public var cacheSalt: String?
    /// Structured output: only tokens the grammar allows are sampled; generation ends when the text is
    /// complete (end-of-generation tokens are allowed exactly then, whatever `ignoreEOS` says).
    public var constraint: GrammarConstraint?
    /// Whether this request may decode speculatively when the server does (the text is the same either
    /// way; off trades speed for nothing but a predictable per-token rhythm).
    public var speculative = true
    public init(prompt: [Int32], maxTokens: Int, params: SamplingParams, stop: [String] = [], ignoreEOS: Bool = false,
                promptLogprobs: Int? = nil, cacheSalt: String? = nil, constraint: GrammarConstraint? = nil) {
        self.prompt = prompt; self.maxTokens = maxTokens; self.params = params; self.stop = stop; self.ignoreEOS = ignoreEOS
        self.promptLogprobs = promptLogprobs
        self.cacheSalt = cacheSalt
        self.constraint = constraint
    }
}

public enum GenerationEvent: Sendable {
    /// A sampled token and the text that became safe to send (complete UTF-8, no stop-string prefix).
    case token(SampledToken, text: String)
    /// `cachedTokens`: prompt tokens taken from the prefix cache instead of computed.
    case finished(FinishReason, promptTokens: Int, completionTokens: Int, cachedTokens: Int)
    case failed(String)
    /// A prompt chunk was processed (no token yet): `done` of `total` prompt tokens.
    case prefilling(done: Int, total: Int)
    /// The scores of prompt tokens 1..<count (see `GenerationRequest.promptLogprobs`).
    case promptLogprobs([SampledToken])
}

/// Receives a request's events on the engine thread; returns false when nobody listens any more
/// (the request is then cancelled and its KV freed before the next step).
public typealias GenerationSink = @Sendable (GenerationEvent) -> Bool

public enum SchedulerError: Error, Equatable, CustomStringConvertible {
    case queueFull(waiting: Int)
    case exceedsContext(promptTokens: Int, maxTokens: Int, context: Int)
    case exceedsKVBudget(needed: Int, budget: Int)
    case emptyPrompt
    case stopped

    public var description: String {
        switch self {
        case let .queueFull(w): "server overloaded: \(w) requests already waiting"
        case let .exceedsContext(p, m, c): ContextLimit.exceeded(promptTokens: p, maxTokens: m, context: c)
        case let .exceedsKVBudget(n, b): "request needs \(n) bytes of KV cache, more than the server's whole budget (\(b))"
        case .emptyPrompt: "the prompt is empty"
        case .stopped: "the server is shutting down"
        }
    }
}

/// Counters and latency samples for /metrics.
public struct SchedulerStats: Sendable {
    public var running = 0, waiting = 0
    /// The most sequences that ever ran at once.
    public var peakRunning = 0
    public var promptTokens = 0, generatedTokens = 0, requestsFinished = 0
    public var kvInUse = KVBytes(sliding: 0, global: 0)
    public var kvAllocated = 0, kvBudget = 0
    /// Bytes of blocks kept only for reuse (evictable), and the prefix cache's counters.
    public var kvCached = 0
    /// Bytes of blocks held by live sequences.
    public var kvLive: Int { kvAllocated - kvCached }
    public var prefix = PrefixCacheStats()
    /// Speculative decoding: steps that verified a draft, draft tokens proposed and accepted.
    public var specSteps = 0, specDrafted = 0, specAccepted = 0
    /// The cache's configuration (for /metrics).
    public var kvBlockTokens = 0, kvCacheType = "", prefixCaching = false
    public var timeToFirstToken = Histogram(bounds: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
    public var interTokenLatency = Histogram(bounds: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1])
    public var batchSize = Histogram(bounds: [1, 2, 4, 8, 16, 32, 64, 128])
    public init() {}
}

public struct Histogram: Sendable {
    public let bounds: [Double]
    public private(set) var counts: [Int]
    public private(set) var sum = 0.0
    public private(set) var count = 0
    public init(bounds: [Double]) { self.bounds = bounds; counts = Array(repeating: 0, count: bounds.count) }
    public mutating func observe(_ v: Double) {
        for (i, b) in bounds.enumerated() where v <= b { counts[i] += 1 }
        sum += v
        count += 1
    }
}
