// A bounds-checked cursor over the bytes of a GGUF header: every read checks the remaining length,
// so a truncated or corrupted file produces a GGUFError, never a read outside the mapping.

struct GGUFReader {
    /// How deep metadata arrays may nest (an array at the top is depth 1).
    static let maxArrayDepth = 8

    let base: UnsafeRawPointer
    let size: Int
    var offset: Int = 0

    init(base: UnsafeRawPointer, size: Int) {
        self.base = base
        self.size = size
    }

    mutating func need(_ n: Int, _ what: @autoclosure () -> String) throws(GGUFError) {
        if n < 0 || n > size - offset { throw .truncated(what: what(), offset: offset) }
    }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ what: @autoclosure () -> String) throws(GGUFError) -> T {
        try need(MemoryLayout<T>.size, what())
        // GGUF fields are packed, hence unaligned loads; the file is little-endian.
        let v = base.loadUnaligned(fromByteOffset: offset, as: T.self)
        offset += MemoryLayout<T>.size
        return T(littleEndian: v)
    }

    mutating func readFloat(_ what: @autoclosure () -> String) throws(GGUFError) -> Float {
        Float(bitPattern: try read(UInt32.self, what()))
    }

    mutating func readDouble(_ what: @autoclosure () -> String) throws(GGUFError) -> Double {
        Double(bitPattern: try read(UInt64.self, what()))
    }

    mutating func readString(_ what: @autoclosure () -> String) throws(GGUFError) -> String {
        let n = try read(UInt64.self, what())
        guard n <= UInt64(size - offset) else { throw .truncated(what: what(), offset: offset) }
        let bytes = UnsafeRawBufferPointer(start: base + offset, count: Int(n))
        offset += Int(n)
        // Invalid UTF-8 is repaired (U+FFFD) rather than rejected, as llama.cpp does not validate either.
        return String(decoding: bytes, as: UTF8.self)
    }

    mutating func readValue(kind raw: UInt32, key: String, depth: Int = 0) throws(GGUFError) -> GGUFValue {
        guard let kind = GGUFValue.Kind(rawValue: raw) else { throw .invalidValueType(raw, key: key) }
        switch kind {
        case .uint8: return .uint8(try read(UInt8.self, key))
        case .int8: return .int8(try read(Int8.self, key))
        case .uint16: return .uint16(try read(UInt16.self, key))
        case .int16: return .int16(try read(Int16.self, key))
        case .uint32: return .uint32(try read(UInt32.self, key))
        case .int32: return .int32(try read(Int32.self, key))
        case .uint64: return .uint64(try read(UInt64.self, key))
        case .int64: return .int64(try read(Int64.self, key))
        case .float32: return .float32(try readFloat(key))
        case .float64: return .float64(try readDouble(key))
        case .bool: return .bool(try read(UInt8.self, key) != 0)
        case .string: return .string(try readString(key))
        case .array:
            // Arrays of arrays (which llama.cpp refuses) are read to a fixed depth, so the recursion is bounded.
            guard depth < Self.maxArrayDepth else { throw .arrayNestedTooDeep(key: key, limit: Self.maxArrayDepth) }
            let elemKind = try read(UInt32.self, key)
            let count = try read(UInt64.self, key)
            // Every element takes at least its smallest encoding: a count the rest of the file cannot hold is
            // a lie, refused before anything is allocated for it.
            let least = GGUFValue.Kind(rawValue: elemKind)?.minimumBytes ?? 1
            guard count <= UInt64((size - offset) / least) else {
                throw .arrayTooLong(key: key, count: count, bytesLeft: size - offset)
            }
            var out: [GGUFValue] = []
            out.reserveCapacity(Int(count))
            for _ in 0..<Int(count) { out.append(try readValue(kind: elemKind, key: key, depth: depth + 1)) }
            return .array(out)
        }
    }
}
