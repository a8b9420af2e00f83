// Feeds arbitrary bytes as a response schema (JSON text up to a NUL) and, after it, as text for the
// compiled grammar to match, building token masks over a small vocabulary on the way. Schemas are
// request input: any trap or sanitizer report is a bug; every outcome must be an error or a bounded walk.
import Grammar

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(_ argc: UnsafeMutablePointer<Int32>,
                         _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
                         _ cb: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Int32

let pieces: [[UInt8]] = ["{", "}", "[", "]", "\"", ":", ",", "a", "ab", "\"a\"", "1", "-", "0.5", "e", "true", "null",
                         "\\", "\\u00e9", "é", " ", "\n"].map { Array($0.utf8) } + [[0xE6], [0x97], [0xA5], [0xF0, 0x9F], [0x98, 0x80]]
let trie = TokenTrie(pieces: pieces)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    guard let data, size > 0 else { return 0 }
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = bytes.firstIndex(of: 0) ?? bytes.count
    guard let schema = try? JSON.parse(bytes[..<cut], maxDepth: 64),
          let g = try? JSONSchema.compile(schema, maxElements: 20_000) else { return 0 }
    let m = GrammarMatcher(g)
    let c = GrammarConstraint(grammar: g, trie: trie, endTokens: [])
    var text = cut < bytes.count ? Array(bytes[(cut + 1)...]) : []
    text = Array(text.prefix(256))
    for (i, b) in text.enumerated() {
        if i % 16 == 0 { _ = c.mask(m) }
        if !m.accept([b]) { break }
    }
    _ = m.isAccepting
    return 0
}

@_cdecl("FuzzGrammar_main")
public func fuzzMain(_ argc: Int32, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
    var argc = argc
    var argv = argv
    return LLVMFuzzerRunDriver(&argc, &argv, fuzz)
}
