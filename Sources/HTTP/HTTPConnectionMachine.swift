// The protocol logic of one connection as a state machine with no sockets and no clock of its own:
// feed it bytes, response completions and clock ticks; it returns actions for the event loop.
// (The Hummingbird/SwiftNIO style: tested directly with a mock clock.)
//
//   idle --bytes--> reading --request--> inFlight --finished--> idle (keep-alive) | closed
//     \--idle timeout--> closed   reading --header timeout--> 408, closed   any --parse error--> 4xx/5xx, closed

public struct HTTPConnectionMachine: Sendable {
    public enum Action: Equatable, Sendable {
        case write([UInt8])
        case dispatch(HTTPRequest)
        /// Close once everything written so far has been sent.
        case closeAfterWrites
        /// Stop (true) or resume (false) reading from the socket: backpressure while a request is in flight.
        case pauseReading(Bool)
    }

    public let limits: HTTPLimits
    private var parser: HTTPParser
    private var inFlight = false
    private var closing = false
    private var readingPaused = false
    private var lastActivity: Double
    private var headerStart: Double?
    private var bodyStart: Double?
    private var buffered = 0

    public init(limits: HTTPLimits, now: Double) {
        self.limits = limits
        parser = HTTPParser(limits: limits)
        lastActivity = now
    }

    public var isClosing: Bool { closing }
    public var hasRequestInFlight: Bool { inFlight }
    /// Idle between requests (safe to close at shutdown).
    public var isIdle: Bool { !inFlight && parser.isIdle }

    public mutating func received(_ bytes: [UInt8], now: Double) -> [Action] {
        guard !closing else { return [] }
        lastActivity = now
        if headerStart == nil && parser.isIdle && !bytes.isEmpty { headerStart = now }
        parser.feed(bytes)
        buffered += bytes.count
        return inFlight ? pauseIfNeeded() : advance(now: now)
    }

    /// The handler finished the in-flight response; `keepAlive` false closes the connection.
    public mutating func responseFinished(keepAlive: Bool, now: Double) -> [Action] {
        inFlight = false
        lastActivity = now
        if !keepAlive || closing { closing = true; return [.closeAfterWrites] }
        var out: [Action] = []
        if readingPaused { readingPaused = false; out.append(.pauseReading(false)) }
        if !parser.isIdle && headerStart == nil { headerStart = now }
        return out + advance(now: now)
    }

    /// Clock tick: enforces the header, body and idle timeouts.
    public mutating func tick(now: Double) -> [Action] {
        guard !closing, !inFlight else { return [] }
        if parser.inHeaderSection, let s = headerStart, now - s > limits.headerTimeout {
            return fail(408, "timed out waiting for the request header section")
        }
        if !parser.inHeaderSection, !parser.isIdle, let b = bodyStart, now - b > limits.bodyTimeout {
            return fail(408, "timed out waiting for the request body")
        }
        if parser.isIdle && now - lastActivity > limits.idleTimeout {
            closing = true
            return [.closeAfterWrites]
        }
        return []
    }

    /// Server shutdown: close now if idle, else after the in-flight response.
    public mutating func shutdown() -> [Action] {
        if closing { return [] }
        closing = true
        return inFlight ? [] : [.closeAfterWrites]
    }

    private mutating func advance(now: Double) -> [Action] {
        var out: [Action] = []
        while !inFlight && !closing {
            let event: HTTPParser.Event
            do { event = try parser.next() } catch { return out + fail(error.status, error.message) }
            switch event {
            case .needMore:
                if !parser.inHeaderSection && !parser.isIdle && bodyStart == nil { bodyStart = now }
                return out
            case .expectContinue:
                bodyStart = now
                out.append(.write(Array("HTTP/1.1 100 Continue\r\n\r\n".utf8)))
            case let .request(r):
                headerStart = nil
                bodyStart = nil
                buffered = 0
                inFlight = true
                out.append(.dispatch(r))
                if !parser.isIdle { headerStart = now }
            }
        }
        return out + pauseIfNeeded()
    }

    private mutating func pauseIfNeeded() -> [Action] {
        let cap = limits.maxRequestLine + limits.maxHeaderBytes + limits.maxBodyBytes
        if inFlight && !readingPaused && buffered > cap {
            readingPaused = true
            return [.pauseReading(true)]
        }
        return []
    }

    private mutating func fail(_ status: Int, _ message: String) -> [Action] {
        closing = true
        // No request was parsed, so no client id to echo: a fresh one still names the answer in logs.
        let r = HTTPResponse.error(status, message, headers: HTTPHeaders([(RequestID.header, RequestID.generate())]))
        return [.write(HTTPResponse.head(status: status, headers: r.headers, contentLength: r.body.count, keepAlive: false) + r.body),
                .closeAfterWrites]
    }
}
