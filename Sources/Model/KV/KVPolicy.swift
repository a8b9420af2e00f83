// What each attention kind keeps of a sequence's KV, as data the cache manager reads: one type per kind
// (vLLM v1's FullAttentionManager / SlidingWindowManager; llama.cpp's iSWA is two caches with layer
// filters). The manager holds every kind in blocks of `blockTokens` positions; a policy says which of a
// sequence's blocks it still needs, which blocks a cached prefix needs to be continued from, and how many
// blocks it may hold at once.
//
//   sliding, W = 8, blocks of 4, after 13 tokens (positions 6..12 visible to the next query at 13):
//     blocks:  [0 1 2 3] [4 5 6 7] [8 9 10 11] [12 _ _ _]
//               dropped   kept      kept        kept          <- a ring of blocks: memory stays flat
//   global: every block from 0, growing with the sequence.

/// The KV-retention rule of one attention kind, in positions and blocks.
public protocol KVPolicy: Sendable {
    /// First position a query at `next` or later can see: storage below it is no longer needed.
    func firstKept(next: Int) -> Int
    /// Blocks whose KV a sequence needs to be continued from a computed prefix of `prefix` tokens
    /// (`prefix` a multiple of `blockTokens`): a prefix-cache hit at `prefix` needs all of them.
    func neededBlocks(prefix: Int, blockTokens: Int) -> Range<Int>
    /// Most blocks a sequence growing to `length` positions holds at once, when a step appends at most
    /// `step` positions (all of a step's rows are stored, so a window must hold them too).
    func peakBlocks(length: Int, step: Int, blockTokens: Int) -> Int
}

/// Full causal attention: every position stays.
public struct FullAttentionPolicy: KVPolicy {
    public init() {}
    public func firstKept(next: Int) -> Int { 0 }
    public func neededBlocks(prefix: Int, blockTokens: Int) -> Range<Int> { 0..<prefix / blockTokens }
    public func peakBlocks(length: Int, step: Int, blockTokens: Int) -> Int { (length + blockTokens - 1) / blockTokens }
}

/// A sliding window of `window` positions (the query's own included, `AttentionKind.firstVisible`).
public struct SlidingWindowPolicy: KVPolicy {
    public let window: Int
    public init(window: Int) { self.window = window }
    public func firstKept(next: Int) -> Int { AttentionKind.sliding(window: window).firstVisible(next) }
    public func neededBlocks(prefix: Int, blockTokens: Int) -> Range<Int> {
        firstKept(next: prefix) / blockTokens ..< prefix / blockTokens
    }
    /// The window before a step plus the step's own rows span W - 1 + step positions, which touch at most
    /// ceil((W - 1 + step) / B) + 1 blocks; never more than the sequence's whole length.
    public func peakBlocks(length: Int, step: Int, blockTokens: Int) -> Int {
        let all = (length + blockTokens - 1) / blockTokens
        return min(all, (window - 1 + step + blockTokens - 1) / blockTokens + 1)
    }
}

extension AttentionKind {
    /// This kind's KV policy.
    public var policy: any KVPolicy {
        if let w = window { return SlidingWindowPolicy(window: w) }
        return FullAttentionPolicy()
    }
}
