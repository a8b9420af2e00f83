// The request parser from raw bytes: every accepted form, every rejection with its status, and every
// request split at every byte boundary.
import Testing
@testable import HTTP

func parseAll(_ chunks: [[UInt8]], limits: HTTPLimits = HTTPLimits()) throws(HTTPParseError) -> [HTTPParser.Event] {
    var p = HTTPParser(limits: limits)
    var out: [HTTPParser.Event] = []
    for c in chunks {
        p.feed(c)
        while true {
            let e = try p.next()
            if e == .needMore { break }
            out.append(e)
        }
    }
    return out
}

func requests(_ s: String, limits: HTTPLimits = HTTPLimits()) throws(HTTPParseError) -> [HTTPRequest] {
    try parseAll([Array(s.utf8)], limits: limits).compactMap { if case let .request(r) = $0 { r } else { nil } }
}

func status(_ s: String, limits: HTTPLimits = HTTPLimits()) -> Int? {
    do { _ = try requests(s, limits: limits); return nil } catch { return error.status }
}

let sample = [
    "GET /v1/models?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n",
    "POST /v1/completions HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\nContent-Type: application/json\r\n\r\n{\"a\":12345}",
    "POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: t\r\n\r\n",
    "GET http://example.com:8080/health HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "HEAD / HTTP/1.0\r\n\r\n",
].joined()

@Test func parsesPipelinedRequestsOfEveryKind() throws {
    let rs = try requests(sample)
    #expect(rs.count == 5)
    #expect(rs[0].method == "GET" && rs[0].path == "/v1/models" && rs[0].query == "x=1" && rs[0].keepAlive)
    #expect(rs[1].body == Array("{\"a\":12345}".utf8) && rs[1].headers["content-type"] == "application/json")
    #expect(rs[2].body == Array("Wikipedia".utf8) && rs[2].trailers["x-trailer"] == "t")
    #expect(rs[3].path == "/health" && rs[3].target == "http://example.com:8080/health")
    #expect(rs[4].method == "HEAD" && rs[4].minorVersion == 0 && !rs[4].keepAlive)
}

@Test func everySplitAtEveryByteGivesTheSameRequests() throws {
    let bytes = Array(sample.utf8)
    let whole = try requests(sample)
    for cut in 1..<bytes.count {
        let events = try parseAll([Array(bytes[..<cut]), Array(bytes[cut...])])
        let rs = events.compactMap { if case let .request(r) = $0 { r } else { nil } }
        #expect(rs == whole, "split at \(cut)")
    }
    // And one byte at a time.
    let single = try parseAll(bytes.map { [$0] }).compactMap { if case let .request(r) = $0 { r } else { nil } }
    #expect(single == whole)
}

@Test func headersAreCaseInsensitiveAndRepeatedFieldsKept() throws {
    let r = try requests("GET / HTTP/1.1\r\nhost: a\r\nX-A: 1\r\nx-a: 2\r\nConnection: Keep-Alive, Close\r\n\r\n")[0]
    #expect(r.headers["HOST"] == "a")
    #expect(r.headers.values("X-A") == ["1", "2"])
    #expect(!r.keepAlive)
    let k = try requests("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")[0]
    #expect(k.keepAlive)
}

@Test func expectContinueIsSignalledBeforeTheBody() throws {
    let head = "POST / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n"
    let events = try parseAll([Array(head.utf8), Array("abc".utf8)])
    #expect(events.count == 2 && events[0] == .expectContinue)
    // Body already sent with the headers: no 100 Continue needed.
    let eager = try parseAll([Array((head + "abc").utf8)])
    #expect(eager.count == 1)
}

