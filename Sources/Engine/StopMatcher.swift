// Stop sequences over streamed text: a stop string is found even when split across tokens, and text
// that might be the start of one is held back, so a stop string never leaks to the client.

struct StopMatcher: Sendable {
    let stops: [[UInt8]]
    private var pending: [UInt8] = []

    init(_ stops: [String]) { self.stops = stops.filter { !$0.isEmpty }.map { Array($0.utf8) } }

    /// Adds complete UTF-8 text; returns what may be sent now, and whether a stop string was reached
    /// (then the text before it is returned and the rest discarded).
    mutating func push(_ text: String) -> (emit: String, stopped: Bool) {
        if stops.isEmpty { return (text, false) }
        pending += text.utf8
        var first: Int?
        for s in stops {
            if let i = Self.find(s, in: pending), i < (first ?? Int.max) { first = i }
        }
        if let i = first {
            let out = String(decoding: pending[..<i], as: UTF8.self)
            pending = []
            return (out, true)
        }
        var hold = 0
        for s in stops {
            for k in stride(from: min(s.count - 1, pending.count), to: 0, by: -1)
            where pending[(pending.count - k)...].elementsEqual(s[..<k]) {
                hold = max(hold, k)
                break
            }
        }
        let out = String(decoding: pending[..<(pending.count - hold)], as: UTF8.self)
        pending.removeFirst(pending.count - hold)
        return (out, false)
    }

    /// Releases held-back text at the end of generation.
    mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }

    static func find(_ needle: [UInt8], in hay: [UInt8]) -> Int? {
        guard needle.count <= hay.count else { return nil }
        for i in 0...(hay.count - needle.count) where hay[i] == needle[0] && hay[i..<i + needle.count].elementsEqual(needle) {
            return i
        }
        return nil
    }
}
