// Feeds arbitrary bytes as a GGUF model file: header, metadata and tensor directory. Model files are
// input too: anything but a clear error or a file that reads cleanly is a bug.
import GGUF

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    guard let f = try? GGUFFile(bytes: Array(UnsafeBufferPointer(start: data, count: size))) else { return 0 }
    // Everything a loader reads: metadata of each type, and each tensor's bytes.
    for k in f.keys { _ = try? f.string(k); _ = try? f.strings(k); _ = try? f.int(k); _ = try? f.float(k) }
    for t in f.tensors.values where t.elementCount > 0 && t.elementCount <= 1 << 20 { _ = f.row(t, t.rowCount - 1) }
    return 0
}

@_cdecl("FuzzGGUF_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
