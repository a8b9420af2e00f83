#!/usr/bin/env python3
"""The README chart: KV cache memory and decode time per token against context length for Zebra, the
same model with every layer global (`--layers global`), and llama.cpp — all measured in one run.

    pip install matplotlib
    python3 scripts/kv_chart.py            # writes docs/kv_chart.json and docs/kv_chart.png

Zebra's figures come from `zebra bench --json` (decode timing; KV bytes from the cache's own exact
accounting). llama.cpp's decode timing comes from `llama-bench -d`, its KV size from the sizes
`llama-server` logs when it allocates its cache for a given context (single sequence).
"""
import json, os, re, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-Q4_K_M.gguf")
ZEBRA = os.path.join(ROOT, ".build/release/zebra")
LLB = os.path.join(ROOT, ".build-llamacpp/bin")
DEPTHS = [0, 4096, 8192, 16384]
CONTEXTS = [4096, 8192, 16384, 32768]

def zebra(layers=None):
    cmd = [ZEBRA, "bench", "--model", MODEL, "--json", "--prompt-lengths", "", "--depths", ",".join(map(str, DEPTHS)),
           "--decode-tokens", "16"] + (["--layers", layers] if layers else [])
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    kv = {}
    for c in CONTEXTS:   # the cache's exact accounting for one sequence of c tokens
        o = json.loads(subprocess.run([ZEBRA, "bench", "--model", MODEL, "--json", "--prompt-lengths", "", "--depths", "",
                                       "--kv-context", str(c)] + (["--layers", layers] if layers else []),
                                      check=True, capture_output=True, text=True).stdout)
        kv[c] = o["kv_bytes_per_sequence_at_context"]["total"]
    return {"decode_ms": {int(k): v for k, v in out["decode_ms_per_token"].items()}, "kv_bytes": kv}

def llamacpp():
    r = subprocess.run([os.path.join(LLB, "llama-bench"), "-m", MODEL, "-p", "0", "-n", "16", "-t", "2",
                        "-d", ",".join(map(str, DEPTHS)), "-o", "json"], check=True, capture_output=True, text=True)
    decode = {int(x["n_depth"]): 1000.0 / x["avg_ts"] for x in json.loads(r.stdout)}
    kv = {}
    for c in CONTEXTS:
        # -v prints the cache sizes; they appear twice (a dry-run estimate, then the allocation), so
        # the total restarts at each "creating non-SWA" line and the last set counts.
        p = subprocess.Popen([os.path.join(LLB, "llama-server"), "-m", MODEL, "-c", str(c), "-np", "1", "--port", "18399",
                              "--host", "127.0.0.1", "-v"], stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        total = 0.0
        for line in p.stderr:
            if "creating non-SWA KV cache" in line or "llama_kv_cache_unified" in line:
                total = 0.0
            m = re.search(r"llama_kv_cache: size =\s*([\d.]+) MiB", line)
            if m:
                total += float(m.group(1))
            if "listening on" in line:
                break
        p.terminate(); p.wait()
        kv[c] = int(total * 1048576)
    return {"decode_ms": decode, "kv_bytes": kv}

def main():
    data = {"machine": "2 cores, AMD EPYC (Zen 5)", "date": time.strftime("%Y-%m-%d"), "model": os.path.basename(MODEL),
            "zebra": zebra(), "zebra_all_global": zebra("global"), "llama.cpp": llamacpp()}
    os.makedirs(os.path.join(ROOT, "docs"), exist_ok=True)
    with open(os.path.join(ROOT, "docs", "kv_chart.json"), "w") as f:
        json.dump(data, f, indent=1)
    plot(data)

def plot(data):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2))
    styles = {"zebra": ("Zebra (15 sliding + 3 global)", "o-"), "zebra_all_global": ("same model, every layer global", "s--"),
              "llama.cpp": ("llama.cpp", "^:")}
    for key, (label, st) in styles.items():
        kv = {int(k): v for k, v in data[key]["kv_bytes"].items()}
        xs = sorted(kv)
        a.plot(xs, [kv[x] / 1048576 for x in xs], st, label=label)
        dm = {int(k): v for k, v in data[key]["decode_ms"].items()}
        xs = sorted(dm)
        b.plot(xs, [dm[x] for x in xs], st, label=label)
    a.set(title="KV cache per sequence", xlabel="context (tokens)", ylabel="MiB")
    b.set(title="decode time per token", xlabel="context depth (tokens)", ylabel="ms / token")
    for ax in (a, b):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"{data['model']} — {data['machine']}, {data['date']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "kv_chart.png"), dpi=110)

if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--plot-only":
        plot(json.load(open(os.path.join(ROOT, "docs", "kv_chart.json"))))
    else:
        main()
