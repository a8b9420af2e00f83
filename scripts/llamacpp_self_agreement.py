#!/usr/bin/env python3
"""How far llama.cpp agrees with itself: the fixtures' prompts evaluated twice by llama.cpp
(llama-cpp-python), in batches of 512 (as the fixtures were made) and one token at a time (batch 1,
its decode path), on the same GGUF. Measures what the parity tests measure for Zebra: arg-max
agreement and the largest logit difference on the batch-512 top-5 at every position of the logits
prompts, and for the greedy prompts (prompt in one batch vs token by token, then greedy decode) the
step where the continuations first differ and llama.cpp's top1-top2 margin there. This is the noise
floor of 8-bit activation rounding: a different summation order alone flips some roundings.

    python3 scripts/llamacpp_self_agreement.py     # writes Tests/ModelTests/Fixtures/llamacpp-self-agreement.json
"""
import os, sys
import numpy as np
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_fixtures import GEMMA, GREEDY_PROMPTS, PROMPTS, greedy_run, long_text, out, smollm_path  # the fixtures' prompts


def logits(path, prompts, n_batch):
    from llama_cpp import Llama
    l = Llama(model_path=path, verbose=False, n_threads=2, n_ctx=4096, n_batch=n_batch, n_ubatch=n_batch, logits_all=True)
    out = []
    for ids in prompts:
        l.reset()
        l.eval(ids)
        out.append(np.array(l.scores[: len(ids)], dtype=np.float32))
    return out


def greedy(path, prompts, n_batch, n=64):
    from llama_cpp import Llama
    l = Llama(model_path=path, verbose=False, n_threads=2, n_ctx=1024, n_batch=n_batch, n_ubatch=n_batch)
    return [greedy_run(l, ids, n) for ids in prompts]


def measure(name, path):
    from llama_cpp import Llama
    tok = Llama(model_path=path, verbose=False, vocab_only=True)
    prompts = [tok.tokenize(p.encode(), add_bos=True, special=True) for p in PROMPTS]
    toks = tok.tokenize(long_text().encode(), add_bos=True, special=True)
    prompts += [toks[:1600], toks[1000:2800] if len(toks) >= 2800 else toks[:1800]]
    a, b = logits(path, prompts, 512), logits(path, prompts, 1)
    agree = total = misses = 0
    worst = 0.0
    for x, y in zip(a, b):
        top = np.argsort(-x, axis=1, kind="stable")[:, :5]
        for i in range(len(x)):
            total += 1
            same = np.argmax(x[i]) == np.argmax(y[i])
            agree += int(same)
            worst = max(worst, float(np.max(np.abs(x[i, top[i]] - y[i, top[i]]))))
            if not same and x[i, top[i, 0]] - x[i, top[i, 1]] >= 1.0:
                misses += 1
    gp = [tok.tokenize(p.encode(), add_bos=True, special=True) for p in GREEDY_PROMPTS]
    ga, gb = greedy(path, gp, 512), greedy(path, gp, 1)
    divergences = []
    for (ta, ma), (tb, _) in zip(ga, gb):
        step = next((i for i, (u, v) in enumerate(zip(ta, tb)) if u != v), None)
        divergences.append({"step": step, "margin": None if step is None else ma[step],
                            "min_margin_before": min(ma[:step if step is not None else len(ma)], default=None)})
    r = {"model": os.path.basename(path), "positions": total, "argmax_agreement": agree / total,
         "max_abs_logit_diff_top5": worst, "disagreements_margin_ge_1": misses,
         "greedy_identical": sum(d["step"] is None for d in divergences), "greedy_divergences": divergences}
    print(f"{r['model']}: llama.cpp batch 512 vs batch 1: arg-max agreement {agree}/{total} = {agree / total:.4f}, "
          f"max |logit diff| on the top-5 = {worst:.3f}, disagreements where the margin >= 1.0: {misses}; "
          f"greedy identical {r['greedy_identical']}/10, first differences at (step, margin): "
          f"{[(d['step'], round(d['margin'], 3)) for d in divergences if d['step'] is not None]}", file=sys.stderr)
    return r


def main():
    out("Tests/ModelTests/Fixtures/llamacpp-self-agreement.json",
        {"about": "llama.cpp (llama-cpp-python 0.3.36) against itself: batch 512 vs batch 1; scripts/llamacpp_self_agreement.py",
         "gemma3": measure("gemma3", GEMMA), "smollm2": measure("smollm2", smollm_path())})


if __name__ == "__main__":
    main()
