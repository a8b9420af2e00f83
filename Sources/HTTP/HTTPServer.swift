// The server: listening sockets (IPv4/IPv6), one epoll event loop thread with non-blocking sockets,
// handlers run off the loop, timeouts from the connection state machines, and graceful shutdown
// (stop accepting, let in-flight responses finish up to a deadline, then close).
import COpenSSL
import CSystemShims
import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Answers one request. Runs off the event loop; must not block for long (stream from another thread).
public typealias HTTPHandler = @Sendable (HTTPRequest, HTTPResponseWriter) -> Void

public struct HTTPServerConfig: Sendable {
    /// Addresses to listen on: "::" (dual-stack IPv6 + IPv4), "0.0.0.0", "127.0.0.1", "::1", ...
    public var hosts: [String] = ["::"]
    /// 0 picks an ephemeral port (see `HTTPServer.port`).
    public var port: Int = 8080
    public var limits = HTTPLimits()
    /// Seconds in-flight responses get to finish after shutdown begins.
    public var shutdownTimeout: Double = 30
    /// HTTPS instead of HTTP on every listener.
    public var tls: TLSConfig?
    /// Browser origins allowed to call (nil: no CORS headers, and OPTIONS is routed like any method).
    public var cors: CORSPolicy?
    public init(hosts: [String] = ["::"], port: Int = 8080, limits: HTTPLimits = HTTPLimits(), shutdownTimeout: Double = 30,
                tls: TLSConfig? = nil, cors: CORSPolicy? = nil) {
        self.hosts = hosts; self.port = port; self.limits = limits; self.shutdownTimeout = shutdownTimeout; self.tls = tls
        self.cors = cors
    }
}

public enum HTTPServerError: Error, CustomStringConvertible {
    case bind(String, Int, String)
    case system(String)
    public var description: String {
        switch self {
        case let .bind(h, p, e): "cannot listen on \(h) port \(p): \(e)"
        case let .system(e): e
        }
    }
}

func monotonicNow() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Written by the signal handler (async-signal-safe: one write to an eventfd).
nonisolated(unsafe) private var signalEventFD: Int32 = -1

public final class HTTPServer: @unchecked Sendable {
    public let config: HTTPServerConfig
    let handler: HTTPHandler
    public private(set) var port = 0
    private var listeners: [Int32] = []
    private var epfd: Int32 = -1
    private var wakefd: Int32 = -1
    private var sigfd: Int32 = -1
    private var thread: pthread_t?
    private var connections: [Int: Connection] = [:]   // loop thread only
    private var nextID = 1
    private let state = Mutex()
    private var dirty = Set<Int>()                     // guarded by state
    private var shutdownRequested: Double?             // deadline; guarded by state
    private var finished = false                       // guarded by state
    private let finishedCond = Semaphore()
    private let draining = Flag()
    private var tls: TLSContext?
    private let handlerQueue = DispatchQueue(label: "zebra.http.handlers", attributes: .concurrent)

    // epoll user data tags below connection ids
    private static let wakeTag: UInt64 = 0, signalTag: UInt64 = 1, listenerBase: UInt64 = 1 << 40

    let runsInline: @Sendable (HTTPRequest) -> Bool
    private var loopThread: pthread_t?

    /// `runsInline`: requests whose handler may run on the event loop thread (cheap, non-blocking).
    public init(config: HTTPServerConfig, handler: @escaping HTTPHandler,
                runsInline: @escaping @Sendable (HTTPRequest) -> Bool = { _ in false }) {
        self.config = config
        self.handler = handler
        self.runsInline = runsInline
    }

    /// Serves a router's routes (its inline routes on the loop thread).
    public convenience init(config: HTTPServerConfig, router: HTTPRouter) {
        self.init(config: config, handler: router.handler, runsInline: router.runsInline)
    }

    /// Binds and starts the event loop thread.
    public func start() throws(HTTPServerError) {
        signal(SIGPIPE, SIG_IGN)
        if let t = config.tls { tls = try TLSContext(t) }
        epfd = epoll_create1(Int32(EPOLL_CLOEXEC))
        wakefd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        guard epfd >= 0, wakefd >= 0 else { throw .system("epoll/eventfd failed") }
        addToEpoll(wakefd, tag: Self.wakeTag, events: EPOLLIN.rawValue)
        if sigfd >= 0 { addToEpoll(sigfd, tag: Self.signalTag, events: EPOLLIN.rawValue) }
        var boundPort = config.port
        for (i, host) in config.hosts.enumerated() {
            let fd = try listen(host: host, port: boundPort)
            if boundPort == 0 { boundPort = Self.localPort(fd) }
            listeners.append(fd)
            addToEpoll(fd, tag: Self.listenerBase + UInt64(i), events: EPOLLIN.rawValue)
        }
        port = boundPort
        let box = Unmanaged.passRetained(self)
        var t = pthread_t()
        guard pthread_create(&t, nil, { arg in
            let s = Unmanaged<HTTPServer>.fromOpaque(arg!).takeRetainedValue()
            s.loop()
            return nil
        }, box.toOpaque()) == 0 else { throw .system("cannot start the event loop thread") }
        thread = t
    }

