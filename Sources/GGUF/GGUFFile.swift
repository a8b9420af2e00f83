// A memory-mapped GGUF file (v2 and v3): metadata, the tensor directory, and tensor data pointers.
// Layout (ggml/docs/gguf.md): magic "GGUF", version u32, tensor count u64, kv count u64, the kvs,
// the tensor infos, then padding to `general.alignment` (default 32) and the tensor data.
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// One tensor's directory entry. `dims[0]` is the innermost (row) length, as in ggml.
public struct GGUFTensorInfo: Sendable {
    public let name: String
    public let dims: [Int]
    public let type: GGMLType
    /// Byte offset of the data from the start of the file.
    public let fileOffset: Int
    public let byteCount: Int
    public var elementCount: Int { dims.reduce(1, *) }
    /// Row length (innermost dimension) and number of rows.
    public var rowLength: Int { dims[0] }
    public var rowCount: Int { elementCount / dims[0] }
    public var rowBytes: Int { type.bytes(forElements: dims[0]) }
}

/// An opened, validated GGUF file. Immutable after init; the mapping lives as long as the object.
public final class GGUFFile: @unchecked Sendable {
    public let path: String
    public let version: UInt32
    public let metadata: [String: GGUFValue]
    /// Metadata keys in file order.
    public let keys: [String]
    public let tensors: [String: GGUFTensorInfo]
    public let tensorNames: [String]
    public let alignment: Int
    public let fileSize: Int
    private let base: UnsafeMutableRawPointer
    private let mapped: Bool

