// GET /metrics in the Prometheus text exposition format (version 0.0.4).
import Engine
import HTTP

enum Metrics {
    static func render(_ s: SchedulerStats, http: HTTPCounters, structured g: StructuredOutputs.Stats = .init()) -> String {
        var out = ""
        func metric(_ name: String, _ type: String, _ help: String, _ lines: [(String, Double)]) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, v) in lines { out += "\(name)\(labels) \(format(v))\n" }
        }
        func histogram(_ name: String, _ help: String, _ h: Histogram) {
            out += "# HELP \(name) \(help)\n# TYPE \(name) histogram\n"
            for (b, c) in zip(h.bounds, h.counts) { out += "\(name)_bucket{le=\"\(format(b))\"} \(c)\n" }
            out += "\(name)_bucket{le=\"+Inf\"} \(h.count)\n\(name)_sum \(format(h.sum))\n\(name)_count \(h.count)\n"
        }
        metric("zebra_requests_running", "gauge", "Sequences in the running batch.", [("", Double(s.running))])
        metric("zebra_requests_waiting", "gauge", "Requests waiting for admission.", [("", Double(s.waiting))])
        metric("zebra_prompt_tokens_total", "counter", "Prompt tokens processed.", [("", Double(s.promptTokens))])
        metric("zebra_generated_tokens_total", "counter", "Tokens generated.", [("", Double(s.generatedTokens))])
        metric("zebra_requests_finished_total", "counter", "Sequences that finished generating.", [("", Double(s.requestsFinished))])
        histogram("zebra_time_to_first_token_seconds", "Time from submission to the first token.", s.timeToFirstToken)
        histogram("zebra_inter_token_latency_seconds", "Time between consecutive tokens of a sequence.", s.interTokenLatency)
        histogram("zebra_batch_size", "Sequences per forward step.", s.batchSize)
        metric("zebra_kv_cache_bytes", "gauge", "KV cache bytes in use (exact: global layers x tokens + sliding layers x min(tokens, window)).",
               [("{kind=\"sliding\"}", Double(s.kvInUse.sliding)), ("{kind=\"global\"}", Double(s.kvInUse.global))])
        metric("zebra_kv_cache_allocated_bytes", "gauge", "KV cache bytes allocated (whole rings and blocks).", [("", Double(s.kvAllocated))])
        metric("zebra_kv_cache_capacity_bytes", "gauge", "KV cache budget.", [("", Double(s.kvBudget))])
        metric("zebra_kv_cache_cached_bytes", "gauge", "KV blocks kept only for reuse by later prompts (evicted when live sequences need the room).",
               [("", Double(s.kvCached))])
        metric("zebra_prefix_cache_queries_tokens_total", "counter", "Prompt tokens looked up in the prefix cache.", [("", Double(s.prefix.queryTokens))])
        metric("zebra_spec_decode_verify_steps_total", "counter", "Decode steps that verified a speculative draft.", [("", Double(s.specSteps))])
        metric("zebra_spec_decode_draft_tokens_total", "counter", "Draft tokens proposed by prompt lookup.", [("", Double(s.specDrafted))])
        metric("zebra_spec_decode_accepted_tokens_total", "counter", "Draft tokens accepted (generated without a step of their own).", [("", Double(s.specAccepted))])
        metric("zebra_prefix_cache_hits_tokens_total", "counter", "Prompt tokens found in the prefix cache (not computed).", [("", Double(s.prefix.hitTokens))])
        metric("zebra_prefix_cache_evictions_total", "counter", "Cached KV blocks evicted.", [("", Double(s.prefix.evictions))])
        metric("zebra_structured_schemas_compiled_total", "counter", "Response schemas and tool grammars compiled (each distinct one once while cached).",
               [("", Double(g.compiled))])
        metric("zebra_structured_masks_built_total", "counter", "Token masks built for constrained decoding (steps that needed one and missed the cache).",
               [("", Double(g.maskBuilds))])
        metric("zebra_structured_mask_cache_hits_total", "counter", "Token masks taken from the per-state cache.", [("", Double(g.maskHits))])
        metric("zebra_structured_mask_seconds_total", "counter", "Engine-thread seconds spent building token masks.", [("", g.maskSeconds)])
        // The names the Gateway API Inference Extension's endpoint picker reads (vLLM's).
        metric("vllm:num_requests_running", "gauge", "Requests in the running batch.", [("", Double(s.running))])
        metric("vllm:num_requests_waiting", "gauge", "Requests waiting for admission.", [("", Double(s.waiting))])
        metric("vllm:kv_cache_usage_perc", "gauge", "Fraction of the KV budget held by live requests (0..1; cached blocks are free to evict).",
               [("", s.kvBudget > 0 ? Double(s.kvAllocated - s.kvCached) / Double(s.kvBudget) : 0)])
        metric("vllm:prefix_cache_queries_total", "counter", "Prompt tokens looked up in the prefix cache.", [("", Double(s.prefix.queryTokens))])
        metric("vllm:prefix_cache_hits_total", "counter", "Prompt tokens found in the prefix cache.", [("", Double(s.prefix.hitTokens))])
        metric("vllm:cache_config_info", "gauge", "KV cache configuration.",
               [("{block_size=\"\(s.kvBlockTokens)\",cache_dtype=\"\(s.kvCacheType)\",enable_prefix_caching=\"\(s.prefixCaching)\"}", 1)])
        metric("zebra_http_requests_total", "counter", "HTTP responses by status code.",
               http.snapshot().sorted { $0.key < $1.key }.map { ("{status=\"\($0.key)\"}", Double($0.value)) })
        return out
    }

    static func format(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(v)
    }
}

/// Responses by status, from any thread.
final class HTTPCounters: @unchecked Sendable {
    private var counts: [Int: Int] = [:]
    private let lock = Mutex()
    func add(_ status: Int) { lock.withLock { counts[status, default: 0] += 1 } }
    func snapshot() -> [Int: Int] { lock.withLock { counts } }
}
