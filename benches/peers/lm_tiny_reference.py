"""Records Hugging Face `transformers`' logits for a tiny Llama with formula weights, the
known answer `crates/kiln-lm/tests/reference.rs` checks Kiln's model against (RoPE layout,
grouped-query attention, RMSNorm, SwiGLU, untied head).

    /tmp/venv-lm/bin/python benches/peers/lm_tiny_reference.py

Weight `k` (in the order of `NAMES`, Hugging Face layout, row-major) has entries
`0.05 * sin(0.37 * i + 1.3 * k)`; the norm weights are `1 + 0.1 * sin(0.37 * i + 1.3 * k)`.
"""

import json
import math
from pathlib import Path

import torch
from transformers import LlamaConfig, LlamaForCausalLM

OUT = Path(__file__).resolve().parents[2] / "crates/kiln-lm/tests/data/tiny_reference.json"
CFG = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5, rope_theta=10000.0,
           max_position_embeddings=128, tie_word_embeddings=False)
IDS = [[3, 17, 42, 5, 63, 0, 29, 8, 11, 50], [7, 7, 7, 1, 2]]


def names(c):
    out = []
    for l in range(c["num_hidden_layers"]):
        p = f"model.layers.{l}"
        out += [f"{p}.input_layernorm.weight", f"{p}.self_attn.q_proj.weight", f"{p}.self_attn.k_proj.weight",
                f"{p}.self_attn.v_proj.weight", f"{p}.self_attn.o_proj.weight",
                f"{p}.post_attention_layernorm.weight", f"{p}.mlp.gate_proj.weight", f"{p}.mlp.up_proj.weight",
                f"{p}.mlp.down_proj.weight"]
    return out + ["model.embed_tokens.weight", "model.norm.weight", "lm_head.weight"]


def main():
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**CFG, attn_implementation="eager")).float().eval()
    sd = model.state_dict()
    for k, name in enumerate(names(CFG)):
        t = sd[name]
        i = torch.arange(t.numel(), dtype=torch.float64)
        w = torch.sin(0.37 * i + 1.3 * k)
        w = (1 + 0.1 * w) if "norm" in name else 0.05 * w
        sd[name] = w.reshape(t.shape).float()
    model.load_state_dict(sd)
    logits = []
    with torch.no_grad():
        for ids in IDS:
            logits.append(model(torch.tensor([ids])).logits[0].tolist())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"config": CFG, "ids": IDS, "logits": logits,
                               "transformers": __import__("transformers").__version__}) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