@Test func rejectionsCarryTheRightStatus() {
    #expect(status("GARBAGE\r\n\r\n") == 400)
    #expect(status("GET  / HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
    #expect(status("GET / HTTP/1.1\r\n\r\n") == 400)                                  // no Host
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") == 400)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nBad Name: x\r\n\r\n") == 400)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n folded\r\n\r\n") == 400)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nNoColon\r\n\r\n") == 400)
    #expect(status("GET / HTTP/2.0\r\nHost: a\r\n\r\n") == 505)
    #expect(status("GET / HTTP/3.1\r\nHost: a\r\n\r\n") == 505)
    #expect(status("GET / HTTQ/1.1\r\nHost: a\r\n\r\n") == 400)
    #expect(status("GET nopath HTTP/1.1\r\nHost: a\r\n\r\n") == 400)
    // Request smuggling: conflicting lengths, or both framings.
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 4\r\n\r\nabcd") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n") == 501)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: bogus\r\n\r\n") == 501)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n") == 400)
    #expect(status("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n") == 400)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n") == 400)
    // Identical repeated lengths are allowed (RFC 9112 6.3).
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc") == nil)
}

@Test func limitsAtTheirBoundaries() {
    var l = HTTPLimits()
    l.maxRequestLine = 64
    l.maxHeaderBytes = 128
    l.maxHeaderCount = 3
    l.maxBodyBytes = 10
    let fits = "GET /" + String(repeating: "a", count: 64 - 14) + " HTTP/1.1"   // exactly 64 bytes
    #expect(fits.utf8.count == 64)
    #expect(status(fits + "\r\nHost: a\r\n\r\n", limits: l) == nil)
    #expect(status("GET /" + String(repeating: "a", count: 51) + " HTTP/1.1\r\nHost: a\r\n\r\n", limits: l) == 414)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\n\r\n", limits: l) == nil)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", limits: l) == 431)
    #expect(status("GET / HTTP/1.1\r\nHost: a\r\nA: " + String(repeating: "x", count: 130) + "\r\n\r\n", limits: l) == 431)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\n0123456789", limits: l) == nil)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\n01234567890", limits: l) == 413)
    #expect(status("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n6\r\n012345\r\n5\r\n67890\r\n0\r\n\r\n", limits: l) == 413)
    // A request line that never ends is cut off at the limit, not buffered forever.
    #expect(status(String(repeating: "A", count: 200), limits: l) == 414)
}

@Test func parserStaysFailedAfterAnError() {
    var p = HTTPParser()
    p.feed(Array("BAD\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n".utf8))
    #expect(throws: HTTPParseError.self) { _ = try p.next() }
    #expect(throws: HTTPParseError.self) { _ = try p.next() }
}

/// The header section's byte limit counts every header line with its CRLF (not the blank line that ends
/// the section): lines of exactly the limit are accepted, one byte more is 431.
@Test func headerBytesLimitAtItsBoundary() {
    var l = HTTPLimits()
    l.maxHeaderBytes = 128
    func request(_ pad: Int) -> String { "GET / HTTP/1.1\r\nHost: a\r\nA: " + String(repeating: "x", count: pad) + "\r\n\r\n" }
    // Header lines: "Host: a\r\n" (9) + "A: " + pad + "\r\n" (5 + pad) = 14 + pad.
    #expect(status(request(128 - 14), limits: l) == nil)
    #expect(status(request(128 - 13), limits: l) == 431)
}

/// A gzip body inflating to exactly the limit is accepted; one byte more is refused (413 upstream).
@Test func inflatedBodyLimitAtItsBoundary() throws {
    let limit = 100_000
    for (size, fits) in [(limit, true), (limit + 1, false)] {
        let packed = try #require(Gzip.compress([UInt8](repeating: 0x61, count: size)))
        if fits {
            #expect(try Gzip.decompress(packed, limit: limit).count == size)
        } else {
            #expect(throws: Gzip.InflateError.tooLarge) { _ = try Gzip.decompress(packed, limit: limit) }
        }
    }
}

/// A connection queues output up to its write cap; one byte past it, the client is dropped.
@Test func pendingWriteLimitAtItsBoundary() {
    let c = Connection(fd: -1, id: 0, machine: HTTPConnectionMachine(limits: HTTPLimits(), now: 0), maxPending: 100, wake: { _ in })
    #expect(c.enqueue([UInt8](repeating: 1, count: 100), finished: nil))
    #expect(!c.isClosed)
    #expect(!c.enqueue([1], finished: nil) && c.isClosed)
}
