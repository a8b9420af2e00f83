// Responses and their wire form (RFC 9112 4, 6): status line, Date/Server headers, fixed length or
// chunked framing. Error bodies use the product's one error shape, OpenAI's:
//   {"error": {"message": ..., "type": ..., "param": ..., "code": ...}}
#if canImport(Glibc)
import Glibc
#endif

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: [UInt8] = []) {
        self.status = status; self.headers = headers; self.body = body
    }

    public static func json(_ status: Int, _ body: String, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        var h = headers
        h.add("Content-Type", "application/json")
        return HTTPResponse(status: status, headers: h, body: Array(body.utf8))
    }

    /// An error in the OpenAI shape; `type` defaults from the status.
    public static func error(_ status: Int, _ message: String, type: String? = nil, param: String? = nil,
                             code: String? = nil, headers: HTTPHeaders = HTTPHeaders()) -> HTTPResponse {
        let t = type ?? (status == 401 ? "authentication_error" : status == 404 ? "not_found_error"
            : status == 429 ? "rate_limit_error" : status >= 500 ? "server_error" : "invalid_request_error")
        let body = "{\"error\":{\"message\":\(jsonString(message)),\"type\":\(jsonString(t)),\"param\":\(param.map(jsonString) ?? "null"),\"code\":\(code.map(jsonString) ?? "null")}}"
        return json(status, body, headers: headers)
    }

    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"; case 200: "OK"; case 201: "Created"; case 204: "No Content"
        case 400: "Bad Request"; case 401: "Unauthorized"; case 403: "Forbidden"; case 404: "Not Found"
        case 405: "Method Not Allowed"; case 408: "Request Timeout"; case 413: "Content Too Large"
        case 414: "URI Too Long"; case 415: "Unsupported Media Type"; case 422: "Unprocessable Content"
        case 429: "Too Many Requests"; case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"; case 501: "Not Implemented"; case 503: "Service Unavailable"
        case 505: "HTTP Version Not Supported"
        default: "Status \(status)"
        }
    }

    /// Status line and headers (with Date, Server, Connection and the framing header), ending in CRLFCRLF.
    /// `contentLength` nil means chunked; `closeDelimited` sends neither (HTTP/1.0 streams).
    static func head(status: Int, headers: HTTPHeaders, contentLength: Int?, keepAlive: Bool,
                     closeDelimited: Bool = false) -> [UInt8] {
        var s = "HTTP/1.1 \(status) \(reason(status))\r\nDate: \(HTTPDate.now())\r\nServer: zebra\r\n"
        for (n, v) in headers {
            let l = n.lowercased()
            if l == "content-length" || l == "transfer-encoding" || l == "connection" { continue }
            s += "\(n): \(v)\r\n"
        }
        if status == 204 || status < 200 {}   // no content, so no framing header (RFC 9110 8.6, RFC 9112 6.1)
        else if let n = contentLength { s += "Content-Length: \(n)\r\n" }
        else if !closeDelimited { s += "Transfer-Encoding: chunked\r\n" }
        s += keepAlive ? "Connection: keep-alive\r\n" : "Connection: close\r\n"
        s += "\r\n"
        return Array(s.utf8)
    }

    /// One chunk of a chunked body (RFC 9112 7.1); empty input is not a chunk (use `lastChunk`).
    static func chunk(_ bytes: [UInt8]) -> [UInt8] {
        Array((String(bytes.count, radix: 16) + "\r\n").utf8) + bytes + [0x0D, 0x0A]
    }
    static let lastChunk: [UInt8] = Array("0\r\n\r\n".utf8)
}

/// JSON string literal for `s` (RFC 8259 escaping).
public func jsonString(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        switch u {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        case "\r": out += "\\r"
        case "\t": out += "\\t"
        case _ where u.value < 0x20: out += "\\u" + String(repeating: "0", count: 4 - String(u.value, radix: 16).count) + String(u.value, radix: 16)
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "\""
}

/// IMF-fixdate (RFC 9110 5.6.7), cached per second.
enum HTTPDate {
    nonisolated(unsafe) private static var cache: (Int, String) = (0, "")
    private static let lock = Mutex()

    static func now() -> String {
        var t = time(nil)
        return lock.withLock {
            if cache.0 == t { return cache.1 }
            var tm = tm()
            gmtime_r(&t, &tm)
            var buf = [CChar](repeating: 0, count: 64)
            let n = strftime(&buf, 64, "%a, %d %b %Y %H:%M:%S GMT", &tm)
            let s = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            cache = (t, s)
            return s
        }
    }
}

/// A small pthread mutex (Foundation-free), shared by the HTTP and Server layers.
public final class Mutex: @unchecked Sendable {
    private var m = pthread_mutex_t()
    public init() { pthread_mutex_init(&m, nil) }
    deinit { pthread_mutex_destroy(&m) }
    public func withLock<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        return try body()
    }
}
