// GPT-2 style byte-level BPE (tokenizer.ggml.model = "gpt2"; SmolLM2). Pre-tokenization as llama.cpp
// does for `tokenizer.ggml.pre` = smollm (and starcoder-like): every digit alone, then the GPT-2 pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// Bytes map to printable characters (GPT-2's bytes_to_unicode); merges apply by rank, lowest first.

struct BytePairModel: Sendable {
    let vocab: Vocabulary
    /// UTF-8 of "left right" -> rank (bytes, not String: see Vocabulary.ids)
    let ranks: [[UInt8]: Int]
    let splitDigits: Bool
    static let byteToChar: [Character] = {
        var map = [Character](repeating: " ", count: 256)
        var n = 0
        for b in 0..<256 {
            let printable = (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b)
            if printable { map[b] = Character(Unicode.Scalar(UInt8(b))) } else { map[b] = Character(Unicode.Scalar(256 + n)!); n += 1 }
        }
        return map
    }()
    static let scalarToByte: [UInt32: UInt8] = {
        var m: [UInt32: UInt8] = [:]
        for (b, c) in byteToChar.enumerated() { m[c.unicodeScalars.first!.value] = UInt8(b) }
        return m
    }()

    init(vocab: Vocabulary, merges: [String], pre: String) {
        self.vocab = vocab
        var r: [[UInt8]: Int] = [:]
        r.reserveCapacity(merges.count)
        for (i, m) in merges.enumerated() where r[Array(m.utf8)] == nil { r[Array(m.utf8)] = i }
        ranks = r
        splitDigits = ["smollm", "starcoder", "refact", "command-r", "codeshell", "exaone", "minerva"].contains(pre)
    }

    func encode(_ text: [UInt8], into out: inout [Int32]) {
        let scalars = Array(String(decoding: text, as: UTF8.self).unicodeScalars)
        var pieces: [Range<Int>] = []
        if splitDigits {
            var start = 0
            for (i, s) in scalars.enumerated() where UnicodeClass.isNumber(s) {
                if i > start { pieces.append(contentsOf: Self.gpt2Split(scalars, start..<i)) }
                pieces.append(i..<i + 1)
                start = i + 1
            }
            if start < scalars.count { pieces.append(contentsOf: Self.gpt2Split(scalars, start..<scalars.count)) }
        } else {
            pieces = Self.gpt2Split(scalars, 0..<scalars.count)
        }
        for p in pieces { encodeWord(scalars[p], into: &out) }
    }

    private func encodeWord(_ word: ArraySlice<Unicode.Scalar>, into out: inout [Int32]) {
        var mapped = ""
        for s in word { for b in String(s).utf8 { mapped.append(Self.byteToChar[Int(b)]) } }
        let bytes = Array(mapped.utf8)
        let ranges = bytes.withUnsafeBufferPointer { bp in
            SymbolMerger.merge(bytes) { start, ll, rl in
                var key = Array(bp[start..<start + ll])
                key.append(0x20)
                key += bp[start + ll..<start + ll + rl]
                guard let r = ranks[key] else { return nil }
                return -Float(r)
            }
        }
        for r in ranges {
            if let id = vocab.ids[Array(bytes[r])] {
                out.append(id)
            } else {
                for c in String(decoding: bytes[r], as: UTF8.self).unicodeScalars {
                    if let id = vocab.ids[Array(String(c).utf8)] { out.append(id) }
                }
            }
        }
    }

    /// llama.cpp's hand-written GPT-2 splitter (unicode_regex_split_custom_gpt2) over `range`.
    static func gpt2Split(_ s: [Unicode.Scalar], _ range: Range<Int>) -> [Range<Int>] {
        var out: [Range<Int>] = []
        let end = range.upperBound
        func cpt(_ i: Int) -> Unicode.Scalar? { i < end ? s[i] : nil }
        func isL(_ i: Int) -> Bool { cpt(i).map(UnicodeClass.isLetter) ?? false }
        func isN(_ i: Int) -> Bool { cpt(i).map(UnicodeClass.isNumber) ?? false }
        func isW(_ i: Int) -> Bool { cpt(i).map(UnicodeClass.isWhitespace) ?? false }
        func isOther(_ i: Int) -> Bool { cpt(i).map { !UnicodeClass.isWhitespace($0) && !UnicodeClass.isLetter($0) && !UnicodeClass.isNumber($0) && UnicodeClass.isAssigned($0) } ?? false }
        var start = range.lowerBound
        var pos = start
        func add(_ p: Int) { if p > start { out.append(start..<p) }; start = p }
        while pos < end {
            let c = s[pos]
            if c == "'" && pos + 1 < end {
                let n1 = s[pos + 1]
                if n1 == "s" || n1 == "t" || n1 == "m" || n1 == "d" { pos += 2; add(pos); continue }
                if pos + 2 < end {
                    let n2 = s[pos + 2]
                    if (n1 == "r" && n2 == "e") || (n1 == "v" && n2 == "e") || (n1 == "l" && n2 == "l") { pos += 3; add(pos); continue }
                }
            }
            let q = c == " " ? pos + 1 : pos
            if isL(q) {
                pos = q + 1
                while isL(pos) { pos += 1 }
                add(pos); continue
            }
            if isN(q) {
                pos = q + 1
                while isN(pos) { pos += 1 }
                add(pos); continue
            }
            if isOther(q) {
                pos = q + 1
                while isOther(pos) { pos += 1 }
                add(pos); continue
            }
            var nw = 0
            while isW(pos + nw) { nw += 1 }
            if nw > 1 && pos + nw < end {
                pos += nw - 1
                add(pos); continue
            }
            if nw > 0 {
                pos += nw
                add(pos); continue
            }
            pos += 1
            add(pos)
        }
        return out
    }

    func piece(_ id: Int32) -> [UInt8] {
        let i = Int(id)
        switch vocab.types[i] {
        case .control, .unused: return []
        case .userDefined: return Array(vocab.tokens[i].utf8)
        default:
            var out: [UInt8] = []
            for c in vocab.tokens[i].unicodeScalars {
                if let b = Self.scalarToByte[c.value] { out.append(b) } else { out += Array(String(c).utf8) }
            }
            return out
        }
    }
}

/// Unicode classes as llama.cpp's unicode tables use them.
enum UnicodeClass {
    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: true
        default: false
        }
    }
    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: true
        default: false
        }
    }
    static func isWhitespace(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x09...0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000...0x200A, 0x2028, 0x2029, 0x202F, 0x205F, 0x3000: true
        default: false
        }
    }
    static func isAssigned(_ s: Unicode.Scalar) -> Bool { s.properties.generalCategory != .unassigned }
}
