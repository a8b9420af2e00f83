// A layer's attention kind is data, computed once: the KV cache, the masks and RoPE all read this.

/// Which keys a layer's queries may see.
public enum AttentionKind: Sendable, Equatable, CustomStringConvertible {
    /// Full causal attention: query i sees every key j <= i.
    case global
    /// Sliding window of W keys counting the current one: query i sees j with i - W < j <= i
    /// (llama.cpp: masked iff pos_q - pos_k >= n_swa).
    case sliding(window: Int)

    public var window: Int? { if case let .sliding(w) = self { w } else { nil } }
    public var description: String { window.map { "sliding(\($0))" } ?? "global" }

    /// First position visible to a query at `pos`.
    @inline(__always) public func firstVisible(_ pos: Int) -> Int {
        if case let .sliding(w) = self { return max(0, pos - w + 1) }
        return 0
    }
}

public struct LayerSpec: Sendable, Equatable {
    public var kind: AttentionKind
    public var ropeBase: Float
    public init(kind: AttentionKind, ropeBase: Float) { self.kind = kind; self.ropeBase = ropeBase }
}

/// A `--layers` override: `global` (every layer full attention) or
/// `zebra:group=G,window=W,global=first|last` (the paper's grouped pattern: one global layer per
/// group of G, the others sliding with window W). Weights are untouched; RoPE bases stay per layer.
public struct LayerPattern: Sendable, Equatable {
    public enum GlobalPosition: String, Sendable { case first, last }
    public var group: Int?          // nil: every layer global
    public var window: Int = 0
    public var globalPosition: GlobalPosition = .first

    public static let allGlobal = LayerPattern(group: nil)

    public init(group: Int?, window: Int = 0, globalPosition: GlobalPosition = .first) {
        self.group = group; self.window = window; self.globalPosition = globalPosition
    }

    public init(parsing text: String) throws(ModelError) {
        if text == "global" { self = .allGlobal; return }
        guard text.hasPrefix("zebra:") else {
            throw .invalidLayerPattern("'\(text)': expected 'global' or 'zebra:group=G,window=W,global=first|last'")
        }
        var group: Int?, window: Int?, pos = GlobalPosition.first
        for part in text.dropFirst(6).split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map(String.init)
            guard kv.count == 2 else { throw .invalidLayerPattern("'\(part)' is not key=value") }
            switch kv[0] {
            case "group":
                guard let g = Int(kv[1]), g >= 1 else { throw .invalidLayerPattern("group must be an integer >= 1") }
                group = g
            case "window":
                guard let w = Int(kv[1]), w >= 1 else { throw .invalidLayerPattern("window must be an integer >= 1") }
                window = w
            case "global":
                guard let p = GlobalPosition(rawValue: kv[1]) else { throw .invalidLayerPattern("global must be 'first' or 'last'") }
                pos = p
            default: throw .invalidLayerPattern("unknown key '\(kv[0])' (group, window, global)")
            }
        }
        guard let g = group, let w = window else { throw .invalidLayerPattern("'\(text)' needs group= and window=") }
        self.init(group: g, window: w, globalPosition: pos)
    }

    /// Applies the pattern to existing layer specs (keeping their RoPE bases).
    public func apply(to layers: [LayerSpec]) -> [LayerSpec] {
        layers.enumerated().map { i, spec in
            var s = spec
            guard let g = group else { s.kind = .global; return s }
            let isGlobal = globalPosition == .first ? i % g == 0 : i % g == g - 1
            s.kind = isGlobal ? .global : .sliding(window: window)
            return s
        }
    }
}
