#!/usr/bin/env python3
"""Serving benchmark: N concurrent streaming clients, 128-token completions, Zebra and llama.cpp's
llama-server on the same model in the same run.

    python3 scripts/bench_serve.py [--levels 1,4,16,64] [--tokens 128]
    python3 scripts/bench_serve.py --long        # 8 clients x 8000-token prompts: memory

Prints aggregate tokens/s, time to first token p50/p95 and inter-token latency p50/p95 per level, and
in --long mode the servers' peak RSS and Zebra's KV bytes (from /metrics) against the exact formula.
Needs .build/release/zebra and .build-llamacpp/bin/llama-server (scripts/build_llamacpp.sh).
"""
import argparse, http.client, json, os, re, subprocess, sys, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MODEL = os.path.join(ROOT, "models", "gemma-3-270m-Q4_K_M.gguf")

def wait_up(port, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/health")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"server on {port} did not come up")

def model_id(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/v1/models")
    return json.loads(c.getresponse().read())["data"][0]["id"]

def stream_one(port, prompt, tokens, out):
    body = json.dumps({"model": model_id(port), "prompt": prompt, "max_tokens": tokens, "temperature": 0,
                       "stream": True, "ignore_eos": True})
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    t0 = time.time()
    c.request("POST", "/v1/completions", body=body, headers={"Content-Type": "application/json"})
    r = c.getresponse()
    stamps, n, done = [], 0, False
    for raw in r:
        line = raw.decode("utf-8", "replace").strip()
        if not line.startswith("data: "):
            continue
        data = line[6:]
        if data == "[DONE]":
            done = True
            break
        obj = json.loads(data)
        for ch in obj.get("choices", []):
            if ch.get("text"):
                stamps.append(time.time())
                n += 1
    out.append({"t0": t0, "stamps": stamps, "done": done})

def pct(xs, p):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(p / 100 * len(xs)))]

def run_level(port, clients, tokens, prompt):
    results, threads = [], []
    t0 = time.time()
    for _ in range(clients):
        th = threading.Thread(target=stream_one, args=(port, prompt, tokens, results))
        th.start()
        threads.append(th)
    for th in threads:
        th.join()
    wall = time.time() - t0
    total = sum(len(r["stamps"]) for r in results)
    ttft = [r["stamps"][0] - r["t0"] for r in results if r["stamps"]]
    itl = [b - a for r in results for a, b in zip(r["stamps"], r["stamps"][1:])]
    return {"tok_s": total / wall, "ttft50": pct(ttft, 50), "ttft95": pct(ttft, 95), "itl50": pct(itl, 50),
            "itl95": pct(itl, 95), "complete": sum(r["done"] for r in results), "clients": clients}

def start(kind, port, extra):
    if kind == "zebra":
        cmd = [os.path.join(ROOT, ".build/release/zebra"), "serve", "--model", MODEL, "--host", "127.0.0.1", "--port", str(port)] + extra
    else:
        cmd = [os.path.join(ROOT, ".build-llamacpp/bin/llama-server"), "-m", MODEL, "--host", "127.0.0.1", "--port", str(port)] + extra
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(port)
    return p

def peak_rss(pid):
    with open(f"/proc/{pid}/status") as f:
        m = re.search(r"VmHWM:\s+(\d+) kB", f.read())
    return int(m.group(1)) * 1024

def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    return {m.group(1) or "": float(m.group(2)) for m in re.finditer(rf"^{re.escape(name)}(\{{.*?\}})? (\S+)$", text, re.M)}

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--levels", default="1,4,16")
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--long", action="store_true")
    a = ap.parse_args()
    prompt = "Write a long story about a zebra who learns to program computers. Once upon a time,"
    if a.long:
        long_prompt = " ".join(["The zebra walked across the savanna, counting stripes and thinking about attention."] * 500)
        # Gemma 3 270M: 3 global layers x tokens + 15 sliding x min(tokens, 512), 1024 bytes per position.
        kv_formula = lambda t: (3 * t + 15 * min(t, 512)) * 1024
        prompt_tokens = None
        rows = []
        for kind, port, extra in [("zebra", 18180, ["--max-running", "8"]), ("llama-server", 18181, ["-np", "8", "-c", "65536"])]:
            p = start(kind, port, extra)
            if kind == "zebra":
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("POST", "/tokenize", body=json.dumps({"content": long_prompt, "add_special": True}))
                prompt_tokens = len(json.loads(c.getresponse().read())["tokens"])
            peak = {}
            def poll():
                while p.poll() is None and not peak.get("stop"):
                    if kind == "zebra":
                        kv = metric(port, "zebra_kv_cache_bytes")
                        peak["kv"] = max(peak.get("kv", 0), sum(kv.values()))
                    time.sleep(0.5)
            th = threading.Thread(target=poll); th.start()
            # 256 tokens each: long enough that all 8 sequences are resident together (prompts prefill
            # in order within the per-step token budget), so peak memory covers 8 long contexts.
            r = run_level(port, 8, 256, long_prompt)
            peak["stop"] = True; th.join()
            rows.append((kind, peak_rss(p.pid), peak.get("kv"), r))
            p.terminate(); p.wait()
        print(f"prompt tokens per request: {prompt_tokens}; exact Zebra KV for 8 such sequences at the end: "
              f"{8 * kv_formula(prompt_tokens + 256) / 2**20:.1f}Mi")
        print(f"{'server':14} {'peak RSS':>12} {'peak KV bytes':>14} {'tokens/s':>9} {'complete':>9}")
        for kind, rss, kv, r in rows:
            print(f"{kind:14} {rss / 2**20:10.1f}Mi {('%.1fMi' % (kv / 2**20)) if kv else '-':>14} {r['tok_s']:9.1f} {r['complete']:>5}/8")
        return
    levels = [int(x) for x in a.levels.split(",")]
    print(f"{'server':14} {'clients':>7} {'tokens/s':>9} {'TTFT p50':>9} {'TTFT p95':>9} {'ITL p50':>8} {'ITL p95':>8} {'complete':>9}")
    results = {}
    for kind, port, extra in [("zebra", 18180, []), ("llama-server", 18181, ["-np", str(max(levels)), "-c", str(max(levels) * 512)])]:
        p = start(kind, port, extra)
        for n in levels:
            r = run_level(port, n, a.tokens, prompt)
            results[(kind, n)] = r
            print(f"{kind:14} {n:7d} {r['tok_s']:9.1f} {r['ttft50']*1000:7.0f}ms {r['ttft95']*1000:7.0f}ms "
                  f"{r['itl50']*1000:6.1f}ms {r['itl95']*1000:6.1f}ms {r['complete']:>5}/{n}", flush=True)
        p.terminate(); p.wait()
    for n in levels:
        z, l = results[("zebra", n)], results[("llama-server", n)]
        print(f"aggregate tokens/s ratio zebra/llama-server at {n} clients: {z['tok_s'] / l['tok_s']:.2f}")

if __name__ == "__main__":
    main()
