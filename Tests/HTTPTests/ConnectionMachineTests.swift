// The connection state machine with a mock clock: no sockets, no sleeping.
import Testing
@testable import HTTP

func writes(_ a: [HTTPConnectionMachine.Action]) -> [String] {
    a.compactMap { if case let .write(b) = $0 { String(decoding: b, as: UTF8.self) } else { nil } }
}
func dispatched(_ a: [HTTPConnectionMachine.Action]) -> [HTTPRequest] {
    a.compactMap { if case let .dispatch(r) = $0 { r } else { nil } }
}

@Test func oneRequestAtATimeInOrder() {
    var m = HTTPConnectionMachine(limits: HTTPLimits(), now: 0)
    let a = m.received(Array("GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n".utf8), now: 1)
    #expect(dispatched(a).map(\.path) == ["/a"])
    #expect(m.hasRequestInFlight)
    let b = m.responseFinished(keepAlive: true, now: 2)
    #expect(dispatched(b).map(\.path) == ["/b"])
    #expect(m.responseFinished(keepAlive: false, now: 3) == [.closeAfterWrites])
}

@Test func headerTimeoutAnswers408() {
    var l = HTTPLimits(); l.headerTimeout = 10
    var m = HTTPConnectionMachine(limits: l, now: 0)
    _ = m.received(Array("GET / HTTP/1.1\r\nHo".utf8), now: 100)
    #expect(m.tick(now: 105).isEmpty)
    _ = m.received(Array("st: x\r\nX-Slow: 1".utf8), now: 109)   // trickling bytes do not reset it
    let t = m.tick(now: 110.5)
    #expect(writes(t).first?.hasPrefix("HTTP/1.1 408") == true)
    #expect(t.last == .closeAfterWrites)
    #expect(m.isClosing)
}

@Test func idleTimeoutClosesQuietly() {
    var l = HTTPLimits(); l.idleTimeout = 60
    var m = HTTPConnectionMachine(limits: l, now: 0)
    #expect(m.tick(now: 59).isEmpty)
    #expect(m.tick(now: 61) == [.closeAfterWrites])
    // No timeout while a request is being handled, however long it takes.
    var busy = HTTPConnectionMachine(limits: l, now: 0)
    _ = busy.received(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), now: 0)
    #expect(busy.tick(now: 1000).isEmpty)
}

@Test func bodyTimeoutAnswers408() {
    var l = HTTPLimits(); l.bodyTimeout = 5
    var m = HTTPConnectionMachine(limits: l, now: 0)
    _ = m.received(Array("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc".utf8), now: 0)
    #expect(m.tick(now: 4).isEmpty)
    #expect(writes(m.tick(now: 6)).first?.hasPrefix("HTTP/1.1 408") == true)
}

@Test func parseErrorsAnswerAndClose() {
    var m = HTTPConnectionMachine(limits: HTTPLimits(), now: 0)
    let a = m.received(Array("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n".utf8), now: 0)
    #expect(writes(a).first?.hasPrefix("HTTP/1.1 400 Bad Request") == true)
    #expect(writes(a).first?.contains("\"error\":{\"message\"") == true)
    #expect(a.last == .closeAfterWrites)
    #expect(m.received(Array("GET / HTTP/1.1\r\n\r\n".utf8), now: 1).isEmpty)
}

@Test func readingPausesWhileAPipelineFloodsIn() {
    var l = HTTPLimits(); l.maxRequestLine = 100; l.maxHeaderBytes = 100; l.maxBodyBytes = 100
    var m = HTTPConnectionMachine(limits: l, now: 0)
    _ = m.received(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), now: 0)
    let flood = Array(String(repeating: "GET / HTTP/1.1\r\nHost: x\r\n\r\n", count: 20).utf8)
    #expect(m.received(flood, now: 0).contains(.pauseReading(true)))
    let after = m.responseFinished(keepAlive: true, now: 1)
    #expect(after.first == .pauseReading(false))
    #expect(dispatched(after).count == 1)
}

@Test func shutdownClosesIdleNowAndBusyLater() {
    var idle = HTTPConnectionMachine(limits: HTTPLimits(), now: 0)
    #expect(idle.shutdown() == [.closeAfterWrites])
    var busy = HTTPConnectionMachine(limits: HTTPLimits(), now: 0)
    _ = busy.received(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8), now: 0)
    #expect(busy.shutdown().isEmpty)
    #expect(busy.responseFinished(keepAlive: true, now: 1) == [.closeAfterWrites])
}
