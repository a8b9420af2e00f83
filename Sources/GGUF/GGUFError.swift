// Typed errors for reading GGUF files; every message names the problem and where it was found.

/// Why a GGUF file could not be read. Never a crash: every malformed input maps to one of these.
public enum GGUFError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case badMagic(found: UInt32)
    case unsupportedVersion(UInt32)
    case truncated(what: String, offset: Int)
    case invalidValueType(UInt32, key: String)
    case arrayNestedTooDeep(key: String, limit: Int)
    case arrayTooLong(key: String, count: UInt64, bytesLeft: Int)
    case unknownTensorType(UInt32, tensor: String)
    case badTensorShape(tensor: String, reason: String)
    case tensorOutOfBounds(tensor: String, end: Int, fileSize: Int)
    case misalignedTensor(tensor: String, offset: UInt64, alignment: Int)
    case badAlignment(Int)
    case missingKey(String)
    case wrongKeyType(key: String, expected: String)
    case missingTensor(String)
    case tensorShapeMismatch(tensor: String, expected: [Int], found: [Int])
    case unsupportedArchitecture(String)

    public var description: String {
        switch self {
        case let .cannotOpen(path, reason): return "cannot open model file \(path): \(reason)"
        case let .badMagic(found): return "not a GGUF file (magic 0x\(String(found, radix: 16)), expected 'GGUF')"
        case let .unsupportedVersion(v): return "unsupported GGUF version \(v) (supported: 2, 3)"
        case let .truncated(what, offset): return "file truncated while reading \(what) at byte \(offset)"
        case let .invalidValueType(t, key): return "invalid metadata value type \(t) for key '\(key)'"
        case let .arrayNestedTooDeep(key, limit): return "metadata key '\(key)' nests arrays more than \(limit) deep"
        case let .arrayTooLong(key, count, left):
            return "metadata array '\(key)' claims \(count) elements, more than the \(left) bytes left in the file can hold"
        case let .unknownTensorType(t, tensor): return "tensor '\(tensor)' has unknown or unsupported type \(t)"
        case let .badTensorShape(tensor, reason): return "tensor '\(tensor)' has a bad shape: \(reason)"
        case let .tensorOutOfBounds(tensor, end, size):
            return "tensor '\(tensor)' data ends at byte \(end), past the end of the file (\(size) bytes)"
        case let .misalignedTensor(tensor, offset, a):
            return "tensor '\(tensor)' data offset \(offset) is not a multiple of the file's alignment \(a)"
        case let .badAlignment(a): return "general.alignment \(a) is not a power of two"
        case let .missingKey(k): return "missing metadata key '\(k)'"
        case let .wrongKeyType(k, expected): return "metadata key '\(k)' is not \(expected)"
        case let .missingTensor(n): return "missing tensor '\(n)'"
        case let .tensorShapeMismatch(n, e, f): return "tensor '\(n)' has shape \(f), expected \(e)"
        case let .unsupportedArchitecture(a): return "unsupported model architecture '\(a)' (supported: gemma3, llama)"
        }
    }
}
