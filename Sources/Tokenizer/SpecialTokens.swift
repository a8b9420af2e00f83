// Splitting text at special tokens before the subword model runs (llama.cpp tokenizer_st_partition):
// longest special text first, every occurrence; user-defined tokens always, control/unknown tokens only
// when parsing specials.

enum Fragment {
    case text([UInt8])
    case token(Int32)
}

struct SpecialTokens: Sendable {
    /// (id, bytes, isControl), sorted by length descending (stable by id).
    let entries: [(id: Int32, bytes: [UInt8], control: Bool)]
    /// Indices into `entries` by first byte, to find which specials occur at all in one pass.
    let byFirstByte: [[Int]]

    init(vocab: Vocabulary) {
        var e: [(id: Int32, bytes: [UInt8], control: Bool)] = []
        for (i, t) in vocab.tokens.enumerated() {
            let ty = vocab.types[i]
            guard ty == .control || ty == .userDefined || ty == .unknown, !t.isEmpty else { continue }
            e.append((Int32(i), Array(t.utf8), ty != .userDefined))
        }
        e = e.enumerated().sorted { a, b in
            a.element.bytes.count != b.element.bytes.count ? a.element.bytes.count > b.element.bytes.count : a.offset < b.offset
        }.map(\.element)
        var idx = Array(repeating: [Int](), count: 256)
        for (i, s) in e.enumerated() { idx[Int(s.bytes[0])].append(i) }
        entries = e
        byFirstByte = idx
    }

    func partition(_ text: [UInt8], parseSpecial: Bool) -> [Fragment] {
        // Which specials occur anywhere (one scan), then llama.cpp's longest-first partition over those.
        var present = Set<Int>()
        text.withUnsafeBufferPointer { tb in
            for p in 0..<tb.count {
                for i in byFirstByte[Int(tb[p])] where !present.contains(i) {
                    let b = entries[i].bytes
                    if (parseSpecial || !entries[i].control) && p + b.count <= tb.count && matches(tb, p, b) { present.insert(i) }
                }
            }
        }
        var frags: [Fragment] = [.text(text)]
        for i in present.sorted() {
            let sp = entries[i]
            var out: [Fragment] = []
            for f in frags {
                guard case let .text(raw) = f else { out.append(f); continue }
                var start = 0
                var p = 0
                raw.withUnsafeBufferPointer { rb in
                    while p + sp.bytes.count <= rb.count {
                        if matches(rb, p, sp.bytes) {
                            if p > start { out.append(.text(Array(rb[start..<p]))) }
                            out.append(.token(sp.id))
                            p += sp.bytes.count
                            start = p
                        } else {
                            p += 1
                        }
                    }
                }
                if start < raw.count { out.append(.text(Array(raw[start...]))) }
            }
            frags = out
        }
        return frags
    }

    private func matches(_ t: UnsafeBufferPointer<UInt8>, _ p: Int, _ b: [UInt8]) -> Bool {
        for j in 0..<b.count where t[p + j] != b[j] { return false }
        return true
    }
}
