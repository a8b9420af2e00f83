// Files the tests write (synthetic models, F32 copies, certificates) go into one directory per test
// process, removed when the process exits, so test runs leave nothing behind in the temp directory.
import Foundation

public enum ScratchFiles {
    private static let directory: String = {
        let dir = NSTemporaryDirectory() + "zebra-tests-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: ScratchFiles.directory) }
        return dir
    }()

    /// A fresh path in this process's scratch directory, named `prefix-<unique>suffix`.
    public static func path(_ prefix: String, suffix: String = "") -> String {
        directory + "/\(prefix)-\(UUID().uuidString)\(suffix)"
    }
}
