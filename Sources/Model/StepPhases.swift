// Where a forward step's time goes, for `zebra bench`: attention of the sliding and the global layers
// (including the merge of split queries), the rest of the layers (embedding, norms, projections, FFN), and the
// output (final norm and logits). Off unless asked for: the cost when on is 2 clock reads per layer.
import Kernels

public struct StepPhases: Sendable, Equatable {
    /// Seconds, summed over the steps since the counters were reset.
    public var slidingAttention = 0.0, globalAttention = 0.0, otherLayerWork = 0.0, output = 0.0
    public var steps = 0

    public init() {}

    public var attention: Double { slidingAttention + globalAttention }
    public var total: Double { attention + otherLayerWork + output }

    /// Per-step means in milliseconds, in the order of the fields.
    public var millisecondsPerStep: (slidingAttention: Double, globalAttention: Double, otherLayerWork: Double, output: Double) {
        let k = steps > 0 ? 1e3 / Double(steps) : 0
        return (slidingAttention * k, globalAttention * k, otherLayerWork * k, output * k)
    }
}
