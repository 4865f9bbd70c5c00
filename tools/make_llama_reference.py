#!/usr/bin/env python3
"""Tiny random Llama checkpoints and Hugging Face transformers' logits for them.

Writes tests/data/llama/<name>/ for each configuration below: the checkpoint exactly as
`LlamaForCausalLM.save_pretrained` writes it, `reference.json` (the token ids) and `logits.npy`
(float32, T x vocab, every position). The ctest test `llama_reference` runs fftmat-llama's forward
pass on the same ids and compares, with no Python at run time.

The reference logits come from transformers with the stored weights upcast to float32
(`dtype=torch.float32`), which is what fftmat-llama computes: weights keep their checkpoint dtype,
arithmetic is float32. Attention is the "eager" implementation, the plainest statement of the
semantics.

Usage:  python3 tools/make_llama_reference.py [--out tests/data/llama]
Needs:  torch, transformers, safetensors, numpy (tools/requirements.txt).
"""

import argparse
import json
import pathlib
import shutil

import numpy as np
import torch
from transformers import LlamaConfig, LlamaForCausalLM

# Each case covers one feature of the loader and the forward pass.
CASES = {
    # grouped-query attention (4 query heads share 2 key/value heads), separate lm_head, F32
    "gqa_f32": dict(dtype=torch.float32, shard=None, config=dict(
        hidden_size=64, intermediate_size=160, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, vocab_size=320, tie_word_embeddings=False, rms_norm_eps=1e-6,
        rope_theta=10000.0)),
    # tied embeddings (no lm_head.weight in the file), BF16, non-default rope_theta and eps
    "tied_bf16": dict(dtype=torch.bfloat16, shard=None, config=dict(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=4, vocab_size=256, tie_word_embeddings=True, rms_norm_eps=1e-5,
        rope_theta=500000.0)),
    # sharded safetensors with model.safetensors.index.json, F16, 8 heads over 2 kv heads
    "sharded_f16": dict(dtype=torch.float16, shard="60KB", config=dict(
        hidden_size=64, intermediate_size=176, num_hidden_layers=3, num_attention_heads=8,
        num_key_value_heads=2, vocab_size=384, tie_word_embeddings=False, rms_norm_eps=1e-5,
        rope_theta=10000.0)),
}

SEQUENCE_LENGTH = 24
BOS = 1


def make_case(name, case, out_dir, seed):
    torch.manual_seed(seed)
    settings = dict(case["config"])
    rope_theta = settings.pop("rope_theta")
    config = LlamaConfig(**settings, max_position_embeddings=256, bos_token_id=BOS, eos_token_id=2,
                         initializer_range=0.1, rope_parameters={"rope_type": "default", "rope_theta": rope_theta})
    config._attn_implementation = "eager"
    model = LlamaForCausalLM(config).eval()
    # Random norm weights (initialised to ones) so the test notices a norm weight that is ignored.
    with torch.no_grad():
        for parameter_name, parameter in model.named_parameters():
            if parameter_name.endswith("norm.weight"):
                parameter.copy_(1.0 + 0.2 * torch.randn_like(parameter))
    model = model.to(case["dtype"])

    directory = out_dir / name
    shutil.rmtree(directory, ignore_errors=True)
    save_args = dict(safe_serialization=True)
    if case["shard"]:
        save_args["max_shard_size"] = case["shard"]
    model.save_pretrained(directory, **save_args)

    generator = np.random.default_rng(seed)
    tokens = [BOS] + generator.integers(3, config.vocab_size, SEQUENCE_LENGTH - 1).tolist()
    reference = LlamaForCausalLM.from_pretrained(directory, dtype=torch.float32, attn_implementation="eager").eval()
    with torch.no_grad():
        logits = reference(torch.tensor([tokens])).logits[0].float().numpy()
    np.save(directory / "logits.npy", logits.astype("<f4"))
    (directory / "reference.json").write_text(json.dumps({"tokens": tokens}) + "\n")
    (directory / "generation_config.json").unlink(missing_ok=True)
    files = sorted(p.name for p in directory.iterdir())
    print(f"{name}: {files}, logits {logits.shape}, max |logit| {np.abs(logits).max():.3f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("tests/data/llama"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for seed, (name, case) in enumerate(CASES.items()):
        make_case(name, case, args.out, seed)


if __name__ == "__main__":
    main()
