// swift-tools-version:6.0
// libFuzzer targets for the HTTP parser and connection state machine, the chat-template interpreter,
// the GGUF reader, the response-schema compiler and the API's request decoders, kept out of the main package so that normal builds never link the fuzzer runtime. Run
// with `make fuzz`, `make fuzz-jinja`, `make fuzz-gguf`, `make fuzz-grammar` and `make fuzz-request` (see the Makefile).
import PackageDescription

let package = Package(
    name: "ZebraFuzz",
    dependencies: [.package(name: "zebra", path: "..")],
    targets: [
        .executableTarget(name: "FuzzHTTP", dependencies: [.product(name: "ZebraHTTP", package: "zebra")]),
        .executableTarget(name: "FuzzJinja", dependencies: [.product(name: "ZebraJinja", package: "zebra")]),
        .executableTarget(name: "FuzzGGUF", dependencies: [.product(name: "ZebraGGUF", package: "zebra")]),
        .executableTarget(name: "FuzzGrammar", dependencies: [.product(name: "ZebraGrammar", package: "zebra")]),
        .executableTarget(name: "FuzzRequest", dependencies: [.product(name: "ZebraServer", package: "zebra")]),
    ],
    swiftLanguageModes: [.v5]
)
