// HTTPS: a throwaway self-signed certificate from the `openssl` command; curl and Python's ssl module
// as clients; plain HTTP on the TLS port closes only that connection.
import Foundation
import TestSupport
import Testing
@testable import HTTP

func run(_ args: [String], input: String? = nil) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
}

func selfSignedCertificate() throws -> TLSConfig {
    let dir = ScratchFiles.path("tls")
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let r = try run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                     "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem"])
    #expect(r.status == 0, "\(r.err)")
    return TLSConfig(certificatePath: dir + "/cert.pem", privateKeyPath: dir + "/key.pem")
}

@Suite(.serialized) struct TLSTests {
    func server() throws -> HTTPServer {
        var r = HTTPRouter()
        r.add("GET", "/health") { _, w in w.respond(.json(200, "{\"status\":\"ok\"}")) }
        r.add("POST", "/echo") { req, w in w.respond(HTTPResponse(status: 200, body: req.body)) }
        let s = HTTPServer(config: HTTPServerConfig(hosts: ["127.0.0.1"], port: 0, tls: try selfSignedCertificate()), handler: r.handler)
        try s.start()
        return s
    }

    @Test func curlOverTLSWithALPN() throws {
        let s = try server(); defer { s.shutdown(timeout: 1); s.wait() }
        let r = try run(["curl", "-sk", "-v", "--http1.1", "https://127.0.0.1:\(s.port)/health"])
        #expect(r.status == 0 && r.out == "{\"status\":\"ok\"}")
        #expect(r.err.contains("ALPN") && r.err.contains("http/1.1"))
        #expect(r.err.contains("TLSv1.3"))
        let tls12 = try run(["curl", "-sk", "--tlsv1.2", "--tls-max", "1.2", "https://127.0.0.1:\(s.port)/health"])
        #expect(tls12.status == 0 && tls12.out == "{\"status\":\"ok\"}")
        // TLS 1.1 offered by a client that really offers it (Python, security level 0): the refusal must
        // be the server's (its protocol_version alert), not the client's own.
        let script = """
        import socket, ssl, warnings
        warnings.simplefilter("ignore")
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1; ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("DEFAULT@SECLEVEL=0")
        try:
            ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(s.port))), server_hostname="x")
            print("accepted")
        except ssl.SSLError as e:
            print("refused", e)
        """
        let old = try run(["python3", "-c", script])
        #expect(old.out.hasPrefix("refused") && old.out.uppercased().contains("ALERT_PROTOCOL_VERSION"), "\(old.out) \(old.err)")
    }

    /// TLS 1.2 offers only ECDHE with AES-GCM or ChaCha20-Poly1305: a client that offers nothing else
    /// gets it, a client offering only CBC or static-RSA suites is refused by the server (its
    /// handshake_failure alert; the client runs at security level 0 so the refusal is not its own).
    @Test func tls12CiphersAreForwardSecretAEADOnly() throws {
        let s = try server(); defer { s.shutdown(timeout: 1); s.wait() }
        func handshake(_ ciphers: String) throws -> String {
            let script = """
            import socket, ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
            ctx.maximum_version = ssl.TLSVersion.TLSv1_2
            ctx.set_ciphers("\(ciphers):@SECLEVEL=0")
            try:
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", \(s.port))), server_hostname="x")
                print("accepted", s.version(), s.cipher()[0])
            except ssl.SSLError as e:
                print("refused", e)
            """
            let r = try runPython(script)
            #expect(r.status == 0, "\(r.err)")
            return r.out
        }
        for good in ["ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-RSA-CHACHA20-POLY1305"] {
            #expect(try handshake(good).hasPrefix("accepted TLSv1.2 \(good)"))
        }
        for weak in ["AES128-SHA", "AES128-GCM-SHA256", "ECDHE-RSA-AES128-SHA", "ECDHE-RSA-AES256-SHA384", "DHE-RSA-AES128-GCM-SHA256"] {
            let out = try handshake(weak)
            #expect(out.hasPrefix("refused") && out.uppercased().contains("HANDSHAKE_FAILURE"), "\(weak): \(out)")
        }
    }

    @Test func pythonKeepAliveOverTLS() throws {
        let s = try server(); defer { s.shutdown(timeout: 1); s.wait() }
        let script = """
        import http.client, ssl
        ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
        c = http.client.HTTPSConnection("127.0.0.1", \(s.port), context=ctx, timeout=5)
        for body in ["one", "two" * 10000]:
            c.request("POST", "/echo", body=body)
            r = c.getresponse(); data = r.read().decode()
            assert r.status == 200 and data == body, (r.status, len(data))
        print("ok", c.sock.version())
        """
        let r = try run(["python3", "-c", script])
        #expect(r.status == 0, "\(r.err)")
        #expect(r.out.hasPrefix("ok TLSv1.3"))
    }

    @Test func plainHTTPOnTheTLSPortClosesOnlyThatConnection() throws {
        let s = try server(); defer { s.shutdown(timeout: 1); s.wait() }
        let c = try TestClient(port: s.port)
        c.send("GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(c.waitForClose())
        let bad = try TestClient(port: s.port)
        bad.send([0x16, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5])   // a broken handshake record
        #expect(bad.waitForClose())
        let r = try run(["curl", "-sk", "https://127.0.0.1:\(s.port)/health"])
        #expect(r.out == "{\"status\":\"ok\"}")
    }
}