    /// SIGTERM and SIGINT start a graceful shutdown, and a second one aborts it (the process's handlers
    /// for them are replaced).
    /// Call before or after `start`.
    public func shutdownOnSignals() {
        guard sigfd < 0 else { return }
        sigfd = eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC))
        signalEventFD = sigfd
        if epfd >= 0 { addToEpoll(sigfd, tag: Self.signalTag, events: EPOLLIN.rawValue) }
        let h: @convention(c) (Int32) -> Void = { _ in
            var one: UInt64 = 1
            _ = write(signalEventFD, &one, 8)
        }
        signal(SIGTERM, h)
        signal(SIGINT, h)
        // A parent may have started us with these blocked (the mask survives exec): unblock them.
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
    }

    /// Begins a graceful shutdown: stop accepting; idle connections close now, in-flight responses
    /// get `timeout` seconds (default: the config's).
    public func shutdown(timeout: Double? = nil) {
        state.withLock {
            if shutdownRequested == nil { shutdownRequested = monotonicNow() + (timeout ?? config.shutdownTimeout) }
        }
        draining.value = true
        wakeLoop()
    }

    /// Ends a shutdown now: responses still in flight are cut (their connections closed).
    public func abort() {
        state.withLock { shutdownRequested = monotonicNow() }
        draining.value = true
        wakeLoop()
    }

    /// Blocks until the event loop has exited.
    public func wait() {
        finishedCond.wait()
        finishedCond.signal()
    }

    // MARK: sockets

    private func listen(host: String, port: Int) throws(HTTPServerError) -> Int32 {
        let v6 = host.contains(":")
        let fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .bind(host, port, String(cString: strerror(errno))) }
        var one: Int32 = 1, zero: Int32 = 0
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, 4)
        var rc: Int32
        if v6 {
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &zero, 4)   // "::" also accepts IPv4
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6)
            a.sin6_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET6, host, &a.sin6_addr) == 1 else { close(fd); throw .bind(host, port, "not an IPv6 address") }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET)
            a.sin_port = UInt16(port).bigEndian
            guard inet_pton(AF_INET, host, &a.sin_addr) == 1 else { close(fd); throw .bind(host, port, "not an IPv4 address") }
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        guard rc == 0, Glibc.listen(fd, 1024) == 0 else {
            let e = String(cString: strerror(errno))
            close(fd)
            throw .bind(host, port, e)
        }
        return fd
    }

    private static func localPort(_ fd: Int32) -> Int {
        var a = sockaddr_storage()
        var len = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        if a.ss_family == sa_family_t(AF_INET6) {
            return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) } }
        }
        return withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) } }
    }

    private func addToEpoll(_ fd: Int32, tag: UInt64, events: UInt32) {
        var ev = epoll_event()
        ev.events = events
        ev.data.u64 = tag
        epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev)
    }

    private func modifyEpoll(_ c: Connection) {
        var ev = epoll_event()
        ev.events = EPOLLRDHUP.rawValue | (c.readingPaused ? 0 : EPOLLIN.rawValue) | (c.writeInterest ? EPOLLOUT.rawValue : 0)
        ev.data.u64 = UInt64(c.id) + 16
        epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev)
    }

    private func wakeLoop() {
        var one: UInt64 = 1
        _ = write(wakefd, &one, 8)
    }

    // MARK: the loop

    private func loop() {
        loopThread = pthread_self()
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        var lastTick = monotonicNow()
        var buf = [UInt8](repeating: 0, count: 64 * 1024)
        var draining = false
        while true {
            let n = epoll_wait(epfd, &events, Int32(events.count), 100)
            let now = monotonicNow()
            if n > 0 {
                for i in 0..<Int(n) {
                    let tag = events[i].data.u64, ev = events[i].events
                    if tag == Self.wakeTag || tag == Self.signalTag {
                        var v: UInt64 = 0
                        _ = read(tag == Self.wakeTag ? wakefd : sigfd, &v, 8)
                        if tag == Self.signalTag {
                            // The first signal drains; a second (or two at once) cuts what is left now.
                            if v >= 2 || state.withLock({ shutdownRequested }) != nil { abort() } else { shutdown() }
                        }
                    } else if tag >= Self.listenerBase {
                        acceptAll(listeners[Int(tag - Self.listenerBase)], now: now)
                    } else if let c = connections[Int(tag - 16)] {
                        if ev & (EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue) != 0 {
                            readFrom(c, buffer: &buf, now: now)
                        }
                        if ev & EPOLLOUT.rawValue != 0, connections[c.id] != nil {
                            if c.ssl != nil { readFrom(c, buffer: &buf, now: now) }   // a handshake may want to write
                            if connections[c.id] != nil { flush(c) }
                        }
                    }
                }
            }
            let ids: Set<Int> = state.withLock { defer { dirty = [] }; return dirty }
            for id in ids { if let c = connections[id] { serviceOutput(c, now: now) } }
            if now - lastTick >= 0.25 {
                lastTick = now
                for c in Array(connections.values) { apply(c.machine.tick(now: now), to: c, now: now) }
            }
            if let deadline = state.withLock({ shutdownRequested }) {
                if !draining {
                    draining = true
                    for fd in listeners { epoll_ctl(epfd, EPOLL_CTL_DEL, fd, nil); close(fd) }
                    listeners = []
                }
                for c in Array(connections.values) { apply(c.machine.shutdown(), to: c, now: now) }
                if connections.isEmpty || now >= deadline {
                    for c in Array(connections.values) { teardown(c) }
                    break
                }
            }
        }
        close(epfd); close(wakefd)
        if sigfd >= 0 { close(sigfd) }
        state.withLock { finished = true }
        finishedCond.signal()
    }

    private func acceptAll(_ lfd: Int32, now: Double) {
        while true {
            let fd = accept4(lfd, nil, nil, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            if fd < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return   // EAGAIN, or EMFILE: try again on the next readiness
            }
            var one: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, 4)
            if connections.count >= config.limits.maxConnections {
                // Over the cap: answer 503 without reading, never stall the accept loop.
                let r = HTTPResponse.error(503, "server is at its connection limit; retry later", type: "server_error",
                                           headers: HTTPHeaders([(RequestID.header, RequestID.generate())]))
                let bytes = HTTPResponse.head(status: 503, headers: r.headers, contentLength: r.body.count, keepAlive: false) + r.body
                _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT)) }
                shutdownWrite(fd)
                close(fd)
                continue
            }
            let id = nextID
            nextID += 1
            let c = Connection(fd: fd, id: id, machine: HTTPConnectionMachine(limits: config.limits, now: now),
                               maxPending: config.limits.maxPendingWriteBytes) { [weak self] id in self?.markDirty(id) }
            if let tls {
                guard let ssl = tls.session(fd: fd) else { close(fd); continue }
                c.ssl = ssl
            }
            connections[id] = c
            addToEpoll(fd, tag: UInt64(id) + 16, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
        }
    }

    private func shutdownWrite(_ fd: Int32) { Glibc.shutdown(fd, Int32(SHUT_WR)) }

    private func markDirty(_ id: Int) {
        state.withLock { _ = dirty.insert(id) }
        // On the loop thread itself the dirty set is drained before the next epoll_wait: no wake-up needed.
        if let t = loopThread, pthread_equal(t, pthread_self()) != 0 { return }
        wakeLoop()
    }

    private func readFrom(_ c: Connection, buffer: inout [UInt8], now: Double) {
        while connections[c.id] != nil && !c.readingPaused {
            if let ssl = c.ssl {
                let n = buffer.withUnsafeMutableBytes { SSL_read(ssl, $0.baseAddress, Int32($0.count)) }
                if n > 0 {
                    apply(c.machine.received(Array(buffer[0..<Int(n)]), now: now), to: c, now: now)
                    continue
                }
                switch SSL_get_error(ssl, n) {
                case SSL_ERROR_WANT_READ:
                    return
                case SSL_ERROR_WANT_WRITE:
                    if !c.writeInterest { c.writeInterest = true; modifyEpoll(c) }
                    return
                default:
                    teardown(c)   // closed, or a failed handshake (e.g. plain HTTP on the TLS port)
                    return
                }
            }
            let n = buffer.withUnsafeMutableBytes { recv(c.fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if n > 0 {
                apply(c.machine.received(Array(buffer[0..<n]), now: now), to: c, now: now)
                if n < buffer.count { return }
                continue
            }
            if n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) { return }
            if n < 0 && errno == EINTR { continue }
            teardown(c)   // EOF or error: the client is gone (in-flight handlers see isClosed)
            return
        }
    }

    private func apply(_ actions: [HTTPConnectionMachine.Action], to c: Connection, now: Double) {
        for a in actions {
            guard connections[c.id] != nil else { return }
            switch a {
            case let .write(bytes):
                c.enqueue(bytes, finished: nil)
            case let .dispatch(req):
                dispatch(req, on: c)
            case .closeAfterWrites:
                c.closeAfterFlush = true
                flush(c)
            case let .pauseReading(p):
                c.readingPaused = p
                modifyEpoll(c)
            }
        }
    }

    private func dispatch(_ request: HTTPRequest, on c: Connection) {
        var req = request
        req.id = RequestID.accept(req.headers[RequestID.header])
        var common = HTTPHeaders([(RequestID.header, req.id)])
        for (n, v) in config.cors?.responseHeaders(req) ?? [] { common.add(n, v) }
        let writer = HTTPResponseWriter(connection: c, request: req, keepAlive: req.keepAlive, draining: draining, limits: config.limits,
                                        commonHeaders: common)
        if let preflight = config.cors?.preflight(req) {
            writer.respond(preflight)
            return
        }
        let encodings = req.headers.tokens("content-encoding")
        if !encodings.isEmpty {
            guard encodings == ["gzip"] || encodings == ["x-gzip"] else {
                writer.respond(.error(415, "unsupported Content-Encoding '\(encodings.joined(separator: ", "))' (gzip only)"))
                return
            }
            do {
                req.body = try Gzip.decompress(req.body, limit: config.limits.maxBodyBytes)
            } catch .tooLarge {
                writer.respond(.error(413, "request body too large after gzip decompression"))
                return
            } catch {
                writer.respond(.error(400, "request body is not valid gzip"))
                return
            }
        }
        if runsInline(req) {
            handler(req, writer)
        } else {
            let handler = self.handler
            let r = req
            handlerQueue.async { handler(r, writer) }
        }
    }

    /// After handler output arrived: write it, and move on when the response finished.
    private func serviceOutput(_ c: Connection, now: Double) {
        flush(c)
        guard connections[c.id] != nil else { return }
        if let keepAlive = c.takeFinishedResponse() {
            apply(c.machine.responseFinished(keepAlive: keepAlive, now: now), to: c, now: now)
        }
    }

    private func flush(_ c: Connection) {
        switch c.flush() {
        case .error:
            teardown(c)
        case .pending:
            if !c.writeInterest { c.writeInterest = true; modifyEpoll(c) }
        case .flushed:
            if c.writeInterest { c.writeInterest = false; modifyEpoll(c) }
            if c.closeAfterFlush { teardown(c) }
        }
    }

    private func teardown(_ c: Connection) {
        guard connections.removeValue(forKey: c.id) != nil else { return }
        epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nil)
        if let ssl = c.ssl { SSL_free(ssl); c.ssl = nil }
        close(c.fd)
        c.markClosed()
    }
}

