// Request ids: the client's `X-Request-Id` when it is a sane token, else a fresh random one. Every
// response to a parsed request carries the id back and the server's log line for the request names it,
// so one id follows a request through a proxy, the server and the client.

public enum RequestID {
    public static let header = "X-Request-Id"

    /// The client's id when it is 1...128 visible ASCII characters (no spaces, no controls), else a new one.
    public static func accept(_ value: String?) -> String {
        if let v = value, isSane(v) { return v }
        return generate()
    }

    /// 1...128 bytes, each visible ASCII (0x21...0x7E): safe to echo in a header and print in a log line.
    public static func isSane(_ s: String) -> Bool {
        let u = s.utf8
        return (1...128).contains(u.count) && u.allSatisfy { (0x21...0x7E).contains($0) }
    }

    /// 16 random bytes as 32 lowercase hex digits.
    public static func generate() -> String {
        var g = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(32)
        for _ in 0..<2 {
            var v = g.next() as UInt64
            for _ in 0..<16 { out.append(digits[Int(v & 0xF)]); v >>= 4 }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
