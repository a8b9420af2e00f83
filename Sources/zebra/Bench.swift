// `zebra bench`: prompt processing and decode speed, decode cost against context depth, aggregate
// decode of parallel sequences, heap allocations per decode step, KV bytes. Like llama-bench and
// llama-batched-bench, timed decode steps feed pseudo-random tokens and do not sample.
import ArgumentParser
import CKernels
import CMallocCounter
import Engine
import Foundation
import Kernels
import Model

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure prompt processing, decode speed at several context depths, and KV memory.")
    @OptionGroup var options: ModelOptions
    @Option(name: .customLong("prompt-lengths"), help: "Prompt lengths for prompt processing.") var promptLengths = "512,2048"
    @Option(help: "Context depths at which to time decode.") var depths = "0,4096,16384"
    @Option(name: .customLong("decode-tokens"), help: "Tokens decoded per measurement.") var decodeTokens = 32
    @Option(help: "Parallel sequence counts for aggregate decode ('' for none).") var parallel = "4,16"
    @Option(name: .customLong("parallel-prompt"), help: "Prompt tokens per parallel sequence before decoding.") var parallelPrompt = 128
    @Option(name: .customLong("verify-rows"), help: "Rows of one sequence's speculative verification steps to time, at depth 512 ('' for none).") var verifyRows = "1,2,3,5,9"
    @Option(help: "Repetitions (median reported).") var reps = 1
    @Flag(help: "Print one JSON object instead of a table.") var json = false
    @Option(name: .customLong("kv-context"), help: "Context length for the KV-bytes figure (default: the model's).") var kvContext: Int?

    func run() throws {
        let m = Loaded(options)
        let model = m.model, c = model.config
        let pls = promptLengths.split(separator: ",").compactMap { Int($0) }
        let ds = depths.split(separator: ",").compactMap { Int($0) }
        let pars = parallel.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 }
        func progress(_ s: String) { Console.standardError.write("\r\u{1B}[K" + s) }
        // Deterministic pseudo-random prompt tokens (avoid control tokens: ids from 1000 up, or from the
        // middle of a vocabulary smaller than 2000).
        var rng = SeededGenerator(seed: 42)
        let lowest = min(1000, c.vocabSize / 2)
        func tokens(_ n: Int) -> [Int32] { (0..<n).map { _ in Int32(lowest + Int(rng.next() % UInt64(c.vocabSize - lowest))) } }
        func median(_ xs: [Double]) -> Double { let s = xs.sorted(); return s[s.count / 2] }

        // Prompt processing as a running server sees it: after one untimed prompt of the same length
        // (scratch grown, the cache's pages faulted in; llama-bench warms up the same way), each
        // repetition a new sequence of fresh tokens in the same cache.
        var pp: [(Int, Double)] = []
        for n in pls where n < c.contextLength {
            var rates: [Double] = []
            let cache = model.makeCache(type: m.kvCacheType)
            for r in -1..<reps {
                progress(r < 0 ? "prompt processing \(n) tokens (warm-up)" : "prompt processing \(n) tokens (rep \(r + 1)/\(reps))")
                let seq = cache.newSequence()
                let toks = tokens(n)
                let t0 = monotonicSeconds()
                var i = 0
                while i < n {
                    let k = min(512, n - i)
                    _ = try model.forward([BatchItem(seq: seq, tokens: Array(toks[i..<i + k]), logits: i + k == n ? .last : .none)], cache: cache)
                    i += k
                }
                if r >= 0 { rates.append(Double(n) / (monotonicSeconds() - t0)) }
                cache.release(seq)
            }
            pp.append((n, median(rates)))
        }
        var allocations = 0, countedSteps = 0
        /// Times one forward of `items` (built outside the timed region) and, when `counted` (after two
        /// warm-up steps: scratch is grown by then), adds its heap allocations to the steady-state count.
        func timedStep(_ cache: KVCache, counted: Bool, _ items: [BatchItem]) throws -> Double {
            let a0 = zm_allocation_count()
            let t0 = monotonicSeconds()
            _ = try model.forward(items, cache: cache)
            let t = monotonicSeconds() - t0
            if counted { allocations += Int(zm_allocation_count() - a0); countedSteps += 1 }
            return t
        }
        // Decode at every depth, one step at each depth in turn (rotating which goes first): the
        // machine's speed drifts by 10-20% over seconds here, and timing the depths back to back
        // puts the same drift into every depth, so their ratio measures the context, not the drift.
        let decodeDepths = ds.filter { $0 + decodeTokens < c.contextLength }
        var depthTimes = [[Double]](repeating: [], count: decodeDepths.count)  // [depth][rep] s/token
        // Where the steps' time goes at each depth (after the warm-up steps, over all repetitions).
        var phases = [StepPhases](repeating: StepPhases(), count: decodeDepths.count)
        for r in 0..<reps where !decodeDepths.isEmpty {
            var runs: [(cache: KVCache, seq: SequenceKV, next: [Int32])] = []
            for d in decodeDepths {
                let cache = model.makeCache(type: m.kvCacheType)
                let seq = cache.newSequence()
                var i = 0
                let toks = tokens(max(d, 1))
                while i < toks.count {
                    progress("decode at depth \(d): filling context \(i)/\(toks.count) (rep \(r + 1)/\(reps))")
                    let k = min(512, toks.count - i)
                    _ = try model.forward([BatchItem(seq: seq, tokens: Array(toks[i..<i + k]), logits: .none)], cache: cache)
                    i += k
                }
                runs.append((cache, seq, tokens(decodeTokens)))
            }
            progress("decode at depths \(decodeDepths.map(String.init).joined(separator: ", ")): \(decodeTokens) tokens each (rep \(r + 1)/\(reps))")
            var total = [Double](repeating: 0, count: runs.count)
            for i in 0..<decodeTokens {
                for k in runs.indices {
                    let di = (i + k) % runs.count
                    let run = runs[di]
                    model.phases = i >= 2 ? phases[di] : nil
                    total[di] += try timedStep(run.cache, counted: i >= 2, [BatchItem(seq: run.seq, tokens: [run.next[i]], logits: .last)])
                    if let p = model.phases { phases[di] = p }
                }
            }
            model.phases = nil
            for di in runs.indices { depthTimes[di].append(total[di] / Double(decodeTokens)) }
        }
        let dec: [(Int, Double)] = zip(decodeDepths, depthTimes).map { ($0, median($1)) }
        // Per repetition: the deepest depth's time over the first's (both from the same interleaved run).
        let depthRatios: [Double] = decodeDepths.count > 1 ? (0..<reps).map { depthTimes[depthTimes.count - 1][$0] / depthTimes[0][$0] } : []
        var agg: [(Int, Double)] = []
        var aggPhases: [(Int, StepPhases)] = []
        for n in pars where parallelPrompt + decodeTokens < c.contextLength {
            var rates: [Double] = []
            var ph = StepPhases()
            for r in 0..<reps {
                progress("aggregate decode, \(n) sequences: prompts of \(parallelPrompt) (rep \(r + 1)/\(reps))")
                let cache = model.makeCache(type: m.kvCacheType)
                let seqs = (0..<n).map { _ in cache.newSequence() }
                for s in seqs { _ = try model.forward([BatchItem(seq: s, tokens: tokens(parallelPrompt), logits: .last)], cache: cache) }
                progress("aggregate decode, \(n) sequences: \(decodeTokens) steps (rep \(r + 1)/\(reps))")
                let toks = tokens(n * decodeTokens)
                var t = 0.0
                for i in 0..<decodeTokens {
                    let items = seqs.indices.map { BatchItem(seq: seqs[$0], tokens: [toks[i * n + $0]], logits: .last) }
                    model.phases = i >= 2 ? ph : nil
                    t += try timedStep(cache, counted: i >= 2, items)
                    if let p = model.phases { ph = p }
                }
                model.phases = nil
                rates.append(Double(n * decodeTokens) / t)
            }
            agg.append((n, median(rates)))
            aggPhases.append((n, ph))
        }
        // Speculative verification: one sequence at depth 512, a step of r rows with every row's logits
        // (nothing recorded, so every step is at the same depth), r values interleaved step by step.
        let vrs = verifyRows.split(separator: ",").compactMap { Int($0) }.filter { $0 > 0 && $0 < model.matmul.blasMinRows }
        var verify: [(Int, Double)] = []
        var verifyPhases: [(Int, (slidingAttention: Double, globalAttention: Double, otherLayerWork: Double, output: Double))] = []
        if !vrs.isEmpty && 512 + vrs.max()! < c.contextLength {
            progress("speculative verification steps of \(vrs.map(String.init).joined(separator: ", ")) rows")
            let cache = model.makeCache(type: m.kvCacheType)
            let seq = cache.newSequence()
            _ = try model.forward([BatchItem(seq: seq, tokens: tokens(512), logits: .none)], cache: cache)
            var times = [[Double]](repeating: [], count: vrs.count)
            var vph = [StepPhases](repeating: StepPhases(), count: vrs.count)
            let toks = tokens(vrs.max()!)
            for i in 0..<(decodeTokens + 2) {
                for k in vrs.indices {
                    let vi = (i + k) % vrs.count
                    model.phases = i >= 2 ? vph[vi] : nil
                    let t = try timedStep(cache, counted: false, [BatchItem(seq: seq, tokens: Array(toks.prefix(vrs[vi])), logits: .all, appends: false)])
                    if let p = model.phases { vph[vi] = p }
                    if i >= 2 { times[vi].append(t) }
                }
            }
            model.phases = nil
            verify = zip(vrs, times).map { ($0, median($1)) }
            verifyPhases = zip(vrs, vph).map { ($0, $1.millisecondsPerStep) }
        }
        let allocsPerStep = countedSteps > 0 ? Double(allocations) / Double(countedSteps) : 0
        progress("")
        let kvCache = model.makeCache(type: m.kvCacheType)
        let kvTokens = kvContext ?? c.contextLength
        let kvSeq = kvCache.bytesNeeded(tokens: kvTokens)
        var allGlobal = c
        allGlobal.layers = LayerPattern.allGlobal.apply(to: c.layers)
        let kvFull = KVCache(layers: allGlobal.layers, kvHeads: c.nKVHeads, headDim: c.headDim, type: m.kvCacheType).bytesNeeded(tokens: kvTokens).total
        let layersDesc = "\(c.slidingLayerCount) sliding + \(c.globalLayerCount) global"
        if json {
            var o: [String: Any] = [
                "model": options.modelPath, "threads": model.pool.threadCount, "layers": layersDesc,
                "kernels": kernelPath, "decode_gemm": model.matmul.rowsGemmDescription, "packed_weights": model.weights.packedDescription, "blas_core": BLASCore.name, "kv_cache": m.kvCacheType.rawValue,
                "prompt_tokens_per_second": Dictionary(uniqueKeysWithValues: pp.map { (String($0.0), $0.1) }),
                // What a prompt's attention must compute (QK and PV, every head, every visible key):
                // the bench's compute ceiling divides it by the machine's multiply-add peak.
                "prompt_attention_multiply_adds": Dictionary(uniqueKeysWithValues: pp.map { (String($0.0), attentionMultiplyAdds(c, prompt: $0.0)) }),
                "decode_ms_per_token": Dictionary(uniqueKeysWithValues: dec.map { (String($0.0), $0.1 * 1000) }),
                "aggregate_decode_tokens_per_second": Dictionary(uniqueKeysWithValues: agg.map { (String($0.0), $0.1) }),
                "heap_allocations_per_decode_step": allocsPerStep,
                // What that figure stands on: the steps counted, and the process's allocations so far
                // (nonzero: the counter sees malloc at all).
                "decode_steps_counted": countedSteps,
                "heap_allocations_in_process": Int(zm_allocation_count()),
                "weight_bytes_per_decode_step": model.weights.bytesPerDecodeStep,
                // The cache a step at each depth reads: every held position of every layer, K and V.
                "kv_bytes_per_decode_step": Dictionary(uniqueKeysWithValues: decodeDepths.map { (String($0), kvCache.bytesNeeded(tokens: $0 + 1).total) }),
                "verify_step_ms_by_rows": Dictionary(uniqueKeysWithValues: verify.map { (String($0.0), $0.1 * 1000) }),
                "decode_time_ratio_per_rep": depthRatios,
                "aggregate_decode_phases_ms_per_step": Dictionary(uniqueKeysWithValues: aggPhases.map { (String($0), phasesJSON($1)) }),
                "decode_phases_ms_per_step": Dictionary(uniqueKeysWithValues: zip(decodeDepths, phases).map { (String($0), phasesJSON($1)) }),
                "kv_bytes_per_sequence_at_context": ["context": kvTokens, "sliding": kvSeq.sliding,
                                                     "global": kvSeq.global, "total": kvSeq.total, "all_global": kvFull],
            ]
            if let d0 = dec.first { o["decode_tokens_per_second"] = 1 / d0.1 }
            if !depthRatios.isEmpty { o["decode_time_ratio"] = median(depthRatios) }
            let data = try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        print("model: \(options.modelPath) (\(layersDesc)), threads: \(model.pool.threadCount), kernels: \(kernelPath), decode batches on the GEMM: \(model.matmul.rowsGemmDescription), packed weights: \(model.weights.packedDescription), BLAS: \(BLASCore.name), KV cache: \(m.kvCacheType.rawValue)")
        for (n, r) in pp { print(String(format: "prompt processing %6d tokens: %8.1f tokens/s", n, r)) }
        for (d, t) in dec { print(String(format: "decode at depth %6d: %7.2f ms/token (%6.1f tokens/s)", d, t * 1000, 1 / t)) }
        if let first = dec.first, let last = dec.last, !depthRatios.isEmpty {
            let each = depthRatios.map { String(format: "%.2f", $0) }.joined(separator: ", ")
            print(String(format: "decode time ratio depth %d / depth %d: %.2f (median; per repetition: %@; depths interleaved step by step)",
                         last.0, first.0, median(depthRatios), each))
        }
        for (d, p) in zip(decodeDepths, phases) {
            let ms = p.millisecondsPerStep
            print(String(format: "  per step at depth %6d: attention %.3f ms in sliding layers, %.3f ms in global layers; other layer work %.3f ms; output %.3f ms",
                         d, ms.slidingAttention, ms.globalAttention, ms.otherLayerWork, ms.output))
        }
        for ((n, r), (_, p)) in zip(agg, aggPhases) {
            let ms = p.millisecondsPerStep
            print(String(format: "aggregate decode, %3d sequences: %8.1f tokens/s", n, r))
            print(String(format: "  per step of %3d sequences: attention %.3f ms; other layer work %.3f ms; output %.3f ms",
                         n, ms.slidingAttention + ms.globalAttention, ms.otherLayerWork, ms.output))
        }
        if let one = verify.first(where: { $0.0 == 1 })?.1 ?? verify.first?.1 {
            let each = verify.map { String(format: "%d rows %.2f ms (%.2fx)", $0.0, $0.1 * 1000, $0.1 / one) }.joined(separator: ", ")
            print("speculative verification step at depth 512, every row's logits: \(each)")
            for (r, ms) in verifyPhases {
                print(String(format: "  per step of %d rows: attention %.3f ms; other layer work %.3f ms; output %.3f ms",
                             r, ms.slidingAttention + ms.globalAttention, ms.otherLayerWork, ms.output))
            }
        }
        print(String(format: "heap allocations per decode step (steady state, inside forward): %.2f", allocsPerStep))
        func mib(_ b: Int) -> String { String(format: "%.1f MiB", Double(b) / 1_048_576) }
        print("KV bytes per sequence at \(kvTokens) tokens: \(mib(kvSeq.total)) (sliding \(mib(kvSeq.sliding)), global \(mib(kvSeq.global))); every layer global: \(mib(kvFull))")
    }
}

/// A step's phases in the bench's JSON: milliseconds per step by phase.
private func phasesJSON(_ p: StepPhases) -> [String: Double] {
    let ms = p.millisecondsPerStep
    return ["sliding_attention": ms.slidingAttention, "global_attention": ms.globalAttention,
            "other_layer_work": ms.otherLayerWork, "output": ms.output]
}

/// Multiply-adds of a prompt's attention: per layer and query position p, its visible keys (all up to p,
/// or the window's) times every query head's QK and PV products of headDim.
func attentionMultiplyAdds(_ c: ModelConfig, prompt n: Int) -> Int {
    var pairs = 0
    for l in c.layers {
        switch l.kind {
        case .global: pairs += n * (n + 1) / 2
        case let .sliding(w):
            let m = min(n, w)
            pairs += m * (m + 1) / 2 + (n - m) * w
        }
    }
    return pairs * c.nHeads * c.headDim * 2
}
