// swift-tools-version:6.0
// libFuzzer targets for the HTTP parser and connection state machine, and for the chat-template
// interpreter, kept out of the main package so that normal builds never link the fuzzer runtime. Run
// with `make fuzz` and `make fuzz-jinja` (see the Makefile).
import PackageDescription

let package = Package(
    name: "ZebraFuzz",
    dependencies: [.package(name: "zebra", path: "..")],
    targets: [
        .executableTarget(name: "FuzzHTTP", dependencies: [.product(name: "ZebraHTTP", package: "zebra")]),
        .executableTarget(name: "FuzzJinja", dependencies: [.product(name: "ZebraJinja", package: "zebra")]),
    ],
    swiftLanguageModes: [.v5]
)
