// Method + exact-path routing: unknown paths get 404, known paths with another method 405 with `Allow`.
// HEAD is served by a GET route (the writer drops the body). An optional gate sees every request first.

public struct HTTPRouter: Sendable {
    private var routes: [String: [String: HTTPHandler]] = [:]
    private var inlineRoutes: Set<String> = []
    /// Runs before routing, for every request (known path or not); returns false when it has answered
    /// the request itself, which then goes no further (auth). Must be cheap: it may run on the event loop.
    public var gate: (@Sendable (HTTPRequest, HTTPResponseWriter) -> Bool)?

    public init() {}

    /// Every (method, path) with a handler, sorted by path then method.
    public var endpoints: [(method: String, path: String)] {
        routes.flatMap { path, byMethod in byMethod.keys.map { (method: $0, path: path) } }
            .sorted { ($0.path, $0.method) < ($1.path, $1.method) }
    }

    /// `inline`: the handler is cheap and never blocks, so it may run on the event loop thread itself
    /// (no thread hop: health checks, metrics, small lookups).
    public mutating func add(_ method: String, _ path: String, inline: Bool = false, _ handler: @escaping HTTPHandler) {
        routes[path, default: [:]][method] = handler
        if inline { inlineRoutes.insert(method + " " + path) }
    }

    /// Whether a request may be handled on the event loop (inline routes, and 404/405 answers).
    public var runsInline: @Sendable (HTTPRequest) -> Bool {
        let routes = self.routes, inline = self.inlineRoutes
        return { req in
            guard let byMethod = routes[req.path] else { return true }
            let m = byMethod[req.method] != nil ? req.method : (req.method == "HEAD" && byMethod["GET"] != nil ? "GET" : nil)
            guard let m else { return true }
            return inline.contains(m + " " + req.path)
        }
    }

    /// Allowed methods of a path, sorted (nil for an unknown path).
    public func allowed(_ path: String) -> [String]? {
        guard let r = routes[path] else { return nil }
        var m = Set(r.keys)
        if m.contains("GET") { m.insert("HEAD") }
        return m.sorted()
    }

    public var handler: HTTPHandler {
        let routes = self.routes
        let allowedFor = self.allowed
        let gate = self.gate
        return { req, w in
            if let gate, !gate(req, w) { return }
            guard let byMethod = routes[req.path] else {
                w.respond(.error(404, "no route for \(req.path)", code: "not_found"))
                return
            }
            if let h = byMethod[req.method] ?? (req.method == "HEAD" ? byMethod["GET"] : nil) {
                h(req, w)
            } else {
                let allow = allowedFor(req.path)!.joined(separator: ", ")
                w.respond(.error(405, "method \(req.method) not allowed on \(req.path) (allowed: \(allow))",
                                 code: "method_not_allowed", headers: HTTPHeaders([("Allow", allow)])))
            }
        }
    }
}
