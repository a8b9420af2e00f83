// The real `zebra serve` process: SIGTERM stops accepting, lets the in-flight stream finish, exits 0.
import Foundation
import Testing
import TestSupport

@Test func sigtermDrainsInFlightStreams() throws {
    // Gemma: real decode speed, so the stream is still running when SIGTERM arrives.
    let (p, port) = try readyServer(["--shutdown-timeout", "20"])
    defer { if p.isRunning { p.terminate() } }
    let c = try TestClient(port: port, timeout: 30)
    c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 64\r\n\r\n" +
           #"{"prompt":"the","max_tokens":40,"ignore_eos":true,"stream":true}"#)
    // Read until the first token arrives, then signal: the stream is provably still running (no
    // [DONE] yet, and fewer than the 40 tokens).
    func tokensSoFar() -> Int { String(decoding: c.buffer, as: UTF8.self).components(separatedBy: "\"text\":").count - 1 }
    while tokensSoFar() == 0 { guard c.fill() else { break } }
    let before = tokensSoFar(), doneBefore = String(decoding: c.buffer, as: UTF8.self).contains("[DONE]")
    kill(p.processIdentifier, SIGTERM)
    #expect(before > 0 && before < 40 && !doneBefore, "the stream was running when the signal arrived (\(before) tokens)")
    let r = c.readResponse()                  // ...and it still runs to the end
    #expect(r?.status == 200)
    #expect(r?.text.hasSuffix("data: [DONE]\n\n") == true)
    let total = (r?.text ?? "").components(separatedBy: "\"text\":").count - 1
    #expect(total >= 40, "every token, after the signal too (\(total) text events)")
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    #expect(throws: (any Error).self) { _ = try TestClient(port: port) }
}

/// Starts `zebra serve` on Gemma and waits until /health answers 200; the port.
private func readyServer(_ args: [String]) throws -> (Process, Int) {
    let (p, err) = try zebraServe(args, model: TestModels.gemma)
    let port = try listeningPort(err).port
    var ready = false
    for _ in 0..<200 where !ready {
        ready = (try? TestClient(port: port))?.request("GET", "/health")?.status == 200
        if !ready { usleep(50_000) }
    }
    try #require(ready, "the server became ready")
    return (p, port)
}

/// Sends a streamed greedy completion on its own connection (not read yet).
private func startStream(_ port: Int, prompt: String, tokens: Int) throws -> TestClient {
    let c = try TestClient(port: port, timeout: 60)
    let body = #"{"prompt":"\#(prompt)","max_tokens":\#(tokens),"ignore_eos":true,"stream":true,"temperature":0}"#
    c.send("POST /v1/completions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body)
    return c
}

/// The streamed text: every "text" value in order, as sent (JSON-escaped).
private func streamedText(_ bytes: [UInt8]) -> String {
    let s = String(decoding: bytes, as: UTF8.self)
    var out = "", rest = s[...]
    while let r = rest.range(of: #""text":"((?:[^"\\]|\\.)*)""#, options: .regularExpression) {
        out += rest[r].dropFirst(8).dropLast()
        rest = rest[r.upperBound...]
    }
    return out
}

/// Four streams running when SIGTERM arrives all finish with the text they have without the signal.
@Test func sigtermLetsEveryStreamFinishWithItsOwnText() throws {
    let prompts = ["The river", "Once upon a time", "def main():", "In 1905, the"]
    var want: [String] = []
    do {
        let (p, port) = try readyServer([])
        defer { p.terminate(); p.waitUntilExit() }
        let cs = try prompts.map { try startStream(port, prompt: $0, tokens: 32) }
        for c in cs { while !String(decoding: c.buffer, as: UTF8.self).contains("[DONE]") { guard c.fill() else { break } }; want.append(streamedText(c.buffer)) }
    }
    let (p, port) = try readyServer(["--shutdown-timeout", "30"])
    defer { if p.isRunning { p.terminate() } }
    let cs = try prompts.map { try startStream(port, prompt: $0, tokens: 32) }
    for c in cs { while streamedText(c.buffer).isEmpty { guard c.fill() else { break } } }
    kill(p.processIdentifier, SIGTERM)
    var got: [String] = []
    for c in cs { _ = c.waitForClose(); got.append(streamedText(c.buffer)) }
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    #expect(want.allSatisfy { !$0.isEmpty })
    #expect(got == want, "each stream's text with the signal equals its text without")
}

/// A second SIGTERM cuts what is still running at once; so does the shutdown timeout. Either way the
/// process exits 0 and the cut stream ends without [DONE].
@Test(arguments: [true, false])
func secondSignalOrTimeoutCutsTheDrain(secondSignal: Bool) throws {
    let (p, port) = try readyServer(["--shutdown-timeout", secondSignal ? "60" : "1"])
    defer { if p.isRunning { p.terminate() } }
    let c = try startStream(port, prompt: "the", tokens: 4000)
    while streamedText(c.buffer).isEmpty { guard c.fill() else { break } }
    kill(p.processIdentifier, SIGTERM)
    if secondSignal { usleep(300_000); kill(p.processIdentifier, SIGTERM) }
    #expect(c.waitForClose(), "the stream was cut")
    p.waitUntilExit()
    #expect(p.terminationStatus == 0)
    let body = String(decoding: c.buffer, as: UTF8.self)
    #expect(!body.contains("[DONE]"))
    // Cut, not drained: far fewer than the 4000 tokens asked for (an event a token).
    let events = body.components(separatedBy: "data: ").count - 1
    #expect(events > 0 && events < 2000, "\(events) events before the cut")
}
