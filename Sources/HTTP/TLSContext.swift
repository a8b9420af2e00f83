// TLS for the server (OpenSSL 3): TLS 1.2 and 1.3 only, forward-secret AEAD ciphers only, ALPN
// http/1.1, PEM certificate and key.
// Handshakes, reads and writes are non-blocking and driven by the same event loop (WANT_READ /
// WANT_WRITE map to epoll interest); a failed handshake closes that connection only.
import COpenSSL

public struct TLSConfig: Sendable {
    public var certificatePath: String
    public var privateKeyPath: String
    public init(certificatePath: String, privateKeyPath: String) {
        self.certificatePath = certificatePath; self.privateKeyPath = privateKeyPath
    }
}

final class TLSContext: @unchecked Sendable {
    let ctx: OpaquePointer

    /// TLS 1.2 cipher suites, in the server's order of preference: ECDHE key exchange (forward secrecy)
    /// with AES-GCM or ChaCha20-Poly1305, Mozilla's "intermediate" server configuration without its
    /// finite-field DHE suites. No CBC, RC4, 3DES, static-RSA key exchange or SHA-1 MACs. TLS 1.3 keeps
    /// OpenSSL's default suites, all AEAD: TLS_AES_256_GCM_SHA384, TLS_CHACHA20_POLY1305_SHA256,
    /// TLS_AES_128_GCM_SHA256.
    static let tls12Ciphers = ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                               "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                               "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305"].joined(separator: ":")

    init(_ config: TLSConfig) throws(HTTPServerError) {
        guard let c = SSL_CTX_new(TLS_server_method()) else { throw .system("TLS: cannot create a context: \(Self.lastError())") }
        ctx = c
        zebra_ssl_ctx_set_min_tls12(c)
        zebra_ssl_ctx_set_options(c)
        zebra_ssl_ctx_set_partial_writes(c)
        zebra_ssl_ctx_set_alpn_http11(c)
        guard SSL_CTX_set_cipher_list(c, Self.tls12Ciphers) == 1 else {
            SSL_CTX_free(c)
            throw .system("TLS: cannot set the cipher list: \(Self.lastError())")
        }
        guard SSL_CTX_use_certificate_chain_file(c, config.certificatePath) == 1 else {
            SSL_CTX_free(c)
            throw .system("TLS: cannot load certificate \(config.certificatePath): \(Self.lastError())")
        }
        guard SSL_CTX_use_PrivateKey_file(c, config.privateKeyPath, SSL_FILETYPE_PEM) == 1,
              SSL_CTX_check_private_key(c) == 1 else {
            SSL_CTX_free(c)
            throw .system("TLS: cannot load private key \(config.privateKeyPath): \(Self.lastError())")
        }
    }

    deinit { SSL_CTX_free(ctx) }

    /// A server-side session on a connected socket.
    func session(fd: Int32) -> OpaquePointer? {
        guard let ssl = SSL_new(ctx) else { return nil }
        SSL_set_fd(ssl, fd)
        SSL_set_accept_state(ssl)
        return ssl
    }

    static func lastError() -> String {
        let e = ERR_get_error()
        guard e != 0 else { return "unknown error" }
        var buf = [CChar](repeating: 0, count: 256)
        ERR_error_string_n(e, &buf, 256)
        return String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
