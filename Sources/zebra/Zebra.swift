// The `zebra` executable: thin wrappers over the library modules.
import ArgumentParser
import Model
#if canImport(Glibc)
import Glibc
#endif

@main
struct Zebra: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "zebra",
        abstract: "A CPU inference engine for local/global (Zebra) attention models.",
        subcommands: [Serve.self, Generate.self, Tokenize.self, Bench.self, Healthcheck.self])
}

/// Options shared by every command that loads a model.
struct ModelOptions: ParsableArguments {
    @Option(help: "Path to a GGUF model (default: $ZEBRA_MODEL, else models/gemma-3-270m-Q4_K_M.gguf).")
    var model: String?

    @Option(help: "Attention pattern override: 'global', or 'zebra:group=G,window=W,global=first|last'.")
    var layers: String?

    @Option(help: "Kernel threads (default: $ZEBRA_THREADS, else the number of cores).")
    var threads: Int?

    @Option(name: .customLong("kv-cache"), help: "KV cache storage: 'f16', or 'q8_0' (about half the bytes; int8 key scoring), $ZEBRA_KV_CACHE (default: f16).")
    var kvCache: String?

    /// The KV cache type asked for (exits with a clear message on an unknown name).
    var kvCacheType: KVCacheType {
        var name = kvCache
        if name == nil, let e = getenv("ZEBRA_KV_CACHE"), e.pointee != 0 { name = String(cString: e) }
        guard let n = name else { return .f16 }
        guard let t = KVCacheType(rawValue: n) else {
            fail("error: --kv-cache '\(n)' is not one of \(KVCacheType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return t
    }

    var modelPath: String {
        if let m = model { return m }
        if let e = getenv("ZEBRA_MODEL"), e.pointee != 0 { return String(cString: e) }
        return "models/gemma-3-270m-Q4_K_M.gguf"
    }
}

/// Prints `message` to stderr and exits non-zero (user errors: bad files, bad flags).
func fail(_ message: String) -> Never {
    Console.standardError.write(message + "\n")
    exit(1)
}

enum Console {
    case standardError, standardOutput
    func write(_ s: String) {
        let fp = self == .standardError ? stderr : stdout
        fputs(s, fp)
        fflush(fp)
    }
}
