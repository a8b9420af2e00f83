// OpenSSL 3 for the HTTP server's TLS, with the macros Swift cannot import wrapped as functions.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <string.h>

static inline int zebra_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return (int)SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline long zebra_ssl_ctx_set_options(SSL_CTX *ctx) {
    return (long)SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE);
}
static inline void zebra_ssl_ctx_set_partial_writes(SSL_CTX *ctx) {
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
}

/// ALPN: the server only speaks http/1.1; a client that offers ALPN without it gets no ALPN.
static int zebra_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                             const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    static const unsigned char h11[] = "http/1.1";
    for (unsigned int i = 0; i < inlen; ) {
        unsigned int n = in[i];
        if (i + 1 + n > inlen) break;
        if (n == 8 && memcmp(in + i + 1, h11, 8) == 0) { *out = in + i + 1; *outlen = 8; return SSL_TLSEXT_ERR_OK; }
        i += 1 + n;
    }
    return SSL_TLSEXT_ERR_NOACK;
}
static inline void zebra_ssl_ctx_set_alpn_http11(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, zebra_alpn_select, 0);
}