    /// Maps and parses `path`. Throws `GGUFError` for anything malformed.
    public convenience init(path: String) throws(GGUFError) {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw .cannotOpen(path: path, reason: String(cString: strerror(errno))) }
        if (st.st_mode & S_IFMT) == S_IFDIR { throw .cannotOpen(path: path, reason: "is a directory") }
        let size = Int(st.st_size)
        guard size > 0 else { throw .truncated(what: "magic", offset: 0) }
        guard let p = mmap(nil, size, PROT_READ, MAP_PRIVATE, fd, 0), p != MAP_FAILED else {
            throw .cannotOpen(path: path, reason: "mmap failed: " + String(cString: strerror(errno)))
        }
        do {
            try self.init(path: path, base: p, size: size, mapped: true)
        } catch {
            munmap(p, size)
            throw error
        }
    }

    /// Drops the pages wholly inside `count` bytes at `p` (a tensor's data) from this process's
    /// memory, when the file is mapped: a later read faults them back in from the file. A no-op for
    /// an in-memory copy (dropping its pages would zero them).
    public func releasePages(_ p: UnsafeRawPointer, count: Int) {
        guard mapped else { return }
        let page = Int(sysconf(Int32(_SC_PAGESIZE)))
        let lo = (Int(bitPattern: p) + page - 1) / page * page, hi = (Int(bitPattern: p) + count) / page * page
        if hi > lo { _ = madvise(UnsafeMutableRawPointer(bitPattern: lo), hi - lo, 4) }  // MADV_DONTNEED
    }

    /// Parses an in-memory copy of a GGUF file (tests, fuzzing). The bytes are copied.
    public convenience init(bytes: [UInt8]) throws(GGUFError) {
        let p = UnsafeMutableRawPointer.allocate(byteCount: max(bytes.count, 1), alignment: 64)
        bytes.withUnsafeBytes { p.copyMemory(from: $0.baseAddress!, byteCount: bytes.count) }
        do {
            try self.init(path: "<memory>", base: p, size: bytes.count, mapped: false)
        } catch {
            p.deallocate()
            throw error
        }
    }

    private init(path: String, base: UnsafeMutableRawPointer, size: Int, mapped: Bool) throws(GGUFError) {
        self.path = path
        self.base = base
        self.fileSize = size
        self.mapped = mapped
        var r = GGUFReader(base: UnsafeRawPointer(base), size: size)
        let magic = try r.read(UInt32.self, "magic")
        guard magic == 0x4655_4747 else { throw .badMagic(found: magic) }  // "GGUF" little-endian
        let version = try r.read(UInt32.self, "version")
        guard version == 2 || version == 3 else { throw .unsupportedVersion(version) }
        self.version = version
        let nTensors = try r.read(UInt64.self, "tensor count")
        let nKV = try r.read(UInt64.self, "metadata count")
        // Each kv and tensor info takes more than 8 bytes: larger counts cannot fit in the file.
        guard nKV <= UInt64(size / 8), nTensors <= UInt64(size / 8) else {
            throw .truncated(what: "header counts (\(nKV) keys, \(nTensors) tensors)", offset: r.offset)
        }
        var md: [String: GGUFValue] = [:]
        var keys: [String] = []
        for _ in 0..<Int(nKV) {
            let key = try r.readString("metadata key")
            let kind = try r.read(UInt32.self, "type of '\(key)'")
            md[key] = try r.readValue(kind: kind, key: key)
            keys.append(key)
        }
        self.metadata = md
        self.keys = keys
        var align = 32
        if let a = md["general.alignment"] {
            guard let v = a.int, v > 0, v & (v - 1) == 0 else { throw .badAlignment(a.int ?? -1) }
            align = v
        }
        self.alignment = align

        struct Raw { let name: String; let dims: [Int]; let type: GGMLType; let offset: UInt64 }
        var raws: [Raw] = []
        for _ in 0..<Int(nTensors) {
            let name = try r.readString("tensor name")
            let nd = try r.read(UInt32.self, "dims of '\(name)'")
            guard nd >= 1, nd <= 4 else { throw .badTensorShape(tensor: name, reason: "\(nd) dimensions (1-4 allowed)") }
            var dims: [Int] = []
            for _ in 0..<nd {
                let d = try r.read(UInt64.self, "dims of '\(name)'")
                guard d >= 1, d <= UInt64(Int32.max) else { throw .badTensorShape(tensor: name, reason: "dimension \(d)") }
                dims.append(Int(d))
            }
            let t = try r.read(UInt32.self, "type of '\(name)'")
            guard let type = GGMLType(rawValue: t) else { throw .unknownTensorType(t, tensor: name) }
            let off = try r.read(UInt64.self, "offset of '\(name)'")
            raws.append(Raw(name: name, dims: dims, type: type, offset: off))
        }
        let dataStart = (r.offset + align - 1) / align * align
        var tensors: [String: GGUFTensorInfo] = [:]
        var names: [String] = []
        for raw in raws {
            guard raw.dims[0] % raw.type.blockElements == 0 else {
                throw .badTensorShape(tensor: raw.name, reason: "row length \(raw.dims[0]) is not a multiple of \(raw.type.blockElements) for \(raw.type.name)")
            }
            var count = 1
            for d in raw.dims {
                let (m, o) = count.multipliedReportingOverflow(by: d)
                guard !o, m <= Int(Int32.max) * 64 else { throw .badTensorShape(tensor: raw.name, reason: "too many elements") }
                count = m
            }
            let bytes = count / raw.type.blockElements * raw.type.blockBytes
            guard raw.offset <= UInt64(size) else { throw .tensorOutOfBounds(tensor: raw.name, end: Int.max, fileSize: size) }
            let start = dataStart + Int(raw.offset)
            let (end, o) = start.addingReportingOverflow(bytes)
            guard !o, end <= size else { throw .tensorOutOfBounds(tensor: raw.name, end: o ? Int.max : end, fileSize: size) }
            // Tensor data starts at a multiple of the alignment within the (aligned) data section (gguf.md): the
            // kernels read it through typed pointers (floats, ggml block structs). llama.cpp goes further and wants
            // the tensors packed in directory order; overlaps and gaps only alias or skip read-only bytes, so they
            // are not refused here.
            guard raw.offset % UInt64(align) == 0 else {
                throw .misalignedTensor(tensor: raw.name, offset: raw.offset, alignment: align)
            }
            guard tensors[raw.name] == nil else { throw .badTensorShape(tensor: raw.name, reason: "duplicate tensor name") }
            tensors[raw.name] = GGUFTensorInfo(name: raw.name, dims: raw.dims, type: raw.type, fileOffset: start, byteCount: bytes)
            names.append(raw.name)
        }
        self.tensors = tensors
        self.tensorNames = names
    }

    deinit {
        if mapped { munmap(base, fileSize) } else { base.deallocate() }
    }

    /// Pointer to a tensor's data; valid for the lifetime of this object.
    public func data(_ t: GGUFTensorInfo) -> UnsafeRawPointer { UnsafeRawPointer(base + t.fileOffset) }

    public func tensor(_ name: String) throws(GGUFError) -> GGUFTensorInfo {
        guard let t = tensors[name] else { throw .missingTensor(name) }
        return t
    }

    /// All elements of a tensor as Float (dequantized).
    public func floats(_ t: GGUFTensorInfo) -> [Float] {
        [Float](unsafeUninitializedCapacity: t.elementCount) { buf, n in
            dequantize(t.type, data(t), into: buf.baseAddress!, count: t.elementCount)
            n = t.elementCount
        }
    }

    /// One row (innermost dimension) of a tensor, dequantized.
    public func row(_ t: GGUFTensorInfo, _ i: Int) -> [Float] {
        precondition(i >= 0 && i < t.rowCount, "row index out of range")
        return [Float](unsafeUninitializedCapacity: t.rowLength) { buf, n in
            dequantize(t.type, data(t) + i * t.rowBytes, into: buf.baseAddress!, count: t.rowLength)
            n = t.rowLength
        }
    }
}
