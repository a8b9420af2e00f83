// `zebra generate` and `zebra tokenize`.
import ArgumentParser
import Engine
import GGUF
import Kernels
import Model
import Tokenizer
#if canImport(Glibc)
import Glibc
#endif

/// A loaded model, tokenizer and kernel pool; exits with a clear message on any load error.
struct Loaded {
    let model: Transformer
    let tokenizer: Tokenizer
    let kvCacheType: KVCacheType

    init(_ o: ModelOptions) {
        let pattern: LayerPattern?
        do { pattern = try o.layers.map { s throws(ModelError) in try LayerPattern(parsing: s) } }
        catch { fail("error: \(error)") }
        let pool = KernelPool(threads: o.threads)
        do {
            model = try Transformer(path: o.modelPath, layers: pattern, pool: pool)
            tokenizer = try Tokenizer(file: model.weights.file)
        } catch {
            fail("error: \(error)")
        }
        kvCacheType = o.kvCacheType
        if let why = kvCacheType.unsupportedReason(headDim: model.config.headDim) { fail("error: \(why)") }
    }
}

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Generate a completion; the text goes to stdout as it is produced, timings to stderr.")
    @OptionGroup var options: ModelOptions
    @Option(help: "Prompt text (special-token text such as <start_of_turn> becomes its id).") var prompt: String
    @Option(name: .customLong("max-tokens"), help: "Maximum tokens to generate.") var maxTokens = 128
    @Option(help: "Sampling temperature; 0 is greedy.") var temperature: Float = 0.8
    @Option(help: "Random seed (same seed, same text).") var seed: UInt64?
    @Option(name: .customLong("top-k"), help: "Top-k (0 disables).") var topK = 40
    @Option(name: .customLong("top-p"), help: "Top-p nucleus mass.") var topP: Float = 0.95
    @Option(name: .customLong("min-p"), help: "Min-p relative threshold.") var minP: Float = 0.05
    @Option(name: .customLong("repeat-penalty"), help: "Repetition penalty (1 disables).") var repeatPenalty: Float = 1
    @Flag(name: .customLong("ignore-eos"), help: "Keep generating past end-of-generation tokens.") var ignoreEOS = false
    @Option(name: .customLong("speculative"), help: "'ngram' drafts tokens from the prompt and output and verifies them in one step (the same text), 'off' decodes one token a step.") var speculative: SpeculativeMode = .ngram

    func validate() throws {
        guard maxTokens >= 0 else { throw ValidationError("--max-tokens must be >= 0") }
        guard temperature >= 0 else { throw ValidationError("--temperature must be >= 0") }
        guard topP > 0 && topP <= 1 else { throw ValidationError("--top-p must be in (0, 1]") }
        guard topK >= 0 else { throw ValidationError("--top-k must be >= 0") }
    }

    func run() throws {
        let m = Loaded(options)
        let tokens = m.tokenizer.encode(prompt)
        let params = SamplingParams(temperature: temperature, topK: topK, topP: topP, minP: minP,
                                    repetitionPenalty: repeatPenalty, seed: seed)
        let gen = Generator(model: m.model, tokenizer: m.tokenizer, cache: m.model.makeCache(type: m.kvCacheType))
        gen.speculation.mode = speculative
        do {
            let st = try gen.generate(prompt: tokens, maxTokens: maxTokens, params: params, ignoreEOS: ignoreEOS) { _, text in
                Console.standardOutput.write(text)
                return true
            }
            Console.standardOutput.write("\n")
            Console.standardError.write(String(format: "prompt: %d tokens, %.1f tokens/s | generated: %d tokens, %.1f tokens/s | drafts: %d of %d tokens accepted | finish: %@\n",
                st.promptTokens, st.promptTokensPerSecond, st.generatedTokens, st.decodeTokensPerSecond, st.acceptedTokens, st.draftTokens, st.finishReason.rawValue))
        } catch {
            fail("error: \(error)")
        }
    }
}

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print the token ids of TEXT as a JSON array.")
    @OptionGroup var options: ModelOptions
    @Flag(name: .customLong("no-bos"), help: "Do not add BOS/EOS even if the model's metadata asks for it.") var noBOS = false
    @Argument(help: "Text to tokenize.") var text: String

    func run() throws {
        let file: GGUFFile
        do { file = try GGUFFile(path: options.modelPath) } catch { fail("error: \(error)") }
        do {
            let tok = try Tokenizer(file: file)
            let ids = tok.encode(text, addSpecial: !noBOS)
            Console.standardOutput.write("[" + ids.map(String.init).joined(separator: ",") + "]\n")
        } catch {
            fail("error: \(error)")
        }
    }
}

extension SpeculativeMode: ExpressibleByArgument {}
