// The tokenizer facade: special-token splitting, then the subword model per plain fragment, BOS/EOS
// from metadata; decoding to bytes, and incremental UTF-8-safe detokenization.
import GGUF

public final class Tokenizer: Sendable {
    enum Model: Sendable { case spm(SentencePieceModel), bpe(BytePairModel) }
    public let vocab: Vocabulary
    let model: Model
    let specials: SpecialTokens

    public init(file: GGUFFile) throws(TokenizerError) {
        let vocab = try Vocabulary(file: file)
        self.vocab = vocab
        let name: String
        do { name = try file.string("tokenizer.ggml.model") } catch { throw .missingMetadata("tokenizer.ggml.model") }
        switch name {
        case "llama":
            let prefix = (try? file.bool("tokenizer.ggml.add_space_prefix", default: true)) ?? true
            model = .spm(SentencePieceModel(vocab: vocab, addSpacePrefix: prefix))
        case "gpt2":
            let merges: [String]
            do { merges = try file.strings("tokenizer.ggml.merges") } catch { throw .missingMetadata("tokenizer.ggml.merges") }
            let pre = (try? file.string("tokenizer.ggml.pre")) ?? "default"
            model = .bpe(BytePairModel(vocab: vocab, merges: merges, pre: pre))
        default:
            throw .unsupportedModel(name)
        }
        specials = SpecialTokens(vocab: vocab)
    }

    /// Token ids for `text`. `addSpecial`: BOS/EOS as the metadata says; `parseSpecial`: control-token
    /// text such as `<start_of_turn>` becomes its id (user-defined tokens are always matched).
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int32] {
        var out: [Int32] = []
        if addSpecial, vocab.addBOS, let b = vocab.bos { out.append(b) }
        var first = true
        for f in specials.partition(Array(text.utf8), parseSpecial: parseSpecial) {
            switch f {
            case let .token(id): out.append(id)
            case let .text(bytes):
                switch model {
                case let .spm(m): m.encode(bytes, isFirst: first, into: &out)
                case let .bpe(m): m.encode(bytes, into: &out)
                }
            }
            first = false
        }
        if addSpecial, vocab.addEOS, let e = vocab.eos { out.append(e) }
        return out
    }

    /// The bytes of one token in decoded text (empty for control tokens).
    public func pieceBytes(_ id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < vocab.count else { return [] }
        switch model {
        case let .spm(m): return m.piece(id)
        case let .bpe(m): return m.piece(id)
        }
    }

    /// Decodes ids to text; invalid UTF-8 (an incomplete character) is replaced with U+FFFD. With
    /// `special`, control tokens give their own text (`<bos>`, `<|im_start|>`), as llama.cpp's
    /// detokenizer does, so that text with special tokens survives encode (parseSpecial) and decode.
    public func decode(_ ids: [Int32], special: Bool = false) -> String {
        var bytes: [UInt8] = []
        for id in ids {
            if special, id >= 0, Int(id) < vocab.count, vocab.types[Int(id)] == .control { bytes += Array(vocab.tokens[Int(id)].utf8) }
            else { bytes += pieceBytes(id) }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    public func isEndOfGeneration(_ id: Int32) -> Bool { vocab.endOfGeneration.contains(id) }

    /// Throws for ids outside the vocabulary.
    public func validate(_ ids: [Int32]) throws(TokenizerError) {
        for id in ids where id < 0 || Int(id) >= vocab.count { throw .invalidToken(Int(id)) }
    }
}
