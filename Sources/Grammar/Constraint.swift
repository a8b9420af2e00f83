// A grammar bound to a vocabulary: the token masks of its parser states, cached per state, shared by
// every request that uses the same grammar (the server caches compiled grammars by schema). A mask has
// bit t set when token t's bytes may come next; the end-of-generation tokens are allowed exactly when
// the text so far is complete.
#if canImport(Glibc)
import Glibc
#endif

public final class GrammarConstraint: @unchecked Sendable {
    public let grammar: Grammar
    public let trie: TokenTrie
    /// Tokens that end generation (allowed when the text is complete).
    public let endTokens: [Int32]
    /// Masks kept per grammar (each vocabulary/64 words: 32 KiB for a 262k vocabulary), oldest out first.
    public let maxMasks: Int
    private var masks: [[UInt32]: [UInt64]] = [:]
    private var order: [[UInt32]] = []
    private var lock = pthread_mutex_t()
    public private(set) var maskBuilds = 0, maskHits = 0
    /// Seconds spent building masks.
    public private(set) var maskSeconds = 0.0

    public init(grammar: Grammar, trie: TokenTrie, endTokens: [Int32], maxMasks: Int = 128) {
        self.grammar = grammar
        self.trie = trie
        self.endTokens = endTokens
        self.maxMasks = maxMasks
        pthread_mutex_init(&lock, nil)
    }

    /// Masks built, masks reused and seconds building them, read consistently.
    public var counters: (builds: Int, hits: Int, seconds: Double) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        return (maskBuilds, maskHits, maskSeconds)
    }

    public var words: Int { (trie.vocabularySize + 63) / 64 }

    /// The mask of the matcher's current state.
    public func mask(_ m: GrammarMatcher) -> [UInt64] {
        let key = m.stateKey(horizon: trie.maxDepth)
        pthread_mutex_lock(&lock)
        if let hit = masks[key] { maskHits += 1; pthread_mutex_unlock(&lock); return hit }
        pthread_mutex_unlock(&lock)
        var t0 = timespec(), t1 = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t0)
        var mask = [UInt64](repeating: 0, count: words)
        mask.withUnsafeMutableBufferPointer { m.fillMask(trie, $0.baseAddress!) }
        clock_gettime(CLOCK_MONOTONIC, &t1)
        if m.isAccepting {
            for t in endTokens where Int(t) < trie.vocabularySize { mask[Int(t) >> 6] |= 1 << UInt64(t & 63) }
        }
        pthread_mutex_lock(&lock)
        maskBuilds += 1
        maskSeconds += Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) * 1e-9
        if masks.count >= maxMasks, let old = order.first { masks[old] = nil; order.removeFirst() }
        if masks[key] == nil { masks[key] = mask; order.append(key) }
        pthread_mutex_unlock(&lock)
        return mask
    }

    /// Whether token t may come next (without building the whole mask).
    public func allows(_ m: GrammarMatcher, token t: Int32, bytes: [UInt8]) -> Bool {
        if endTokens.contains(t) { return m.isAccepting }
        return m.allows(bytes)
    }
}
