// API keys: the bearer tokens that open every route but the public ones. Keys come from `--api-key`
// and from key files (one per line), so they can stay out of process listings and be rotated by
// serving the old and the new key side by side.
import Foundation

public struct APIKeys: Sendable {
    private let keys: [[UInt8]]

    public init(_ keys: [String]) { self.keys = keys.map { Array($0.utf8) } }

    /// No keys: every route is open.
    public var isEmpty: Bool { keys.isEmpty }
    public var count: Int { keys.count }

    /// Whether an `Authorization` field value is `Bearer <one of the keys>` (the scheme is
    /// case-insensitive, RFC 9110 11.1). Every key is compared, each without an early exit, so the time
    /// taken says neither which key was close nor how much of one a guess got right.
    public func accepts(authorization: String?) -> Bool {
        guard let value = authorization else { return false }
        let bytes = Array(value.utf8)
        guard bytes.count > 7, String(decoding: bytes[..<7], as: UTF8.self).lowercased() == "bearer " else { return false }
        let given = Array(bytes[7...])
        var match: UInt8 = 0
        for k in keys { match |= Self.equal(given, k) }
        return match == 1
    }

    /// 1 when `a` and `b` are equal, else 0, in time that depends only on their lengths.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> UInt8 {
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<max(a.count, b.count) { diff |= (i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0) }
        return diff == 0 ? 1 : 0
    }

    /// The keys in a key file's text: one per line, surrounding whitespace trimmed; blank lines and lines
    /// starting with `#` are skipped.
    public static func parse(_ text: String) -> [String] {
        text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
    }

    /// The keys in the file at `path`; an error that says why when it cannot be read or holds none (a
    /// server must not start open to everyone because its key file was missing).
    public static func load(path: String) throws(KeyFileError) -> [String] {
        let text: String
        do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
            throw .unreadable(path, (error as NSError).localizedDescription)
        }
        let keys = parse(text)
        guard !keys.isEmpty else { throw .noKeys(path) }
        return keys
    }

    public enum KeyFileError: Error, Equatable, CustomStringConvertible {
        case unreadable(String, String)
        case noKeys(String)
        public var description: String {
            switch self {
            case let .unreadable(path, why): "cannot read the API key file '\(path)': \(why)"
            case let .noKeys(path): "the API key file '\(path)' holds no key (one per line; blank lines and # comments are skipped)"
            }
        }
    }
}
