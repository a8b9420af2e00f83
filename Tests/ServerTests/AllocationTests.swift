// The README's "a steady decode forward pass allocates nothing", asserted: `zebra bench` (the real
// executable, whose malloc is counted) on the synthetic model, decode at two depths and four sequences
// in parallel, reports its heap allocations per counted step.
import Foundation
import Testing
import TestSupport

@Test func steadyDecodeStepsAllocateNothing() throws {
    let binary = TestModels.root + "/.build/debug/zebra"
    try #require(FileManager.default.isExecutableFile(atPath: binary), "build the zebra executable first (swift build)")
    let model = try SyntheticModel.write(context: 512)
    let p = Process()
    p.executableURL = URL(fileURLWithPath: binary)
    p.arguments = ["bench", "--model", model, "--threads", "2", "--prompt-lengths", "16", "--depths", "0,300",
                   "--decode-tokens", "24", "--parallel", "4", "--parallel-prompt", "16", "--json"]
    let out = Pipe()
    p.standardOutput = out
    p.standardError = FileHandle.nullDevice
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    let o = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any], "\(String(decoding: data, as: UTF8.self))")
    let allocations = try #require(o["heap_allocations_per_decode_step"] as? Double)
    // A zero means something only if steps were counted and the counter sees allocations at all.
    #expect((o["decode_steps_counted"] as? Int ?? 0) >= 24, "\(o["decode_steps_counted"] ?? "none") steps counted")
    #expect((o["heap_allocations_in_process"] as? Int ?? 0) > 1000, "the malloc counter saw \(o["heap_allocations_in_process"] ?? "nothing")")
    #expect(allocations == 0, "\(allocations) heap allocations per steady decode step")
}
