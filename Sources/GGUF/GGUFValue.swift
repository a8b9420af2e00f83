// Metadata values of a GGUF file: every scalar type, strings, and (nested) arrays.

/// One metadata value. Arrays of numbers are kept typed; arrays of strings as `[String]`.
public indirect enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16)
    case uint32(UInt32), int32(Int32), uint64(UInt64), int64(Int64)
    case float32(Float), float64(Double), bool(Bool), string(String)
    case array([GGUFValue])

    /// Value type ids as stored in the file (gguf.h `enum gguf_type`).
    public enum Kind: UInt32, Sendable {
        case uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6
        case bool = 7, string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12

        /// The fewest bytes one value of this kind takes in a file: a string its u64 length, an array its
        /// element kind and count.
        var minimumBytes: Int {
            switch self {
            case .uint8, .int8, .bool: 1
            case .uint16, .int16: 2
            case .uint32, .int32, .float32: 4
            case .uint64, .int64, .float64, .string: 8
            case .array: 12
            }
        }
    }

    /// Any integer value as Int (nil for non-integers or out-of-range UInt64).
    public var int: Int? {
        switch self {
        case let .uint8(v): Int(v); case let .int8(v): Int(v)
        case let .uint16(v): Int(v); case let .int16(v): Int(v)
        case let .uint32(v): Int(v); case let .int32(v): Int(v)
        case let .uint64(v): Int(exactly: v); case let .int64(v): Int(v)
        default: nil
        }
    }

    public var double: Double? {
        switch self {
        case let .float32(v): Double(v); case let .float64(v): v
        default: int.map(Double.init)
        }
    }

    public var string: String? { if case let .string(s) = self { s } else { nil } }
    public var bool: Bool? { if case let .bool(b) = self { b } else { nil } }
    public var array: [GGUFValue]? { if case let .array(a) = self { a } else { nil } }
}
