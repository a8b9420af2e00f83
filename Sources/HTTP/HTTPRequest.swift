// A parsed HTTP/1.1 request.

public struct HTTPHeaders: Sendable, Equatable, Sequence {
    /// Field lines in arrival order; names keep their case, lookups ignore it (RFC 9110 5.1).
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) { self.fields = fields.map { (name: $0.0, value: $0.1) } }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    /// The first value of `name`.
    public subscript(_ name: String) -> String? {
        fields.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of `name`, including repeated fields, in order.
    public func values(_ name: String) -> [String] {
        fields.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// Comma-separated list elements across all `name` fields, trimmed and lowercased.
    public func tokens(_ name: String) -> [String] {
        values(name).flatMap { $0.split(separator: ",") }
            .map { $0.trimmingSpaces().lowercased() }.filter { !$0.isEmpty }
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (a: HTTPHeaders, b: HTTPHeaders) -> Bool {
        a.fields.count == b.fields.count && zip(a.fields, b.fields).allSatisfy { $0.name == $1.name && $0.value == $1.value }
    }
}

public struct HTTPRequest: Sendable, Equatable {
    public var method: String
    /// The request target as sent (origin-form `/path?q`, or absolute-form `http://host/path`).
    public var target: String
    /// The path of the target, without the query.
    public var path: String
    public var query: String?
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    public var headers: HTTPHeaders
    public var body: [UInt8]
    /// Trailer fields of a chunked body.
    public var trailers: HTTPHeaders
    /// The request's id (see `RequestID`), set by the server before a handler sees the request.
    public var id = ""

    /// Whether the connection stays open after the response (RFC 9112 9.3).
    public var keepAlive: Bool {
        let c = headers.tokens("connection")
        if c.contains("close") { return false }
        return minorVersion >= 1 || c.contains("keep-alive")
    }
}

extension StringProtocol {
    func trimmingSpaces() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s = s.dropFirst() }
        while let l = s.last, l == " " || l == "\t" { s = s.dropLast() }
        return String(s)
    }
}
