// swift-tools-version:6.0
// libFuzzer target for the HTTP parser and connection state machine, kept out of the main package so
// that normal builds never link the fuzzer runtime. Run with `make fuzz` (see the Makefile).
import PackageDescription

let package = Package(
    name: "ZebraFuzz",
    dependencies: [.package(name: "zebra", path: "..")],
    targets: [
        .executableTarget(name: "FuzzHTTP", dependencies: [.product(name: "ZebraHTTP", package: "zebra")]),
    ],
    swiftLanguageModes: [.v5]
)
