// An incremental HTTP/1.1 request parser (RFC 9112): feed it any split of the input and it yields the
// same requests. It never buffers beyond the limits, and every malformed input maps to one
// HTTPParseError carrying the status to answer with. After an error the parser stays failed: the
// connection's framing can no longer be trusted and it must be closed.

/// Why a request was rejected, with the status code that says so.
public enum HTTPParseError: Error, Equatable, Sendable {
    case badRequest(String)                 // 400
    case uriTooLong                         // 414
    case headersTooLarge                    // 431
    case bodyTooLarge                       // 413
    case unsupportedTransferCoding(String)  // 501
    case versionNotSupported(String)        // 505

    public var status: Int {
        switch self {
        case .badRequest: 400
        case .uriTooLong: 414
        case .headersTooLarge: 431
        case .bodyTooLarge: 413
        case .unsupportedTransferCoding: 501
        case .versionNotSupported: 505
        }
    }

    public var message: String {
        switch self {
        case let .badRequest(m): "bad request: \(m)"
        case .uriTooLong: "request line too long"
        case .headersTooLarge: "request header section too large or too many header fields"
        case .bodyTooLarge: "request body too large"
        case let .unsupportedTransferCoding(c): "unsupported transfer coding '\(c)'"
        case let .versionNotSupported(v): "HTTP version '\(v)' not supported (use HTTP/1.1 or HTTP/1.0)"
        }
    }
}

public struct HTTPParser: Sendable {
    public enum Event: Equatable, Sendable {
        /// A complete request.
        case request(HTTPRequest)
        /// Headers asked for `Expect: 100-continue` and the body has not arrived: send 100 Continue.
        case expectContinue
        /// Nothing complete yet.
        case needMore
    }

    enum State: Equatable { case requestLine, headers, body(Int), chunkSize, chunkData(Int), chunkEnd, trailers, failed }

    public let limits: HTTPLimits
    private var buf: [UInt8] = []
    private var pos = 0
    private var state = State.requestLine
    // The request being parsed.
    private var method = "", target = "", minor = 1
    private var headers = HTTPHeaders(), trailers = HTTPHeaders()
    private var sectionBytes = 0, sectionCount = 0
    private var body: [UInt8] = []
    private var continuePending = false

    public init(limits: HTTPLimits = HTTPLimits()) { self.limits = limits }

    /// True when no part of a request is buffered (between requests).
    public var isIdle: Bool { state == .requestLine && pos == buf.count }
    /// True while a request's header section is incomplete (the header timeout applies).
    public var inHeaderSection: Bool { (state == .requestLine && pos < buf.count) || state == .headers }

    public mutating func feed<S: Sequence>(_ bytes: S) where S.Element == UInt8 {
        if pos > 0 && pos == buf.count { buf.removeAll(keepingCapacity: true); pos = 0 }
        else if pos > 65536 { buf.removeFirst(pos); pos = 0 }
        buf.append(contentsOf: bytes)
    }

    /// The next event; call until `.needMore`.
    public mutating func next() throws(HTTPParseError) -> Event {
        do {
            return try step()
        } catch {
            state = .failed
            throw error
        }
    }

