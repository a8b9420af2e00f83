// Where tests find the real models (installed by `make models`) and the committed fixtures.
import Foundation

public enum TestModels {
    /// The package root, from this file's location.
    public static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    /// Gemma 3 270M Q4_K_M (`ZEBRA_TEST_GEMMA` overrides).
    public static var gemma: String {
        ProcessInfo.processInfo.environment["ZEBRA_TEST_GEMMA"] ?? root + "/models/gemma-3-270m-Q4_K_M.gguf"
    }

    /// SmolLM2 135M Instruct Q4_1 (`ZEBRA_TEST_SMOLLM` overrides).
    public static var smollm: String {
        ProcessInfo.processInfo.environment["ZEBRA_TEST_SMOLLM"] ?? root + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
    }

    /// Contents of a fixture file in `Tests/<target>/Fixtures/`.
    public static func fixture(_ target: String, _ name: String) throws -> Data {
        try Data(contentsOf: URL(fileURLWithPath: root + "/Tests/\(target)/Fixtures/\(name)"))
    }
}
