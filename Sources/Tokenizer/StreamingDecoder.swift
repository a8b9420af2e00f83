// Incremental detokenization that never emits half a UTF-8 character: bytes of an incomplete
// trailing sequence are held back until the tokens that complete it arrive.

public struct StreamingDecoder: Sendable {
    private var pending: [UInt8] = []

    public init() {}

    /// Adds a token's bytes and returns the text that is now complete (possibly empty).
    public mutating func append(_ bytes: [UInt8]) -> String {
        pending += bytes
        let keep = Self.incompleteSuffixLength(pending)
        let ready = pending.count - keep
        guard ready > 0 else { return "" }
        let text = String(decoding: pending[..<ready], as: UTF8.self)
        pending.removeFirst(ready)
        return text
    }

    /// Whatever is still held (an incomplete character at the end of generation becomes U+FFFD).
    public mutating func flush() -> String {
        defer { pending = [] }
        return pending.isEmpty ? "" : String(decoding: pending, as: UTF8.self)
    }

    /// Length of a trailing UTF-8 sequence that has started but is not yet complete.
    static func incompleteSuffixLength(_ b: [UInt8]) -> Int {
        var i = b.count - 1
        var cont = 0
        while i >= 0 && cont < 3 && b[i] & 0xC0 == 0x80 { i -= 1; cont += 1 }
        guard i >= 0 else { return 0 }
        let lead = b[i]
        let need: Int
        switch lead >> 4 { case 0xF: need = 4; case 0xE: need = 3; case 0xC, 0xD: need = 2; default: return 0 }
        return cont + 1 < need ? cont + 1 : 0
    }
}
