// The real `zebra serve` executable for tests that need a process of their own (signals, flags, the
// environment): started on a free port with a clean ZEBRA_* environment, its port read from the
// "listening" log line.
import Foundation
import Testing
import TestSupport

let zebraBinary = TestModels.root + "/.build/debug/zebra"

func zebraServe(_ args: [String], model: String = TestModels.smollm, env: [String: String] = [:]) throws -> (Process, Pipe) {
    try #require(FileManager.default.isExecutableFile(atPath: zebraBinary), "build the zebra executable first (swift build)")
    let p = Process()
    p.executableURL = URL(fileURLWithPath: zebraBinary)
    p.arguments = ["serve", "--model", model, "--host", "127.0.0.1", "--port", "0", "--kv-budget", "64M"] + args
    p.environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("ZEBRA_") }.merging(env) { $1 }
    let err = Pipe()
    p.standardError = err
    p.standardOutput = FileHandle.nullDevice
    try p.run()
    return (p, err)
}

/// The port from the server's "listening" line, and the log read so far (fails when stderr ends first).
func listeningPort(_ err: Pipe) throws -> (port: Int, log: String) {
    var log = "", port = 0
    while port == 0 {
        let d = err.fileHandleForReading.availableData
        if d.isEmpty { break }
        log += String(decoding: d, as: UTF8.self)
        if let r = log.range(of: #"port=(\d+)"#, options: .regularExpression) { port = Int(log[r].dropFirst(5)) ?? 0 }
    }
    try #require(port > 0, "no listening line in: \(log)")
    return (port, log)
}
