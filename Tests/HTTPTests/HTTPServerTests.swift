// Socket-level tests against a running server on an ephemeral loopback port.
import CSystemShims
import TestSupport
import Foundation
import Synchronization
import Testing
@testable import HTTP

@Suite(.serialized) struct HTTPServerTests {
    @Test func keepAliveReusesTheConnection() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        for _ in 0..<3 {
            c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
            let r = try #require(c.readResponse())
            #expect(r.status == 200 && r.text == "{\"status\":\"ok\"}")
            #expect(r.headers["connection"] == "keep-alive" && r.headers["date"] != nil && r.headers["server"] == "zebra")
        }
    }

    @Test func pipelinedRequestsAreAnsweredInOrder() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /slow HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirstPOST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 6\r\n\r\nsecond")
        #expect(c.readResponse()?.text == "{\"slow\":true}")
        #expect(c.readResponse()?.text == "first")
        #expect(c.readResponse()?.text == "second")
    }

    @Test func chunkedRequestBodyAndExpectContinue() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n")
        #expect(c.readResponse()?.text == "abcde")
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n")
        #expect(c.readResponse()?.status == 100)
        c.send("body")
        #expect(c.readResponse()?.text == "body")
    }

    @Test func headAndErrorsInTheOpenAIShape() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("HEAD /health HTTP/1.1\r\nHost: x\r\n\r\n")
        let h = try #require(c.readResponse(head: true))
        #expect(h.status == 200 && h.headers["content-length"] == "15")
        c.send("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
        let nf = try #require(c.readResponse())
        #expect(nf.status == 404)
        let obj = try JSONSerialization.jsonObject(with: Data(nf.body)) as? [String: Any]
        let err = try #require(obj?["error"] as? [String: Any])
        #expect(err["message"] is String && err["type"] as? String == "not_found_error" && err.keys.contains("param") && err.keys.contains("code"))
        c.send("DELETE /health HTTP/1.1\r\nHost: x\r\n\r\n")
        let na = try #require(c.readResponse())
        #expect(na.status == 405 && na.headers["allow"] == "GET, HEAD")
        // A malformed request gets 400 and the connection is closed.
        c.send("GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
        let bad = try #require(c.readResponse())
        #expect(bad.status == 400 && bad.headers["connection"] == "close")
        #expect(c.waitForClose())
    }

    @Test func http10ClosesAfterTheResponse() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /health HTTP/1.0\r\n\r\n")
        #expect(c.readResponse()?.status == 200)
        #expect(c.waitForClose())
    }

    @Test func serverSentEventsStreamAndFinish() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /events HTTP/1.1\r\nHost: x\r\n\r\n")
        let r = try #require(c.readResponse())
        #expect(r.headers["content-type"] == "text/event-stream" && r.headers["cache-control"] == "no-cache")
        #expect(r.text == "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\n: ping\n\ndata: [DONE]\n\n")
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")   // still keep-alive after the stream
        #expect(c.readResponse()?.status == 200)
    }

    @Test func gzipBothWaysAndZipBombs() throws {
        var l = HTTPLimits(); l.maxBodyBytes = 100_000
        let s = try startServer(limits: l); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /big HTTP/1.1\r\nHost: x\r\nAccept-Encoding: br, gzip\r\n\r\n")
        let r = try #require(c.readResponse())
        #expect(r.headers["content-encoding"] == "gzip" && r.body.count < 1000)
        #expect(try Gzip.decompress(r.body, limit: 1 << 20) == Array(String(repeating: "zebra ", count: 2000).utf8))
        c.send("GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse()?.headers["content-encoding"] == nil)
        let z = Gzip.compress(Array("hello gzip".utf8))!
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(z.count)\r\n\r\n")
        c.send(z)
        #expect(c.readResponse()?.text == "hello gzip")
        let bomb = Gzip.compress([UInt8](repeating: 0, count: 1_000_000))!   // ~1 KB that inflates to 1 MB
        c.send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: \(bomb.count)\r\n\r\n")
        c.send(bomb)
        #expect(c.readResponse()?.status == 413)
    }

    /// 200 half-open connections do not keep a complete request from being answered: with a header
    /// timeout far longer than the test, the answer can only come while they all still wait.
    @Test func halfOpenConnectionsDoNotBlockOthers() throws {
        var l = HTTPLimits(); l.headerTimeout = 600
        let s = try startServer(limits: l); defer { s.shutdown(timeout: 1); s.wait() }
        let loris = try (0..<200).map { _ in try TestClient(port: s.port, timeout: 3) }
        for c in loris { c.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") }
        let c = try TestClient(port: s.port)
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse()?.status == 200)
    }

    /// After the header timeout a half-open connection gets 408 and is closed (slowloris).
    @Test func slowlorisIsCutOff() throws {
        var l = HTTPLimits(); l.headerTimeout = 0.5
        let s = try startServer(limits: l); defer { s.shutdown(timeout: 1); s.wait() }
        let loris = try (0..<20).map { _ in try TestClient(port: s.port, timeout: 5) }
        for c in loris { c.send("GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") }
        #expect(loris[0].readResponse()?.status == 408)
        #expect(loris[0].waitForClose() && loris[19].waitForClose())
    }

    @Test func idleKeepAliveConnectionsAreClosed() throws {
        var l = HTTPLimits(); l.idleTimeout = 0.5
        let s = try startServer(limits: l); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse()?.status == 200)
        #expect(c.waitForClose())   // (within the client's read timeout; no wall-clock bound asserted)
    }

    @Test func connectionCapAnswers503() throws {
        var l = HTTPLimits(); l.maxConnections = 4
        let s = try startServer(limits: l); defer { s.shutdown(timeout: 1); s.wait() }
        let held = try (0..<4).map { _ in try TestClient(port: s.port) }
        for c in held { c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n"); #expect(c.readResponse()?.status == 200) }
        let extra = try TestClient(port: s.port)
        #expect(extra.readResponse()?.status == 503)
        held[0].send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(held[0].readResponse()?.status == 200)
    }

    @Test func clientAbortMidBodyAndMidStream() throws {
        let closed = Semaphore()
        let partialCalls = Mutex(0)
        let s = try startServer { r in
            r.add("POST", "/partial") { _, w in
                partialCalls.withLock { $0 += 1 }
                w.respond(.json(200, "{}"))
            }
            r.add("GET", "/forever") { _, w in
                w.startEventStream()
                w.onClose { closed.signal() }
                DispatchQueue.global().async { while w.sendEvent("tick") { usleep(10_000) } }
            }
        }
        defer { s.shutdown(timeout: 1); s.wait() }
        do {
            let c = try TestClient(port: s.port)
            c.send("POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        }
        do {
            let c = try TestClient(port: s.port)
            c.send("GET /forever HTTP/1.1\r\nHost: x\r\n\r\n")
            #expect(c.fill())
        }
        #expect(closed.wait(seconds: 30), "the producer never learned that the client left")
        let c = try TestClient(port: s.port)
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse()?.status == 200)
        // The handler never saw the request whose body was cut off (and a whole one still reaches it).
        #expect(partialCalls.withLock { $0 } == 0)
        c.send("POST /partial HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
        #expect(c.readResponse()?.status == 200)
        #expect(partialCalls.withLock { $0 } == 1)
    }

    @Test func slowReaderIsDroppedPastTheWriteCap() throws {
        var l = HTTPLimits(); l.maxPendingWriteBytes = 256 * 1024
        let dropped = Semaphore()
        let s = try startServer(limits: l) { r in
            r.add("GET", "/flood") { _, w in
                w.startStream(headers: HTTPHeaders())
                DispatchQueue.global().async {
                    let block = [UInt8](repeating: 65, count: 64 * 1024)
                    while w.write(block) {}
                    dropped.signal()
                }
            }
        }
        defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /flood HTTP/1.1\r\nHost: x\r\n\r\n")   // and never read
        #expect(dropped.wait(seconds: 30), "the slow reader was never dropped")
        let other = try TestClient(port: s.port)
        other.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(other.readResponse()?.status == 200)
    }

    @Test func gracefulShutdownFinishesInFlightResponses() throws {
        let started = Semaphore()
        let s = try startServer { r in
            r.add("GET", "/slow-started") { _, w in
                started.signal()
                DispatchQueue.global().asyncAfter(deadline: .now() + 0.5) { w.respond(.json(200, "{\"slow\":true}")) }
            }
        }
        let c = try TestClient(port: s.port)
        c.send("GET /slow-started HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(started.wait(seconds: 30), "the request never reached its handler")   // in flight: now shut down
        s.shutdown(timeout: 5)
        let r = try #require(c.readResponse())
        #expect(r.status == 200 && r.headers["connection"] == "close")
        s.wait()
        #expect(throws: (any Error).self) { _ = try TestClient(port: s.port) }
    }

    @Test func ipv6Loopback() throws {
        let s = try startServer(hosts: ["::1"]); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port, host: "::1")
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.readResponse()?.status == 200)
    }
}
