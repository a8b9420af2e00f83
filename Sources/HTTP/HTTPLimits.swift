// Every resource limit of the HTTP layer in one place, with documented defaults (tested at each boundary).

public struct HTTPLimits: Sendable, Equatable {
    /// Longest request line (method, target, version) in bytes; longer gets 414.
    public var maxRequestLine = 8 * 1024
    /// Largest header section in bytes: all field lines (or trailer lines) with their CRLFs, not the blank
    /// line that ends the section; larger gets 431.
    public var maxHeaderBytes = 32 * 1024
    /// Most header (or trailer) fields; more gets 431.
    public var maxHeaderCount = 100
    /// Largest request body in bytes, after chunked decoding and after gzip inflation; larger gets 413.
    public var maxBodyBytes = 8 * 1024 * 1024
    /// Most open connections; beyond it a new connection is answered 503 and closed.
    public var maxConnections = 1024
    /// Seconds from the first byte of a request to the end of its header section (slowloris guard).
    public var headerTimeout: Double = 10
    /// Seconds an idle keep-alive connection stays open.
    public var idleTimeout: Double = 60
    /// Seconds to wait for a request body to arrive once its headers are in.
    public var bodyTimeout: Double = 60
    /// Bytes queued for one slow client before the connection is dropped (a streaming producer
    /// finds out through `HTTPResponseWriter.isClosed`).
    public var maxPendingWriteBytes = 4 * 1024 * 1024
    /// Responses at least this large are gzip-compressed when the client accepts gzip.
    public var gzipMinBytes = 1024

    public init() {}
}
