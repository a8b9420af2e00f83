// gzip for response bodies and gzip-encoded request bodies (zlib). Inflation is capped so that a
// small "zip bomb" cannot allocate more than the body limit.
import CZlib

enum Gzip {
    enum InflateError: Error { case invalid, tooLarge }

    static func compress(_ input: [UInt8], level: Int32 = 6) -> [UInt8]? {
        var s = z_stream()
        guard zebra_deflate_init_gzip(&s, level) == Z_OK else { return nil }
        defer { deflateEnd(&s) }
        var out = [UInt8](repeating: 0, count: Int(deflateBound(&s, uLong(input.count))) + 32)
        let rc: Int32 = input.withUnsafeBufferPointer { ib in
            out.withUnsafeMutableBufferPointer { ob in
                s.next_in = UnsafeMutablePointer(mutating: ib.baseAddress)
                s.avail_in = uInt(ib.count)
                s.next_out = ob.baseAddress
                s.avail_out = uInt(ob.count)
                return deflate(&s, Z_FINISH)
            }
        }
        guard rc == Z_STREAM_END else { return nil }
        out.removeLast(out.count - Int(s.total_out))
        return out
    }

    /// Inflates gzip (or zlib) data; throws `.tooLarge` past `limit` bytes of output.
    static func decompress(_ input: [UInt8], limit: Int) throws(InflateError) -> [UInt8] {
        var s = z_stream()
        guard zebra_inflate_init_gzip(&s) == Z_OK else { throw .invalid }
        defer { inflateEnd(&s) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var rc: Int32 = Z_OK
        input.withUnsafeBufferPointer { ib in
            s.next_in = UnsafeMutablePointer(mutating: ib.baseAddress)
            s.avail_in = uInt(ib.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { cb in
                    s.next_out = cb.baseAddress
                    s.avail_out = uInt(cb.count)
                    rc = inflate(&s, Z_NO_FLUSH)
                }
                let produced = chunk.count - Int(s.avail_out)
                if out.count + produced > limit { rc = Z_MEM_ERROR; return }
                out += chunk[0..<produced]
            } while rc == Z_OK && (s.avail_in > 0 || s.avail_out == 0)
        }
        if rc == Z_MEM_ERROR { throw .tooLarge }
        guard rc == Z_STREAM_END else { throw .invalid }
        return out
    }
}
