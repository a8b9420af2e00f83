// swift-tools-version:6.0
// Zebra: a CPU inference server for layerwise local/global attention models.
// Modules follow the data flow and depend one way (see docs/architecture.md):
//   CKernels <- Kernels <- Model <- Engine <- zebra;  GGUF and Tokenizer are leaves.
import PackageDescription

// Hot Swift modules are optimised even in debug builds: `swift test` builds debug, and Swift loops
// run 20-100x slower unoptimised (../shared/PLATFORM.md). Debug info and testability stay on.
let optimized: [SwiftSetting] = [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "zebra",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "zebra", targets: ["zebra"]),
        // For the fuzz package in Fuzz/ (and any embedder of the HTTP layer).
        .library(name: "ZebraHTTP", targets: ["HTTP"]),
        // For the fuzz package (the chat-template interpreter).
        .library(name: "ZebraJinja", targets: ["Jinja"]),
        // For the fuzz package (the model-file reader and the response-schema compiler).
        .library(name: "ZebraGGUF", targets: ["GGUF"]),
        .library(name: "ZebraGrammar", targets: ["Grammar"]),
        // For the fuzz package (the API's request decoders).
        .library(name: "ZebraServer", targets: ["Server"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // Hot loops in C: fast in debug builds too; portable x86-64-v3 (AVX2/FMA/F16C) baseline.
        .target(
            name: "CKernels",
            cSettings: [.unsafeFlags(["-O3", "-march=x86-64-v3", "-fno-math-errno"])]
        ),
        // Counts the process's heap allocations (replaces malloc; the `zebra` executable only).
        .target(name: "CMallocCounter"),
        .systemLibrary(
            name: "COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        .systemLibrary(name: "CSystemShims"),
        // HTTP/1.1 on sockets: knows nothing of models (the Server layer maps requests to the engine).
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .target(name: "HTTP", dependencies: ["CSystemShims", "CZlib", "COpenSSL"], swiftSettings: optimized),
        .target(name: "Kernels", dependencies: ["CKernels", "COpenBLAS"], swiftSettings: optimized),
        .target(name: "GGUF", dependencies: ["CKernels"], swiftSettings: optimized),
        .target(name: "Tokenizer", dependencies: ["GGUF"], swiftSettings: optimized),
        // JSON Schema and regular expressions -> grammars -> token masks (structured outputs; a leaf), and
        // the order-keeping JSON parser Jinja uses too. The matcher's arena is a class's arrays:
        // exclusivity is checked statically, not per access.
        .target(name: "Grammar", swiftSettings: optimized + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]),
        // A Jinja2 interpreter for chat templates (no engine types).
        .target(name: "Jinja", dependencies: ["Grammar"], swiftSettings: optimized),
        .target(name: "Model", dependencies: ["Kernels", "GGUF"], swiftSettings: optimized),
        .target(name: "Engine", dependencies: ["Model", "Tokenizer", "Kernels", "CKernels", "Grammar"], swiftSettings: optimized),
        // The OpenAI API and operations endpoints: maps HTTP requests to the engine.
        .target(name: "Server", dependencies: ["HTTP", "Engine", "Model", "Tokenizer", "Kernels", "Jinja", "Grammar",
                                               .product(name: "Logging", package: "swift-log")]),
        .executableTarget(
            name: "zebra",
            dependencies: [
                "Server", "HTTP", "Engine", "Model", "Tokenizer", "GGUF", "Kernels", "Jinja", "CMallocCounter",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // Test helpers: model paths, a synthetic tiny GGUF writer.
        .target(name: "TestSupport", dependencies: ["GGUF", "Grammar"], path: "Tests/TestSupport"),
        .testTarget(name: "HTTPTests", dependencies: ["HTTP", "TestSupport", "CSystemShims"]),
        .testTarget(name: "ServerTests", dependencies: ["Server", "HTTP", "Engine", "Model", "Tokenizer", "Kernels", "Jinja", "Grammar", "TestSupport"]),
        .testTarget(name: "KernelsTests", dependencies: ["Kernels", "CKernels"]),
        .testTarget(name: "GGUFTests", dependencies: ["GGUF", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "TokenizerTests", dependencies: ["Tokenizer", "GGUF", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "ModelTests", dependencies: ["Model", "GGUF", "Kernels", "Tokenizer", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "JinjaTests", dependencies: ["Jinja"], resources: [.copy("Fixtures")]),
        .testTarget(name: "GrammarTests", dependencies: ["Grammar", "Engine", "Tokenizer", "GGUF", "TestSupport"], resources: [.copy("Fixtures")]),
        .testTarget(name: "EngineTests", dependencies: ["Engine", "Model", "Tokenizer", "GGUF", "Kernels", "Grammar", "TestSupport"]),
    ],
    swiftLanguageModes: [.v5]
)
