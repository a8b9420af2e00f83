// Request ids: the client's sane X-Request-Id comes back, anything else is replaced by a random one, and
// every response carries it.
import Foundation
import TestSupport
import Testing
@testable import HTTP

/// Every value of a response header (TestHeaders' subscript gives the first only).
func values(_ r: TestClient.Response?, _ name: String) -> [String] {
    (r?.headers.fields ?? []).filter { $0.0.lowercased() == name.lowercased() }.map(\.1)
}

func isGeneratedID(_ s: String?) -> Bool {
    guard let s else { return false }
    return s.count == 32 && s.allSatisfy { $0.isHexDigit && !$0.isUppercase }
}

@Test func requestIDSanityAtItsBoundaries() {
    #expect(RequestID.isSane("a") && RequestID.isSane(String(repeating: "x", count: 128)))
    #expect(RequestID.isSane("!~req-42/{trace}:0"))
    for bad in ["", String(repeating: "x", count: 129), "a b", "a\tb", "caf\u{e9}", "a\u{7f}"] { #expect(!RequestID.isSane(bad), "\(bad)") }
    #expect(RequestID.accept("trace-1") == "trace-1")
    #expect(isGeneratedID(RequestID.accept("two words")) && isGeneratedID(RequestID.accept(nil)))
    #expect(RequestID.generate() != RequestID.generate())
}

@Suite(.serialized) struct RequestIDTests {
    /// A sane client id comes back; anything else is replaced by a fresh random one; every kind of response
    /// carries it (routed, 404, 405, 415 before the handler, a stream).
    @Test func everyResponseCarriesTheRequestID() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        #expect(c.request("GET", "/health", headers: ["X-Request-Id: trace-42/a"])?.headers["x-request-id"] == "trace-42/a")
        let a = c.request("GET", "/health")?.headers["x-request-id"], b = c.request("GET", "/health")?.headers["x-request-id"]
        #expect(isGeneratedID(a) && isGeneratedID(b) && a != b)
        for bad in ["two words", String(repeating: "x", count: 129), "caf\u{e9}"] {
            let r = c.request("GET", "/health", headers: ["X-Request-Id: \(bad)"])
            #expect(isGeneratedID(r?.headers["x-request-id"]), "\(bad)")
        }
        #expect(c.request("GET", "/nope", headers: ["X-Request-Id: r404"])?.headers["x-request-id"] == "r404")
        #expect(c.request("DELETE", "/health", headers: ["X-Request-Id: r405"])?.headers["x-request-id"] == "r405")
        #expect(c.request("HEAD", "/health", headers: ["X-Request-Id: rhead"])?.headers["x-request-id"] == "rhead")
        let unsupported = c.request("POST", "/echo", json: "{}", headers: ["Content-Encoding: br", "X-Request-Id: r415"])
        #expect(unsupported?.status == 415 && unsupported?.headers["x-request-id"] == "r415")
        let sse = c.request("GET", "/events", headers: ["X-Request-Id: rsse"])
        #expect(sse?.headers["content-type"] == "text/event-stream" && sse?.headers["x-request-id"] == "rsse")
        #expect(values(sse, "x-request-id").count == 1)
    }

    /// Errors found before a request is parsed (a malformed request line, an oversized header) carry a
    /// fresh id too.
    @Test func errorsBeforeParsingCarryAFreshID() throws {
        let s = try startServer(); defer { s.shutdown(timeout: 1); s.wait() }
        for raw in ["GARBAGE\r\n\r\n", "GET /health HTTP/1.1\r\nX-Big: \(String(repeating: "y", count: 70_000))\r\n\r\n"] {
            let c = try TestClient(port: s.port)
            c.send(raw)
            let r = c.readResponse()
            #expect(r.map { (400...431).contains($0.status) } == true, "\(raw.prefix(20))")
            #expect(isGeneratedID(r?.headers["x-request-id"]), "\(raw.prefix(20))")
        }
    }
}
