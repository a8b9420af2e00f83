// Writes a copy of a GGUF model with every tensor dequantized to F32 (same metadata), so a test can
// compare against llama.cpp where neither side quantizes activations.
import Foundation
import GGUF

public enum F32Copy {
    public static func write(from path: String) throws -> String {
        let f = try GGUFFile(path: path)
        var w = GGUFWriter()
        for k in f.keys where k != "general.alignment" { w.add(k, f.metadata[k]!) }
        for name in f.tensorNames {
            let t = f.tensors[name]!
            w.addF32(name, dims: t.dims, f.floats(t))
        }
        let out = ScratchFiles.path("f32", suffix: ".gguf")
        try Data(w.serialize()).write(to: URL(fileURLWithPath: out))
        return out
    }
}
