// Feeds arbitrary bytes as a chat template (and, after a NUL, as the messages' JSON) to the Jinja
// parser and interpreter. Any trap or sanitizer report is a bug: a hostile template must always become
// an error or bounded output.
import Jinja

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = bytes.firstIndex(of: 0) ?? bytes.count
    let source = String(decoding: bytes[..<cut], as: UTF8.self)
    let json = cut < bytes.count ? String(decoding: bytes[(cut + 1)...], as: UTF8.self) : "[{\"role\": \"user\", \"content\": \"hi\"}]"
    var limits = JinjaLimits()
    limits.maxOutputBytes = 1 << 16
    limits.maxIterations = 10_000
    limits.maxDepth = 16
    let messages = (try? Value.parseJSON(json)) ?? .array([])
    guard let t = try? Template(source, limits: limits) else { return 0 }
    _ = try? t.render(["messages": messages, "bos_token": .string("<s>"), "eos_token": .string("</s>"),
                       "add_generation_prompt": .bool(true)])
    return 0
}

@_cdecl("FuzzJinja_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
