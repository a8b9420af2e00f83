// zlib, with its init macros wrapped as functions Swift can call.
#include <zlib.h>
static inline int zebra_deflate_init_gzip(z_stream *s, int level) {
    return deflateInit2(s, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
}
static inline int zebra_inflate_init_gzip(z_stream *s) { return inflateInit2(s, 15 + 32); }
