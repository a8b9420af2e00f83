// A blocking loopback client for socket-level tests, with receive timeouts so a test never hangs.
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Response header fields with case-insensitive lookup.
public struct TestHeaders: Sendable {
    public var fields: [(String, String)] = []
    public subscript(_ name: String) -> String? { fields.first { $0.0.lowercased() == name.lowercased() }?.1 }
    mutating func add(_ n: String, _ v: String) { fields.append((n, v)) }
}

public final class TestClient {
    public let fd: Int32
    public var buffer: [UInt8] = []

    public init(port: Int, host: String = "127.0.0.1", timeout: Double = 5) throws {
        let v6 = host.contains(":")
        fd = socket(v6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var rc: Int32
        if v6 {
            var a = sockaddr_in6()
            a.sin6_family = sa_family_t(AF_INET6); a.sin6_port = UInt16(port).bigEndian
            inet_pton(AF_INET6, host, &a.sin6_addr)
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) } }
        } else {
            var a = sockaddr_in()
            a.sin_family = sa_family_t(AF_INET); a.sin_port = UInt16(port).bigEndian
            inet_pton(AF_INET, host, &a.sin_addr)
            rc = withUnsafePointer(to: &a) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        }
        if rc != 0 { close(fd); throw POSIXError(.ECONNREFUSED) }
    }

    deinit { close(fd) }

    public func send(_ s: String) { send(Array(s.utf8)) }
    public func send(_ b: [UInt8]) { _ = b.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } }

    /// Reads more bytes; false on EOF, timeout or error.
    @discardableResult
    public func fill() -> Bool {
        var tmp = [UInt8](repeating: 0, count: 65536)
        let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n <= 0 { return false }
        buffer += tmp[0..<n]
        return true
    }

    /// True if the server closed the connection (EOF) within the timeout.
    public func waitForClose() -> Bool {
        var tmp = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = tmp.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { return true }
            if n < 0 { return errno == ECONNRESET }
            buffer += tmp[0..<n]
        }
    }

    public struct Response { public let status: Int; public let headers: TestHeaders; public let body: [UInt8]; public var text: String { String(decoding: body, as: UTF8.self) } }

    /// Reads one response (Content-Length, chunked, or until close), `head` true for HEAD requests.
    public func readResponse(head: Bool = false) -> Response? {
        func findHeaderEnd() -> Int? {
            guard buffer.count >= 4 else { return nil }
            for i in 0...(buffer.count - 4) where buffer[i] == 13 && buffer[i + 1] == 10 && buffer[i + 2] == 13 && buffer[i + 3] == 10 { return i }
            return nil
        }
        var end = findHeaderEnd()
        while end == nil { guard fill() else { return nil }; end = findHeaderEnd() }
        let headText = String(decoding: buffer[0..<end!], as: UTF8.self)
        buffer.removeFirst(end! + 4)
        var lines = headText.components(separatedBy: "\r\n")
        let statusLine = lines.removeFirst().split(separator: " ")
        let status = Int(statusLine[1])!
        var headers = TestHeaders()
        for l in lines { let p = l.split(separator: ":", maxSplits: 1); headers.add(String(p[0]), String(p[1]).trimmingCharacters(in: .whitespaces)) }
        if status == 100 { return Response(status: 100, headers: headers, body: []) }
        if head || status == 204 || status == 304 { return Response(status: status, headers: headers, body: []) }
        var body: [UInt8] = []
        if let cl = headers["content-length"].flatMap({ Int($0) }) {
            while buffer.count < cl { guard fill() else { return nil } }
            body = Array(buffer[0..<cl]); buffer.removeFirst(cl)
        } else if headers["transfer-encoding"] == "chunked" {
            while true {
                var lineEnd: Int?
                while lineEnd == nil {
                    lineEnd = buffer.indices.dropLast().first { buffer[$0] == 13 && buffer[$0 + 1] == 10 }
                    if lineEnd == nil { guard fill() else { return nil } }
                }
                let size = Int(String(decoding: buffer[0..<lineEnd!], as: UTF8.self), radix: 16)!
                buffer.removeFirst(lineEnd! + 2)
                while buffer.count < size + 2 { guard fill() else { return nil } }
                body += buffer[0..<size]; buffer.removeFirst(size + 2)
                if size == 0 { break }
            }
        } else {
            while fill() {}
            body = buffer; buffer = []
        }
        return Response(status: status, headers: headers, body: body)
    }
}


extension TestClient {
    /// Sends a request with an optional JSON body and reads the response.
    public func request(_ method: String, _ path: String, json: String? = nil, headers: [String] = []) -> Response? {
        var h = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
        for x in headers { h += x + "\r\n" }
        if let b = json { h += "Content-Type: application/json\r\nContent-Length: \(b.utf8.count)\r\n\r\n" + b } else { h += "\r\n" }
        send(h)
        return readResponse(head: method == "HEAD")
    }
}

/// Runs a Python script; its exit status, standard output and standard error.
public func runPython(_ script: String) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = ["python3", "-c", script]
    let out = Pipe(), err = Pipe()
    p.standardOutput = out; p.standardError = err
    try p.run()
    let o = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    let e = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    p.waitUntilExit()
    return (p.terminationStatus, o, e)
}
