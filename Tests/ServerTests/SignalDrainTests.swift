// The real `zebra serve` process: SIGTERM stops accepting, lets the in-flight stream finish, exits 0.
import Foundation
import Testing
import TestSupport

@Test func sigtermDrainsInFlightStreams() throws {
    // Gemma: real decode speed, so the stream is still running when SIGTERM arrives.
    let (p, err) = try zebraServe(["--shutdown-timeout", "20"], model: TestModels.gemma)
    defer { if p.isRunning { p.terminate() } }
    let port = try listeningPort(err).port
    var ready = false
    for _ in 0..<100 where !ready {
        ready = (try? TestClient(port: port))?.request("GET", "/health")?.status == 200
        if !ready { usleep(50_000) }
    }
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
