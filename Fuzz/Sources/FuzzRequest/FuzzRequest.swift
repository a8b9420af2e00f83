// Feeds arbitrary bytes as the JSON body of a completions (first byte even), chat (odd) or responses
// (a multiple of 3) request to the request decoders: field validation, the order-keeping re-parse of
// messages, tools and response formats. Any trap or sanitizer report is a bug; every outcome must be a
// request or a 4xx error.
import Server

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 1 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var limits = CompletionRequest.Limits()
    limits.vocabSize = 1000
    let body = Array(bytes.dropFirst())
    do throws(APIError) {
        if bytes[0] % 3 == 0 { _ = try CompletionRequest(responses: body, limits: limits) }
        else { _ = try CompletionRequest(json: body, limits: limits, chat: bytes[0] % 2 == 1) }
    } catch {
        if error.status < 400 || error.status >= 500 { fatalError("a request error with status \(error.status)") }
    }
    return 0
}

@_cdecl("FuzzRequest_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
