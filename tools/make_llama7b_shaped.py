#!/usr/bin/env python3
"""A random fp16 checkpoint with Llama-2-7B's shapes, for speed measurements of fftmat-llama.

Writes DIR/config.json (Llama-2-7B's) and sharded safetensors with model.safetensors.index.json,
streaming one tensor at a time, so memory use stays at one tensor (~90 MB); only numpy is needed.
The weights are random fp16 with random signs and magnitudes in [2^-6, 2^-5) (random mantissa
bits under a fixed exponent: fast to generate, never inf or NaN); the norms are 1. The model
computes nothing meaningful, but it reads exactly the bytes Llama-2-7B reads.

The full model is 13.5 GB: write it outside the repository, e.g.
    python3 tools/make_llama7b_shaped.py /tmp/llama2-7b-shaped
    python3 tools/make_llama7b_shaped.py /tmp/llama2-7b-4layers --layers 4

--set KEY=VALUE replaces one entry of the config (VALUE as JSON), for other shapes of Llama, e.g. a
135M-class model with grouped-query attention and tied embeddings (no lm_head.weight then):
    python3 tools/make_llama7b_shaped.py /tmp/llama-135m --layers 30 --set hidden_size=576 \
        --set intermediate_size=1536 --set num_attention_heads=9 --set num_key_value_heads=3 \
        --set vocab_size=49152 --set tie_word_embeddings=true
"""

import argparse
import json
import pathlib
import struct

import numpy as np

LLAMA2_7B = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "hidden_size": 4096,
    "intermediate_size": 11008,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 4096,
    "rms_norm_eps": 1e-05,
    "rope_theta": 10000.0,
    "vocab_size": 32000,
    "tie_word_embeddings": False,
    "hidden_act": "silu",
    "bos_token_id": 1,
    "eos_token_id": 2,
    "torch_dtype": "float16",
}

SHARD_BYTES = 5 * 10**9  # like Hugging Face's default max_shard_size="5GB"


def tensor_shapes(config):
    d, inter, vocab = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    head_dim = d // config["num_attention_heads"]
    kv = config["num_key_value_heads"] * head_dim
    shapes = [("model.embed_tokens.weight", (vocab, d))]
    for layer in range(config["num_hidden_layers"]):
        p = f"model.layers.{layer}."
        shapes += [
            (p + "input_layernorm.weight", (d,)),
            (p + "self_attn.q_proj.weight", (d, d)),
            (p + "self_attn.k_proj.weight", (kv, d)),
            (p + "self_attn.v_proj.weight", (kv, d)),
            (p + "self_attn.o_proj.weight", (d, d)),
            (p + "post_attention_layernorm.weight", (d,)),
            (p + "mlp.gate_proj.weight", (inter, d)),
            (p + "mlp.up_proj.weight", (inter, d)),
            (p + "mlp.down_proj.weight", (d, inter)),
        ]
    shapes += [("model.norm.weight", (d,))]
    if not config["tie_word_embeddings"]:
        shapes += [("lm_head.weight", (vocab, d))]
    return shapes


def random_fp16(generator, count):
    bits = np.frombuffer(generator.bytes(2 * count), dtype=np.uint16)
    return (bits & np.uint16(0x83FF)) | np.uint16(0x2400)  # sign, mantissa; exponent 2^-6


def write_shard(path, tensors, generator):
    header, offset = {"__metadata__": {"format": "pt"}}, 0
    for name, shape in tensors:
        size = 2 * int(np.prod(shape))
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data section to 8 bytes
    with open(path, "wb") as out:
        out.write(struct.pack("<Q", len(text)))
        out.write(text)
        for name, shape in tensors:
            count = int(np.prod(shape))
            if name.endswith("norm.weight"):
                out.write(np.ones(count, dtype="<f2").tobytes())
            else:
                out.write(random_fp16(generator, count).astype("<u2").tobytes())
    return offset


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", type=pathlib.Path, help="output directory (outside the repository)")
    parser.add_argument("--layers", type=int, default=32, help="decoder layers (Llama-2-7B: 32)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="replace a config entry (VALUE as JSON), e.g. hidden_size=576")
    args = parser.parse_args()

    config = dict(LLAMA2_7B, num_hidden_layers=args.layers)
    for setting in args.set:
        key, _, value = setting.partition("=")
        if key not in config:
            parser.error(f"--set {setting}: {key!r} is not a config entry (one of {', '.join(config)})")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError as error:
            parser.error(f"--set {setting}: {value!r} is not a JSON value ({error})")
    shapes = tensor_shapes(config)
    shards, current, current_bytes = [], [], 0
    for name, shape in shapes:
        size = 2 * int(np.prod(shape))
        if current and current_bytes + size > SHARD_BYTES:
            shards.append(current)
            current, current_bytes = [], 0
        current.append((name, shape))
        current_bytes += size
    shards.append(current)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    generator = np.random.default_rng(args.seed)
    weight_map, total = {}, 0
    for k, tensors in enumerate(shards):
        file = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        total += write_shard(args.out / file, tensors, generator)
        weight_map.update({name: file for name, _ in tensors})
        print(f"wrote {file} ({len(tensors)} tensors)", flush=True)
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (args.out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    print(f"{args.out}: {args.layers} layers, {total / 1e9:.2f} GB of fp16 weights")


if __name__ == "__main__":
    main()
