// One accepted socket: the protocol state machine (event-loop thread only) and the outbox that
// handler threads append to under a lock.
import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

final class Connection: @unchecked Sendable {
    let fd: Int32
    let id: Int
    /// Loop thread only.
    var machine: HTTPConnectionMachine
    var readingPaused = false
    var writeInterest = false
    var closeAfterFlush = false
    /// The TLS session, when the server has TLS (loop thread only).
    var ssl: OpaquePointer?

    private let lock = Mutex()
    // Guarded by `lock`.
    private var outbox: [UInt8] = []
    private var closed = false
    private var overflow = false
    private var finishedResponse: Bool?     // keep-alive flag of a finished response, for the loop
    private var closeHandlers: [@Sendable () -> Void] = []
    private let maxPending: Int
    private let wake: @Sendable (Int) -> Void

    init(fd: Int32, id: Int, machine: HTTPConnectionMachine, maxPending: Int, wake: @escaping @Sendable (Int) -> Void) {
        self.fd = fd
        self.id = id
        self.machine = machine
        self.maxPending = maxPending
        self.wake = wake
    }

    var isClosed: Bool { lock.withLock { closed || overflow } }

    /// Queues bytes; `finished` marks the end of the in-flight response (its keep-alive flag).
    /// Returns false if the connection is gone.
    @discardableResult
    func enqueue(_ bytes: [UInt8], finished: Bool?) -> Bool {
        let ok: Bool = lock.withLock {
            if closed || overflow { return false }
            outbox += bytes
            if outbox.count > maxPending { overflow = true }
            if let f = finished { finishedResponse = f }
            return !overflow
        }
        wake(id)
        return ok
    }

    func onClose(_ body: @escaping @Sendable () -> Void) {
        let runNow: Bool = lock.withLock {
            if closed { return true }
            closeHandlers.append(body)
            return false
        }
        if runNow { body() }
    }

    /// Writes what it can without blocking. Returns .error when the socket failed or the client fell
    /// too far behind, .pending when bytes remain, .flushed otherwise.
    enum FlushResult { case flushed, pending, error }
    func flush() -> FlushResult {
        lock.withLock {
            if overflow { return .error }
            var sent = 0
            defer { if sent > 0 { outbox.removeFirst(sent) } }
            while sent < outbox.count {
                if let ssl {
                    let n = outbox.withUnsafeBytes { b in SSL_write(ssl, b.baseAddress! + sent, Int32(min(b.count - sent, 1 << 20))) }
                    if n > 0 { sent += Int(n); continue }
                    let e = SSL_get_error(ssl, n)
                    if e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ { return .pending }
                    return .error
                }
                let n = outbox.withUnsafeBytes { b in
                    send(fd, b.baseAddress! + sent, b.count - sent, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
                }
                if n > 0 { sent += n; continue }
                if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return .pending }
                if n < 0 && errno == EINTR { continue }
                return .error
            }
            return .flushed
        }
    }

    /// The keep-alive flag of a response that finished since the last call.
    func takeFinishedResponse() -> Bool? {
        lock.withLock {
            defer { finishedResponse = nil }
            return finishedResponse
        }
    }

    /// Marks the connection closed and runs close handlers (loop thread; the loop closes the fd).
    func markClosed() {
        let handlers: [@Sendable () -> Void] = lock.withLock {
            closed = true
            defer { closeHandlers = [] }
            return closeHandlers
        }
        for h in handlers { h() }
    }
}
