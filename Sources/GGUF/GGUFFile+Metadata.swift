// Typed metadata accessors: the model and tokenizer read their hyperparameters through these.

extension GGUFFile {
    public func int(_ key: String) throws(GGUFError) -> Int {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let i = v.int else { throw .wrongKeyType(key: key, expected: "an integer") }
        return i
    }

    public func int(_ key: String, default d: Int) throws(GGUFError) -> Int {
        metadata[key] == nil ? d : try int(key)
    }

    public func float(_ key: String) throws(GGUFError) -> Float {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let d = v.double else { throw .wrongKeyType(key: key, expected: "a number") }
        return Float(d)
    }

    public func float(_ key: String, default d: Float) throws(GGUFError) -> Float {
        metadata[key] == nil ? d : try float(key)
    }

    public func string(_ key: String) throws(GGUFError) -> String {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let s = v.string else { throw .wrongKeyType(key: key, expected: "a string") }
        return s
    }

    public func bool(_ key: String, default d: Bool) throws(GGUFError) -> Bool {
        guard let v = metadata[key] else { return d }
        guard let b = v.bool else { throw .wrongKeyType(key: key, expected: "a bool") }
        return b
    }

    public func strings(_ key: String) throws(GGUFError) -> [String] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.array else { throw .wrongKeyType(key: key, expected: "an array of strings") }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let s = e.string else { throw .wrongKeyType(key: key, expected: "an array of strings") }
            out.append(s)
        }
        return out
    }

    public func floats(_ key: String) throws(GGUFError) -> [Float] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.array else { throw .wrongKeyType(key: key, expected: "an array of numbers") }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let d = e.double else { throw .wrongKeyType(key: key, expected: "an array of numbers") }
            out.append(Float(d))
        }
        return out
    }

    public func ints(_ key: String) throws(GGUFError) -> [Int] {
        guard let v = metadata[key] else { throw .missingKey(key) }
        guard let a = v.array else { throw .wrongKeyType(key: key, expected: "an array of integers") }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for e in a {
            guard let i = e.int else { throw .wrongKeyType(key: key, expected: "an array of integers") }
            out.append(i)
        }
        return out
    }

    public var architecture: String? { metadata["general.architecture"]?.string }
}