/// A boolean shared across threads.
final class Flag: @unchecked Sendable {
    private let m = Mutex()
    private var v = false
    var value: Bool {
        get { m.withLock { v } }
        set { m.withLock { v = newValue } }
    }
}

/// A counting semaphore on a mutex and condition variable.
final class Semaphore: @unchecked Sendable {
    private var m = pthread_mutex_t(), cv = pthread_cond_t()
    private var count = 0
    init() { pthread_mutex_init(&m, nil); pthread_cond_init(&cv, nil) }
    func signal() { pthread_mutex_lock(&m); count += 1; pthread_cond_signal(&cv); pthread_mutex_unlock(&m) }
    func wait() {
        pthread_mutex_lock(&m)
        while count == 0 { pthread_cond_wait(&cv, &m) }
        count -= 1
        pthread_mutex_unlock(&m)
    }

    /// Waits at most `seconds`; false when the time ran out first (tests: a regression fails, not hangs).
    func wait(seconds: Double) -> Bool {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        let ns = Int(now.tv_nsec) + Int(seconds.truncatingRemainder(dividingBy: 1) * 1e9)
        var deadline = timespec(tv_sec: now.tv_sec + Int(seconds) + ns / 1_000_000_000, tv_nsec: ns % 1_000_000_000)
        pthread_mutex_lock(&m)
        defer { pthread_mutex_unlock(&m) }
        while count == 0 {
            if pthread_cond_timedwait(&cv, &m, &deadline) != 0 && count == 0 { return false }
        }
        count -= 1
        return true
    }
}
