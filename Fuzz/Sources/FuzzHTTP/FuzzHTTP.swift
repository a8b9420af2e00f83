// Feeds arbitrary bytes, split at a fuzzer-chosen point, to the HTTP parser and to the connection
// state machine. Any trap or sanitizer report is a bug: malformed input must always become an error.
import HTTP

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = HTTPLimits()
    limits.maxRequestLine = 256; limits.maxHeaderBytes = 512; limits.maxHeaderCount = 8; limits.maxBodyBytes = 1024
    let cut = Int(bytes[0]) % size
    var p = HTTPParser(limits: limits)
    var events = 0
    for part in [bytes[1..<max(1, cut)], bytes[max(1, cut)...]] {
        p.feed(part)
        while events < 10_000 {
            guard let e = try? p.next(), e != .needMore else { break }
            if case let .request(r) = e { precondition(r.body.count <= limits.maxBodyBytes) }
            events += 1
        }
    }
    var m = HTTPConnectionMachine(limits: limits, now: 0)
    _ = m.received(bytes, now: 1)
    _ = m.tick(now: 100)
    _ = m.responseFinished(keepAlive: true, now: 101)
    return 0
}

@_cdecl("FuzzHTTP_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