    private mutating func step() throws(HTTPParseError) -> Event {
        while true {
            switch state {
            case .failed:
                throw .badRequest("connection already failed")
            case .requestLine:
                // RFC 9112 2.2: ignore empty lines before a request line.
                while pos < buf.count, buf[pos] == 0x0D || buf[pos] == 0x0A {
                    if buf[pos] == 0x0D && (pos + 1 >= buf.count) { return .needMore }
                    if buf[pos] == 0x0D && buf[pos + 1] != 0x0A { throw .badRequest("stray CR") }
                    pos += buf[pos] == 0x0D ? 2 : 1
                }
                guard let line = try readLine(limit: limits.maxRequestLine, tooLong: .uriTooLong) else { return .needMore }
                try parseRequestLine(line)
                state = .headers
            case .headers, .trailers:
                let isTrailer = state == .trailers
                guard let line = try readLine(limit: limits.maxHeaderBytes - sectionBytes, tooLong: .headersTooLarge) else {
                    return .needMore
                }
                sectionBytes += line.count + 2
                if line.isEmpty {
                    if isTrailer { return .request(finish()) }
                    if let e = try startBody() { return e }
                    continue
                }
                sectionCount += 1
                if sectionCount > limits.maxHeaderCount { throw .headersTooLarge }
                let (name, value) = try parseField(line)
                if isTrailer { trailers.add(name, value) } else { headers.add(name, value) }
            case let .body(remaining):
                let n = min(remaining, buf.count - pos)
                body.append(contentsOf: buf[pos..<pos + n])
                pos += n
                if n == remaining { return .request(finish()) }
                state = .body(remaining - n)
                return .needMore
            case .chunkSize:
                guard let line = try readLine(limit: 1024, tooLong: .badRequest("chunk size line too long")) else { return .needMore }
                let sizeText = line.prefix { $0 != UInt8(ascii: ";") }
                guard !sizeText.isEmpty, sizeText.count <= 16, let size = Int(String(decoding: sizeText, as: UTF8.self), radix: 16), size >= 0 else {
                    throw .badRequest("invalid chunk size")
                }
                if size == 0 {
                    sectionBytes = 0; sectionCount = 0
                    state = .trailers
                } else {
                    guard body.count + size <= limits.maxBodyBytes else { throw .bodyTooLarge }
                    state = .chunkData(size)
                }
            case let .chunkData(remaining):
                let n = min(remaining, buf.count - pos)
                body.append(contentsOf: buf[pos..<pos + n])
                pos += n
                if n < remaining { state = .chunkData(remaining - n); return .needMore }
                state = .chunkEnd
            case .chunkEnd:
                guard let line = try readLine(limit: 2, tooLong: .badRequest("missing CRLF after chunk data")) else { return .needMore }
                guard line.isEmpty else { throw .badRequest("missing CRLF after chunk data") }
                state = .chunkSize
            }
        }
    }

    /// The next line without its CRLF (a bare LF is accepted, RFC 9112 2.2), or nil if incomplete.
    private mutating func readLine(limit: Int, tooLong: HTTPParseError) throws(HTTPParseError) -> ArraySlice<UInt8>? {
        var i = pos
        let end = min(buf.count, pos + max(0, limit) + 2)
        while i < end && buf[i] != 0x0A { i += 1 }
        guard i < buf.count && buf[i] == 0x0A else {
            if buf.count - pos > max(0, limit) + 1 { throw tooLong }
            return nil
        }
        var line = buf[pos..<i]
        if line.last == 0x0D { line = line.dropLast() }
        if line.count > limit { throw tooLong }
        pos = i + 1
        return line
    }

    private mutating func parseRequestLine(_ line: ArraySlice<UInt8>) throws(HTTPParseError) {
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        guard parts.count == 3, !parts[0].isEmpty, !parts[1].isEmpty else { throw .badRequest("malformed request line") }
        guard parts[0].allSatisfy(Self.isTokenChar) else { throw .badRequest("invalid method") }
        guard parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { throw .badRequest("invalid request target") }
        let version = String(decoding: parts[2], as: UTF8.self)
        switch version {
        case "HTTP/1.1": minor = 1
        case "HTTP/1.0": minor = 0
        default:
            let v = Array(parts[2])
            if v.count == 8, version.hasPrefix("HTTP/"), (0x30...0x39).contains(v[5]), v[6] == 0x2E, (0x30...0x39).contains(v[7]) {
                throw .versionNotSupported(version)
            }
            throw .badRequest("invalid HTTP version")
        }
        method = String(decoding: parts[0], as: UTF8.self)
        target = String(decoding: parts[1], as: UTF8.self)
        guard target.hasPrefix("/") || target == "*" || target.lowercased().hasPrefix("http://") || target.lowercased().hasPrefix("https://") else {
            throw .badRequest("unsupported request target form")
        }
        headers = HTTPHeaders(); trailers = HTTPHeaders()
        sectionBytes = 0; sectionCount = 0
        body = []
    }

