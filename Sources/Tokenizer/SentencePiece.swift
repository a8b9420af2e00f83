// SentencePiece-style tokenization with scores (tokenizer.ggml.model = "llama"; Gemma 3):
// spaces become U+2581, pairs merge by the highest vocabulary score, unknown pieces fall back to
// <0xXX> byte tokens. Mirrors llama.cpp's llm_tokenizer_spm.

struct SentencePieceModel: Sendable {
    let vocab: Vocabulary
    let addSpacePrefix: Bool
    let byteTokens: [Int32?]   // <0xXX> ids

    init(vocab: Vocabulary, addSpacePrefix: Bool) {
        self.vocab = vocab
        self.addSpacePrefix = addSpacePrefix
        byteTokens = (0..<256).map { b in
            vocab.id("<0x" + String(b, radix: 16, uppercase: true).leftPadded(2) + ">")
        }
    }

    func encode(_ text: [UInt8], isFirst: Bool, into out: inout [Int32]) {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.count + 8)
        if addSpacePrefix && isFirst { bytes += [0xE2, 0x96, 0x81] }
        for b in text { if b == 0x20 { bytes += [0xE2, 0x96, 0x81] } else { bytes.append(b) } }
        let n = vocab.count
        let ranges = bytes.withUnsafeBufferPointer { bp in
            SymbolMerger.merge(bytes) { start, ll, rl in
                guard let id = vocab.id(bytes: UnsafeBufferPointer(rebasing: bp[start..<start + ll + rl])), Int(id) < n else { return nil }
                return vocab.scores[Int(id)]
            }
        }
        for r in ranges {
            if let id = bytes.withUnsafeBufferPointer({ vocab.id(bytes: UnsafeBufferPointer(rebasing: $0[r])) }) {
                out.append(id)
            } else {
                for b in bytes[r] { if let t = byteTokens[Int(b)] ?? vocab.unk { out.append(t) } }
            }
        }
    }

    /// The bytes a token stands for in decoded text.
    func piece(_ id: Int32) -> [UInt8] {
        let i = Int(id)
        switch vocab.types[i] {
        case .control, .unused: return []
        case .byte:
            let t = vocab.tokens[i]   // "<0xAB>"
            if t.count == 6, let b = UInt8(t.dropFirst(3).prefix(2), radix: 16) { return [b] }
            return Array(t.utf8)
        case .userDefined: return Array(vocab.tokens[i].utf8)
        default:
            return Array(vocab.tokens[i].replacingOccurrences(of: "\u{2581}", with: " ").utf8)
        }
    }
}

extension String {
    func leftPadded(_ n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
    func replacingOccurrences(of a: String, with b: String) -> String {
        guard contains(a) else { return self }
        return split(separator: a, omittingEmptySubsequences: false).joined(separator: b)
    }
}
