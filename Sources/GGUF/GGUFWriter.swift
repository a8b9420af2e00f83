// Writes GGUF v3 files: used by tests to build tiny synthetic models and corrupted copies.

public struct GGUFWriter {
    public struct Tensor {
        public let name: String
        public let dims: [Int]
        public let type: GGMLType
        public let bytes: [UInt8]
        public init(name: String, dims: [Int], type: GGMLType, bytes: [UInt8]) {
            self.name = name; self.dims = dims; self.type = type; self.bytes = bytes
        }
    }

    public var metadata: [(String, GGUFValue)] = []
    public var tensors: [Tensor] = []
    public var alignment = 32

    public init() {}

    public mutating func add(_ key: String, _ value: GGUFValue) { metadata.append((key, value)) }

    /// An F32 tensor from floats.
    public mutating func addF32(_ name: String, dims: [Int], _ values: [Float]) {
        precondition(values.count == dims.reduce(1, *))
        var b: [UInt8] = []
        b.reserveCapacity(values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { b += $0 } }
        tensors.append(Tensor(name: name, dims: dims, type: .f32, bytes: b))
    }

    public func serialize() -> [UInt8] {
        var out: [UInt8] = []
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { out += $0 } }
        func putString(_ s: String) { put(UInt64(s.utf8.count)); out += Array(s.utf8) }
        func kind(_ v: GGUFValue) -> GGUFValue.Kind {
            switch v {
            case .uint8: .uint8; case .int8: .int8; case .uint16: .uint16; case .int16: .int16
            case .uint32: .uint32; case .int32: .int32; case .uint64: .uint64; case .int64: .int64
            case .float32: .float32; case .float64: .float64; case .bool: .bool; case .string: .string
            case .array: .array
            }
        }
        func putValue(_ v: GGUFValue) {
            switch v {
            case let .uint8(x): put(x); case let .int8(x): put(x)
            case let .uint16(x): put(x); case let .int16(x): put(x)
            case let .uint32(x): put(x); case let .int32(x): put(x)
            case let .uint64(x): put(x); case let .int64(x): put(x)
            case let .float32(x): put(x.bitPattern); case let .float64(x): put(x.bitPattern)
            case let .bool(x): put(UInt8(x ? 1 : 0)); case let .string(s): putString(s)
            case let .array(a):
                put((a.first.map(kind) ?? .uint8).rawValue)
                put(UInt64(a.count))
                for e in a { putValue(e) }
            }
        }
        put(UInt32(0x4655_4747))
        put(UInt32(3))
        put(UInt64(tensors.count))
        put(UInt64(metadata.count))
        for (k, v) in metadata { putString(k); put(kind(v).rawValue); putValue(v) }
        var offset = 0
        var offsets: [Int] = []
        for t in tensors {
            offsets.append(offset)
            offset += (t.bytes.count + alignment - 1) / alignment * alignment
        }
        for (t, off) in zip(tensors, offsets) {
            putString(t.name)
            put(UInt32(t.dims.count))
            for d in t.dims { put(UInt64(d)) }
            put(t.type.rawValue)
            put(UInt64(off))
        }
        while out.count % alignment != 0 { out.append(0) }
        for t in tensors {
            out += t.bytes
            while out.count % alignment != 0 { out.append(0) }
        }
        return out
    }
}