    private func parseField(_ line: ArraySlice<UInt8>) throws(HTTPParseError) -> (String, String) {
        if line.first == 0x20 || line.first == 0x09 { throw .badRequest("obsolete line folding") }
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")) else { throw .badRequest("header field without ':'") }
        let name = line[line.startIndex..<colon]
        guard !name.isEmpty, name.allSatisfy(Self.isTokenChar) else { throw .badRequest("invalid header field name") }
        let value = line[(colon + 1)...]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7F) }) else { throw .badRequest("invalid character in header field value") }
        return (String(decoding: name, as: UTF8.self), String(decoding: value, as: UTF8.self).trimmingSpaces())
    }

    /// Decides the body framing once headers are complete (RFC 9112 6).
    private mutating func startBody() throws(HTTPParseError) -> Event? {
        if minor == 1 {
            let hosts = headers.values("host")
            guard hosts.count == 1 else { throw .badRequest(hosts.isEmpty ? "missing Host header" : "multiple Host headers") }
        }
        let te = headers.tokens("transfer-encoding")
        let cls = headers.values("content-length").flatMap { $0.split(separator: ",", omittingEmptySubsequences: false) }.map { $0.trimmingSpaces() }
        let expects = headers.tokens("expect").contains("100-continue")
        if !headers.values("transfer-encoding").isEmpty {
            guard cls.isEmpty else { throw .badRequest("both Content-Length and Transfer-Encoding") }
            guard minor == 1 else { throw .badRequest("Transfer-Encoding in an HTTP/1.0 request") }
            guard let last = te.last else { throw .badRequest("empty Transfer-Encoding") }
            for c in te where c != "chunked" { throw .unsupportedTransferCoding(c) }
            guard last == "chunked", te.count == 1 else { throw .badRequest("chunked must be the only transfer coding") }
            state = .chunkSize
            continuePending = expects
        } else if !cls.isEmpty {
            guard cls.allSatisfy({ !$0.isEmpty && $0.count <= 19 && $0.utf8.allSatisfy { (0x30...0x39).contains($0) } }),
                  Set(cls).count == 1, let n = Int(cls[0]) else {
                throw .badRequest("invalid or conflicting Content-Length")
            }
            guard n <= limits.maxBodyBytes else { throw .bodyTooLarge }
            if n == 0 { return .request(finish()) }
            state = .body(n)
            continuePending = expects
        } else {
            return .request(finish())
        }
        if continuePending && minor == 1 && pos == buf.count {
            continuePending = false
            return .expectContinue
        }
        continuePending = false
        return nil
    }

    private mutating func finish() -> HTTPRequest {
        state = .requestLine
        var path = target, query: String? = nil
        let lower = target.lowercased()
        if lower.hasPrefix("http://") || lower.hasPrefix("https://") {
            let afterScheme = target[target.index(target.firstIndex(of: ":")!, offsetBy: 3)...]
            path = afterScheme.firstIndex(of: "/").map { String(afterScheme[$0...]) } ?? "/"
        }
        if let q = path.firstIndex(of: "?") {
            query = String(path[path.index(after: q)...])
            path = String(path[..<q])
        }
        let r = HTTPRequest(method: method, target: target, path: path, query: query, minorVersion: minor,
                            headers: headers, body: body, trailers: trailers)
        body = []
        return r
    }

    /// RFC 9110 5.6.2 tchar.
    static func isTokenChar(_ c: UInt8) -> Bool {
        switch c {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
             UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
             UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }
}
