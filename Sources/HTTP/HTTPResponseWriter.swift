// How a handler answers, from any thread: one full response, a chunked stream, or server-sent events.
// Every write is queued to the connection and the event loop is woken at once (events are flushed as
// written). Writes return false once the client is gone or was dropped for not reading: a streaming
// producer should stop then.

public final class HTTPResponseWriter: @unchecked Sendable {
    enum Mode { case initial, chunked, closeDelimited, done }
    let connection: Connection
    let request: HTTPRequest
    private let requestKeepAlive: Bool
    private let draining: Flag
    let limits: HTTPLimits
    /// Headers every response through this writer carries (the request id, CORS).
    let commonHeaders: HTTPHeaders
    /// Keep the connection open after this response: the request allows it and the server is not draining.
    var keepAlive: Bool { requestKeepAlive && !draining.value }
    private let lock = Mutex()
    private var mode = Mode.initial
    private var streamKeepAlive = false

    init(connection: Connection, request: HTTPRequest, keepAlive: Bool, draining: Flag, limits: HTTPLimits,
         commonHeaders: HTTPHeaders) {
        self.connection = connection
        self.request = request
        self.requestKeepAlive = keepAlive
        self.draining = draining
        self.limits = limits
        self.commonHeaders = commonHeaders
    }

    /// True once the client disconnected or the connection was dropped.
    public var isClosed: Bool { connection.isClosed }

    /// Runs `body` when the connection closes (immediately if it already has).
    public func onClose(_ body: @escaping @Sendable () -> Void) { connection.onClose(body) }

    /// Sends a complete response (gzip-compressed when the client accepts it and it is large enough).
    public func respond(_ response: HTTPResponse) {
        lock.withLock {
            guard mode == .initial else { return }
            mode = .done
            var r = response
            for (n, v) in commonHeaders { r.headers.add(n, v) }
            if r.body.count >= limits.gzipMinBytes, r.headers["content-encoding"] == nil,
               Self.acceptsGzip(request.headers), let z = Gzip.compress(r.body) {
                r.body = z
                r.headers.add("Content-Encoding", "gzip")
                r.headers.add("Vary", "Accept-Encoding")
            }
            let keep = keepAlive
            let head = HTTPResponse.head(status: r.status, headers: r.headers, contentLength: r.body.count, keepAlive: keep)
            connection.enqueue(request.method == "HEAD" ? head : head + r.body, finished: keep)
        }
    }

    /// Starts a streamed response: chunked for HTTP/1.1, close-delimited for HTTP/1.0.
    @discardableResult
    public func startStream(status: Int = 200, headers: HTTPHeaders) -> Bool {
        lock.withLock {
            guard mode == .initial else { return false }
            let chunked = request.minorVersion >= 1
            mode = chunked ? .chunked : .closeDelimited
            streamKeepAlive = chunked && keepAlive
            var all = headers
            for (n, v) in commonHeaders { all.add(n, v) }
            let head = HTTPResponse.head(status: status, headers: all, contentLength: nil,
                                         keepAlive: streamKeepAlive, closeDelimited: !chunked)
            if request.method == "HEAD" {
                mode = .done
                return connection.enqueue(head, finished: streamKeepAlive)
            }
            return connection.enqueue(head, finished: nil)
        }
    }

    /// Starts a `text/event-stream` response (never compressed, never buffered).
    @discardableResult
    public func startEventStream(headers: HTTPHeaders = HTTPHeaders()) -> Bool {
        var h = headers
        h.add("Content-Type", "text/event-stream")
        h.add("Cache-Control", "no-cache")
        h.add("X-Accel-Buffering", "no")
        return startStream(status: 200, headers: h)
    }

    /// Writes body bytes of a stream.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        lock.withLock {
            guard !bytes.isEmpty else { return !connection.isClosed }
            switch mode {
            case .chunked: return connection.enqueue(HTTPResponse.chunk(bytes), finished: nil)
            case .closeDelimited: return connection.enqueue(bytes, finished: nil)
            default: return false
            }
        }
    }

    /// One server-sent event: `data: <line>` for each line of `data`, then a blank line.
    @discardableResult
    public func sendEvent(_ data: String, name: String? = nil) -> Bool {
        var s = name.map { "event: \($0)\n" } ?? ""
        for line in data.split(separator: "\n", omittingEmptySubsequences: false) { s += "data: \(line)\n" }
        return write(Array((s + "\n").utf8))
    }

    /// An SSE comment (`: text`), e.g. a keep-alive ping.
    @discardableResult
    public func sendComment(_ text: String) -> Bool { write(Array(": \(text)\n\n".utf8)) }

    /// Ends a stream (a no-op after `respond`).
    public func finish() {
        lock.withLock {
            switch mode {
            case .chunked:
                connection.enqueue(HTTPResponse.lastChunk, finished: streamKeepAlive)
            case .closeDelimited:
                connection.enqueue([], finished: false)
            case .initial, .done:
                break
            }
            if mode != .initial { mode = .done }
        }
    }

    static func acceptsGzip(_ h: HTTPHeaders) -> Bool {
        h.tokens("accept-encoding").contains { t in
            let parts = t.split(separator: ";").map { $0.trimmingSpaces() }
            guard parts.first == "gzip" || parts.first == "*" else { return false }
            return !parts.dropFirst().contains { $0.replacingSpaces() == "q=0" || $0.replacingSpaces() == "q=0.0" }
        }
    }
}

extension String {
    func replacingSpaces() -> String { String(filter { $0 != " " }) }
}
