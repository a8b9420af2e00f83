// CORS (the Fetch standard, 3.2 "CORS protocol"): which browser origins may call the API. Off unless
// origins are configured. Then a request whose `Origin` is allowed gets Access-Control-Allow-Origin and
// the headers its script may read, and a preflight (`OPTIONS` with Access-Control-Request-Method) is
// answered here, before routing and auth, since browsers never send credentials on a preflight. Any other
// origin gets no CORS headers, so the browser withholds the response from the page. CORS only tells
// browsers what to show a page; the API key is what guards the server.

public struct CORSPolicy: Sendable, Equatable {
    /// Allowed origins, lowercased (`https://app.example.com`, `http://localhost:3000`), or `*` for any.
    public let origins: Set<String>
    /// Seconds a browser may cache a preflight's answer.
    public var maxAge = 600
    static let methods = "GET, POST, OPTIONS"
    /// The request headers a preflight allows when it names none, or names them unreadably.
    static let defaultAllowedHeaders = "Authorization, Content-Type, X-Request-Id"
    /// Response headers a page's script may read beyond the CORS-safelisted ones.
    static let exposedHeaders = "X-Request-Id, Retry-After"

    public init(origins: [String]) { self.origins = Set(origins.map { $0.lowercased() }) }

    /// `*`, or an origin as browsers send it: `scheme://host[:port]`, with no path, no trailing slash,
    /// no spaces or commas. (Not `null`: sandboxed and file pages all share it.)
    public static func isValidOrigin(_ s: String) -> Bool {
        if s == "*" { return true }
        let b = Array(s.utf8)
        guard let colon = b.firstIndex(of: UInt8(ascii: ":")), colon > 0, b[colon...].starts(with: "://".utf8) else { return false }
        let scheme = b[..<colon], authority = b[(colon + 3)...]
        func letter(_ c: UInt8) -> Bool { (0x41...0x5A).contains(c) || (0x61...0x7A).contains(c) }
        func schemeChar(_ c: UInt8) -> Bool { letter(c) || (0x30...0x39).contains(c) || "+-.".utf8.contains(c) }
        func hostChar(_ c: UInt8) -> Bool { (0x21...0x7E).contains(c) && !"/,?#".utf8.contains(c) }
        return letter(scheme.first!) && scheme.allSatisfy(schemeChar) && !authority.isEmpty && authority.allSatisfy(hostChar)
    }

    /// The Access-Control-Allow-Origin value for a request's `Origin`, nil when it is not allowed.
    func allowOrigin(_ origin: String?) -> String? {
        guard let o = origin else { return nil }
        if origins.contains("*") { return "*" }
        return origins.contains(o) ? o : nil
    }

    /// Headers every response to `request` carries: `Vary: Origin` (the answer depends on the Origin, which
    /// caches must know), and for an allowed origin Access-Control-Allow-Origin and -Expose-Headers.
    func responseHeaders(_ request: HTTPRequest) -> [(String, String)] {
        guard let allow = allowOrigin(request.headers["origin"]) else { return [("Vary", "Origin")] }
        return [("Access-Control-Allow-Origin", allow), ("Access-Control-Expose-Headers", Self.exposedHeaders), ("Vary", "Origin")]
    }

    /// The answer to a preflight from an allowed origin: 204 with the methods, the request headers it
    /// asked for (echoed when they are well-formed field names) and how long to cache the answer. Nil for
    /// every other request, which is routed as usual.
    func preflight(_ request: HTTPRequest) -> HTTPResponse? {
        guard request.method == "OPTIONS", request.headers["access-control-request-method"] != nil,
              allowOrigin(request.headers["origin"]) != nil else { return nil }
        let asked = request.headers.tokens("access-control-request-headers")
        let wellFormed = !asked.isEmpty && asked.allSatisfy { $0.utf8.allSatisfy(HTTPParser.isTokenChar) }
        return HTTPResponse(status: 204, headers: HTTPHeaders([
            ("Access-Control-Allow-Methods", Self.methods),
            ("Access-Control-Allow-Headers", wellFormed ? asked.joined(separator: ", ") : Self.defaultAllowedHeaders),
            ("Access-Control-Max-Age", String(maxAge))]))
    }
}
