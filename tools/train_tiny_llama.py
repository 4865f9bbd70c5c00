#!/usr/bin/env python3
"""Train the small Llama model shipped in models/tiny-shakespeare/.

The model is a genuine ``transformers.LlamaForCausalLM`` (RMSNorm, RoPE,
grouped-query attention, SwiGLU MLP) with a Llama-2-style SentencePiece
tokenizer, trained from scratch on tinyshakespeare on the CPU in a few minutes.
It exists so that the fftmat example program (which replaces the MLP layers of
a Llama model by block-circulant approximations and measures perplexity) has a
small, real, self-made checkpoint in exactly the Hugging Face layout of
Llama-2-7b-hf: config.json + model.safetensors (F16) + tokenizer.model.

Pipeline
  1. Split the text: the first 90 % of the characters (cut at a line
     boundary) is the training split, the rest is held out.
  2. Train a SentencePiece BPE tokenizer on the training split with the
     Llama-2 trainer settings (byte_fallback, split_digits, identity
     normaliser, add_dummy_prefix, unk=0 bos=1 eos=2 pad=-1).
  3. Tokenise each split as ONE string (``sp.encode(text)``, as the Llama
     tokenizer does with a whole document) and train on random windows of
     ``--seq-len`` tokens, each window being BOS followed by seq_len-1 text
     tokens.
  4. Evaluate the held-out loss: the held-out token stream is cut into
     consecutive chunks of seq_len-1 tokens, BOS is prepended to each, and the
     mean next-token cross entropy over all text tokens is reported.
  5. Convert to float16, ``save_pretrained(..., safe_serialization=True)``,
     reload with transformers in float32, check finite logits and that the
     held-out loss of the saved model matches the float32 one, greedy-generate
     a sample, and write training_log.json and README.md.

Training is limited either by --steps (step-based cosine schedule) or, by
default, by a wall-time budget --minutes (time-based cosine schedule, see
--help); the steps actually run are logged in training_log.json.

Everything is seeded (python, numpy, torch) and torch deterministic algorithms
are enabled; with an explicit ``--steps`` (or ``--replay-lr``) and the same
``--threads`` and library versions a re-run reproduces the same weights.
"""

import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import sys
import tempfile
import time

DEFAULT_DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                            "..", "..", "shared", "data", "tinyshakespeare.txt")
DEFAULT_OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                           "..", "models", "tiny-shakespeare")


def parse_args(argv=None):
    class Fmt(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass
    p = argparse.ArgumentParser(description=__doc__, formatter_class=Fmt)
    g = p.add_argument_group("data / output")
    g.add_argument("--data", default=DEFAULT_DATA,
                   help="training text (tinyshakespeare.txt in ../shared/data/ relative "
                        "to the repository root)")
    g.add_argument("--out", default=DEFAULT_OUT,
                   help="output directory, Hugging Face layout")
    g.add_argument("--train-frac", type=float, default=0.9,
                   help="fraction of characters used for training; the cut is moved "
                        "forward to the next line boundary, the rest is held out")
    g.add_argument("--max-size-mb", type=float, default=25.0,
                   help="fail if the output directory is larger than this")

    g = p.add_argument_group("tokenizer")
    g.add_argument("--vocab-size", type=int, default=2048,
                   help="SentencePiece vocabulary size incl. <unk>,<s>,</s> and the 256 "
                        "byte-fallback pieces")

    g = p.add_argument_group("model (LlamaConfig)")
    g.add_argument("--hidden-size", type=int, default=256, help="hidden_size")
    g.add_argument("--intermediate-size", type=int, default=768,
                   help="intermediate_size of the SwiGLU MLP (the layers fftmat replaces)")
    g.add_argument("--layers", type=int, default=8, help="num_hidden_layers")
    g.add_argument("--heads", type=int, default=8, help="num_attention_heads")
    g.add_argument("--kv-heads", type=int, default=4,
                   help="num_key_value_heads; < heads gives grouped-query attention")
    g.add_argument("--max-positions", type=int, default=512,
                   help="max_position_embeddings")

    g = p.add_argument_group("training")
    g.add_argument("--steps", type=int, default=None,
                   help="number of optimiser steps, with a step-based cosine schedule "
                        "(fully deterministic). If omitted, training is limited by "
                        "--minutes instead")
    g.add_argument("--minutes", type=float, default=20.0,
                   help="wall-time budget of the training loop when --steps is not given: "
                        "after warm-up the cosine decay follows the fraction of the budget "
                        "used, and training stops when the budget is spent (robust to a "
                        "shared CPU; the steps run and the lr of every step are logged)")
    g.add_argument("--replay-lr", metavar="TRAINING_LOG_JSON", default=None,
                   help="replay exactly the per-step learning rates (and hence the step "
                        "count) recorded in a previous training_log.json; with the same "
                        "seed, threads and library versions this reproduces a time-budgeted "
                        "run deterministically")
    g.add_argument("--batch-size", type=int, default=16, help="windows per optimiser step")
    g.add_argument("--seq-len", type=int, default=128,
                   help="window length in tokens, including the leading BOS")
    g.add_argument("--lr", type=float, default=3e-3, help="peak learning rate")
    g.add_argument("--min-lr-frac", type=float, default=0.1,
                   help="final lr as a fraction of the peak, cosine decay")
    g.add_argument("--warmup", type=int, default=None,
                   help="linear warm-up steps (None: 5%% of --steps but at least 10, or 20 "
                        "with --minutes)")
    g.add_argument("--weight-decay", type=float, default=0.1,
                   help="AdamW weight decay on matrices (not on norms)")
    g.add_argument("--grad-clip", type=float, default=1.0, help="max global grad norm")
    g.add_argument("--log-every", type=int, default=20, help="progress line every N steps")
    g.add_argument("--eval-every", type=int, default=200,
                   help="quick held-out loss on --quick-eval-windows windows every N steps (0: off)")
    g.add_argument("--quick-eval-windows", type=int, default=32,
                   help="held-out windows used by the periodic quick evaluation")

    g = p.add_argument_group("runtime")
    g.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    g.add_argument("--seed", type=int, default=1234,
                   help="seed for python, numpy, torch, sentencepiece and window sampling")
    g.add_argument("--prompt", default="ROMEO:", help="prompt for the greedy sample")
    g.add_argument("--gen-tokens", type=int, default=40, help="tokens to greedy-generate")
    return p.parse_args(argv)


def log(*a):
    print(*a, flush=True)


def split_text(text, frac):
    cut = int(len(text) * frac)
    nl = text.find("\n", cut)
    cut = len(text) if nl < 0 else nl + 1  # training split ends with a newline
    return text[:cut], text[cut:], cut


def train_tokenizer(train_text, vocab_size, out_dir, seed):
    import sentencepiece as spm
    spm.set_random_generator_seed(seed)
    with tempfile.TemporaryDirectory() as td:
        txt = os.path.join(td, "train.txt")
        with open(txt, "w", encoding="utf-8") as f:
            f.write(train_text)
        prefix = os.path.join(td, "tokenizer")
        # Llama-2 trainer_spec / normalizer_spec, except vocab size and
        # character_coverage (1.0: keep every character seen).
        spm.SentencePieceTrainer.train(
            input=txt,
            model_prefix=prefix,
            model_type="bpe",
            vocab_size=vocab_size,
            character_coverage=1.0,
            byte_fallback=True,
            split_digits=True,
            split_by_unicode_script=True,
            split_by_whitespace=True,
            split_by_number=True,
            treat_whitespace_as_suffix=False,
            allow_whitespace_only_pieces=True,
            max_sentencepiece_length=16,
            max_sentence_length=4192,
            normalization_rule_name="identity",
            add_dummy_prefix=True,
            remove_extra_whitespaces=False,
            unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
            unk_piece="<unk>", bos_piece="<s>", eos_piece="</s>",
            unk_surface=" \u2047 ",
            vocabulary_output_piece_score=True,
            hard_vocab_limit=True,
            shuffle_input_sentence=True,
            num_threads=2,
            minloglevel=2,
        )
        with open(prefix + ".model", "rb") as f:
            blob = f.read()
    path = os.path.join(out_dir, "tokenizer.model")
    with open(path, "wb") as f:
        f.write(blob)
    return path


def make_eval_batches(tokens, seq_len, bos):
    """Consecutive chunks of seq_len-1 tokens, each prefixed with BOS.

    Returns a list of (input_ids, labels) int64 tensors of shape [1, <=seq_len];
    label -100 on the BOS position is implicit because HF shifts labels: the
    loss covers every text token of the chunk exactly once."""
    import torch
    n = seq_len - 1
    out = []
    for i in range(0, len(tokens), n):
        chunk = tokens[i:i + n]
        ids = torch.tensor([[bos] + list(chunk)], dtype=torch.long)
        out.append(ids)
    return out


def evaluate(model, windows, batch_size=16):
    """Token-weighted mean cross entropy over all text tokens of the windows."""
    import torch
    import torch.nn.functional as F
    model.eval()
    tot_loss, tot_n = 0.0, 0
    with torch.no_grad():
        # group windows of equal length so full ones can be batched
        by_len = {}
        for w in windows:
            by_len.setdefault(w.shape[1], []).append(w)
        for L, ws in sorted(by_len.items()):
            for i in range(0, len(ws), batch_size):
                x = torch.cat(ws[i:i + batch_size], 0)
                logits = model(input_ids=x).logits.float()
                loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                       x[:, 1:].reshape(-1), reduction="sum")
                tot_loss += loss.item()
                tot_n += x[:, 1:].numel()
    model.train()
    return tot_loss / tot_n, tot_n


def greedy_generate(model, sp, prompt, n_tokens, bos):
    import torch
    ids = [bos] + sp.encode(prompt)
    model.eval()
    with torch.no_grad():
        x = torch.tensor([ids], dtype=torch.long)
        out = model.generate(x, max_new_tokens=n_tokens, do_sample=False,
                             pad_token_id=2, eos_token_id=None)
    new = out[0, len(ids):].tolist()
    return sp.decode(ids[1:] + new), new


def dir_size(path):
    return sum(os.path.getsize(os.path.join(path, f)) for f in os.listdir(path)
               if os.path.isfile(os.path.join(path, f)))


def main(argv=None):
    args = parse_args(argv)
    command = "python3 tools/train_tiny_llama.py " + " ".join(
        shlex.quote(a) for a in (sys.argv[1:] if argv is None else argv))
    t_start = time.time()

    # Passive OpenMP waiting: on a CPU shared with other jobs the default
    # spin-waiting of idle OpenMP threads made training ~3x slower.  Must be
    # set before torch (libgomp) is loaded; an explicit setting is respected.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import numpy as np
    import torch
    import transformers
    import sentencepiece as spm
    from transformers import LlamaConfig, LlamaForCausalLM

    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)

    os.makedirs(args.out, exist_ok=True)
    with open(args.data, encoding="utf-8") as f:
        text = f.read()
    train_text, heldout_text, cut = split_text(text, args.train_frac)
    log(f"data: {args.data}: {len(text)} chars; train [0,{cut}) = {len(train_text)} chars, "
        f"held out [{cut},{len(text)}) = {len(heldout_text)} chars")

    # ---------------------------------------------------------------- tokenizer
    t0 = time.time()
    tok_path = train_tokenizer(train_text, args.vocab_size, args.out, args.seed)
    sp = spm.SentencePieceProcessor(model_file=tok_path)
    assert sp.get_piece_size() == args.vocab_size, sp.get_piece_size()
    assert (sp.unk_id(), sp.bos_id(), sp.eos_id(), sp.pad_id()) == (0, 1, 2, -1)
    BOS = sp.bos_id()
    train_ids = np.array(sp.encode(train_text), dtype=np.int64)
    held_ids = np.array(sp.encode(heldout_text), dtype=np.int64)
    n_byte_fallback = int(sum(1 for i in held_ids[:20000] if sp.is_byte(int(i))))
    log(f"tokenizer: {tok_path} vocab {sp.get_piece_size()} ({time.time() - t0:.1f}s); "
        f"train {len(train_ids)} tokens ({len(train_text) / len(train_ids):.2f} chars/token), "
        f"held out {len(held_ids)} tokens")

    # ---------------------------------------------------------------- model
    config = LlamaConfig(
        vocab_size=args.vocab_size,
        hidden_size=args.hidden_size,
        intermediate_size=args.intermediate_size,
        num_hidden_layers=args.layers,
        num_attention_heads=args.heads,
        num_key_value_heads=args.kv_heads,
        max_position_embeddings=args.max_positions,
        rms_norm_eps=1e-5,
        rope_theta=10000.0,
        tie_word_embeddings=False,
        hidden_act="silu",
        bos_token_id=1,
        eos_token_id=2,
        pad_token_id=None,
        initializer_range=0.02,
        attention_bias=False,
        mlp_bias=False,
    )
    model = LlamaForCausalLM(config)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: LlamaForCausalLM {n_params / 1e6:.2f}M parameters, "
        f"attn_implementation={getattr(config, '_attn_implementation', None)}")

    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.95), eps=1e-8)

    rng = np.random.default_rng(args.seed)
    T = args.seq_len - 1
    max_start = len(train_ids) - T
    bos_col = torch.full((args.batch_size, 1), BOS, dtype=torch.long)

    def get_batch():
        starts = rng.integers(0, max_start + 1, size=args.batch_size)
        body = np.stack([train_ids[s:s + T] for s in starts])
        return torch.cat([bos_col, torch.from_numpy(body)], 1)

    eval_windows = make_eval_batches(held_ids.tolist(), args.seq_len, BOS)
    quick_windows = eval_windows[:args.quick_eval_windows]

    # Learning-rate schedule: linear warm-up over `warmup` steps, then cosine
    # decay from lr to min_lr_frac*lr.  With --steps the cosine progress is
    # counted in steps (fully deterministic).  Without --steps the run is
    # limited by wall time (--minutes) and the cosine progress is the fraction
    # of the time budget used, so the schedule always finishes its decay even
    # when the CPU is shared and the step rate varies; the number of steps run
    # and the lr of every step are logged, and --replay-lr replays them.
    replay = None
    if args.replay_lr:
        with open(args.replay_lr) as f:
            replay = json.load(f)["training"]["lr_per_step"]
        mode = "replay"
        total_steps = len(replay)
        warmup = None
    elif args.steps is not None:
        mode = "steps"
        total_steps = args.steps
        warmup = args.warmup if args.warmup is not None else max(10, int(0.05 * total_steps))
    else:
        mode = "time"
        total_steps = None
        warmup = args.warmup if args.warmup is not None else 20
    budget_s = 60.0 * args.minutes
    min_lr = args.min_lr_frac * args.lr

    def cosine(prog):
        prog = min(max(prog, 0.0), 1.0)
        return min_lr + (args.lr - min_lr) * 0.5 * (1 + math.cos(math.pi * prog))

    if mode == "steps":
        log(f"training: {total_steps} steps (step-based schedule)")
    elif mode == "replay":
        log(f"training: {total_steps} steps, lr per step replayed from {args.replay_lr}")
    else:
        log(f"training: time budget {args.minutes} min (time-based cosine schedule)")
    log(f"  batch {args.batch_size} x {args.seq_len} tokens, peak lr {args.lr}, "
        f"warmup {warmup} steps, cosine to {min_lr:g}, threads {args.threads}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")
    history = []
    lr_per_step = []
    t_train = time.time()
    t_last, tok_since = time.time(), 0
    t_warm_end = None
    ema = None
    recent = []
    done = 0
    while True:
        elapsed = time.time() - t_train
        if mode == "time":
            if done >= warmup and t_warm_end is None:
                t_warm_end = elapsed
            if elapsed >= budget_s and done >= warmup:
                break
        elif done >= total_steps:
            break
        if mode == "replay":
            lr = replay[done]
        elif done < warmup:
            lr = args.lr * (done + 1) / warmup
        elif mode == "steps":
            lr = cosine((done - warmup) / max(1, total_steps - warmup))
        else:
            lr = cosine((elapsed - t_warm_end) / max(1e-9, budget_s - t_warm_end))
        for gr in opt.param_groups:
            gr["lr"] = lr
        lr_per_step.append(lr)
        x = get_batch()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
        lv = loss.item()
        if not math.isfinite(lv):
            raise SystemExit(f"non-finite loss at step {done}")
        ema = lv if ema is None else 0.95 * ema + 0.05 * lv
        recent.append(lv)
        recent = recent[-50:]
        tok_since += x.numel()
        done += 1
        if done % args.log_every == 0 or done == 1 or done == total_steps:
            dt = time.time() - t_last
            el = time.time() - t_train
            log(f"step {done:5d}{'' if total_steps is None else '/' + str(total_steps)}  "
                f"loss {lv:.4f}  (ema {ema:.4f})  lr {lr:.2e}  gnorm {gnorm:.2f}  "
                f"{tok_since / dt:6.0f} tok/s  elapsed {el:5.0f}s")
            history.append({"step": done, "loss": round(lv, 5), "ema_loss": round(ema, 5),
                            "lr": lr, "elapsed_s": round(el, 1)})
            t_last, tok_since = time.time(), 0
        if args.eval_every and done % args.eval_every == 0:
            ql, _ = evaluate(model, quick_windows)
            log(f"  quick held-out loss ({len(quick_windows)} windows) {ql:.4f} ppl {math.exp(ql):.2f}")
            history[-1]["quick_heldout_loss"] = round(ql, 5)
    train_time = time.time() - t_train
    total_steps = done  # steps actually run
    if not history or history[-1]["step"] != done:
        history.append({"step": done, "loss": round(lv, 5), "ema_loss": round(ema, 5),
                        "lr": lr, "elapsed_s": round(train_time, 1)})
    final_train_loss = float(np.mean(recent))
    log(f"training done in {train_time:.0f}s; mean train loss over last {len(recent)} steps "
        f"{final_train_loss:.4f}")

    # ---------------------------------------------------------------- eval fp32
    t0 = time.time()
    held_loss32, n_eval = evaluate(model, eval_windows)
    log(f"held-out (fp32): loss {held_loss32:.4f}  ppl {math.exp(held_loss32):.3f}  "
        f"over {n_eval} tokens in {len(eval_windows)} windows ({time.time() - t0:.0f}s)")

    # ---------------------------------------------------------------- save fp16
    model.half()
    try:
        model.save_pretrained(args.out, safe_serialization=True)
    except TypeError:  # newer transformers: safetensors is the only format
        model.save_pretrained(args.out)
    del model
    # Llama-2-7b-hf's config.json has top-level "torch_dtype" (and later
    # revisions "rope_theta"); transformers >= 5 writes "dtype" and
    # "rope_parameters" instead.  Add the legacy keys too so that simple
    # readers (the fftmat C++ example) find them; transformers ignores/accepts
    # them on reload, which the check below verifies.
    cfg_path = os.path.join(args.out, "config.json")
    with open(cfg_path) as f:
        cfg_json = json.load(f)
    rope = cfg_json.get("rope_parameters") or {}
    cfg_json.setdefault("rope_theta", float(rope.get("rope_theta", 10000.0)))
    cfg_json.setdefault("rope_scaling", None)
    cfg_json.setdefault("torch_dtype", "float16")
    with open(cfg_path, "w") as f:
        json.dump(cfg_json, f, indent=2, sort_keys=True)
        f.write("\n")
    st_path = os.path.join(args.out, "model.safetensors")
    assert os.path.exists(st_path), "model.safetensors was not written"
    from safetensors import safe_open
    with safe_open(st_path, framework="pt") as f:
        dtypes = sorted({str(f.get_slice(k).get_dtype()) for k in f.keys()})
        n_tensors = len(list(f.keys()))
    log(f"saved {st_path}: {n_tensors} tensors, dtypes {dtypes}")

    # ---------------------------------------------------------------- reload + check
    try:
        m16 = LlamaForCausalLM.from_pretrained(args.out, dtype=torch.float32)
    except TypeError:
        m16 = LlamaForCausalLM.from_pretrained(args.out, torch_dtype=torch.float32)
    m16.eval()
    with torch.no_grad():
        logits = m16(input_ids=eval_windows[0]).logits
    logits_finite = bool(torch.isfinite(logits).all())
    held_loss16, _ = evaluate(m16, eval_windows)
    rel = abs(held_loss16 - held_loss32) / held_loss32
    log(f"reloaded fp16 checkpoint (evaluated in fp32): finite logits {logits_finite}; "
        f"held-out loss {held_loss16:.4f} ppl {math.exp(held_loss16):.3f} "
        f"(rel. diff of loss vs fp32 {100 * rel:.3f}%)")
    if not logits_finite or rel > 0.03:
        raise SystemExit("fp16 checkpoint check FAILED")

    sample, sample_ids = greedy_generate(m16, sp, args.prompt, args.gen_tokens, BOS)
    log("greedy sample:\n" + sample)

    # ---------------------------------------------------------------- log + README
    files = sorted(f for f in os.listdir(args.out) if os.path.isfile(os.path.join(args.out, f)))
    wall = time.time() - t_start
    cfg = json.load(open(os.path.join(args.out, "config.json")))
    training_log = {
        "command": command,
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "data": {"file": os.path.basename(args.data), "chars": len(text),
                 "train_chars": len(train_text), "heldout_chars": len(heldout_text),
                 "split_char_offset": cut,
                 "train_tokens": int(len(train_ids)), "heldout_tokens": int(len(held_ids))},
        "tokenizer": {"type": "sentencepiece bpe (Llama-2 settings, byte_fallback, split_digits)",
                      "vocab_size": sp.get_piece_size(), "unk_id": 0, "bos_id": 1, "eos_id": 2,
                      "pad_id": -1},
        "model_config": cfg,
        "n_parameters": n_params,
        "args": vars(args),
        "training": {"schedule": mode, "steps": total_steps, "warmup_steps": warmup,
                     "time_budget_min": args.minutes if mode == "time" else None,
                     "batch_size": args.batch_size, "seq_len": args.seq_len,
                     "tokens_seen": total_steps * args.batch_size * args.seq_len,
                     "train_time_s": round(train_time, 1),
                     "final_train_loss_mean_last_50": round(final_train_loss, 5),
                     "final_train_ppl": round(math.exp(final_train_loss), 4),
                     "history": history,
                     "lr_per_step": lr_per_step},
        "heldout_eval": {
            "method": "held-out text tokenised as one string, cut into consecutive chunks of "
                      f"{args.seq_len - 1} tokens, BOS prepended to each; mean next-token cross "
                      "entropy over all held-out tokens",
            "tokens": n_eval, "windows": len(eval_windows),
            "fp32_loss": round(held_loss32, 5), "fp32_ppl": round(math.exp(held_loss32), 4),
            "fp16_saved_loss": round(held_loss16, 5),
            "fp16_saved_ppl": round(math.exp(held_loss16), 4),
            "fp16_vs_fp32_rel_loss_diff": rel,
            "fp16_saved_logits_finite": logits_finite},
        "sample": {"prompt": args.prompt, "greedy_tokens": args.gen_tokens, "text": sample},
        "safetensors_dtypes": dtypes,
        "wall_time_s": round(wall, 1),
        "versions": {"python": platform.python_version(), "torch": torch.__version__,
                     "transformers": transformers.__version__,
                     "sentencepiece": spm.__version__, "numpy": np.__version__},
        "threads": args.threads,
        "machine": platform.machine() + " " + platform.processor(),
    }
    with open(os.path.join(args.out, "training_log.json"), "w") as f:
        json.dump(training_log, f, indent=2)
        f.write("\n")

    files = sorted(f for f in os.listdir(args.out) if os.path.isfile(os.path.join(args.out, f)))
    sizes = {f: os.path.getsize(os.path.join(args.out, f)) for f in files}
    readme = os.path.join(args.out, "README.md")
    # README size is small; estimate total including itself after writing
    def render(total):
        size_rows = "\n".join(f"| `{f}` | {sizes[f]:,} |" for f in files if f != "README.md")
        return f"""# tiny-shakespeare: a small Llama trained from scratch

A {n_params / 1e6:.2f}M-parameter `LlamaForCausalLM` (Hugging Face transformers) with a
Llama-2-style SentencePiece tokenizer, trained from scratch on the CPU on
tinyshakespeare. It is the small test model of the fftmat example program:
same file layout and conventions as `meta-llama/Llama-2-7b-hf` (`config.json`,
a single `model.safetensors` with **F16** tensors, SentencePiece `tokenizer.model`
with `<unk>`=0, `<s>`=1, `</s>`=2, byte fallback), only much smaller.

## Architecture

| | |
|---|---|
| hidden_size | {cfg['hidden_size']} |
| intermediate_size (SwiGLU MLP) | {cfg['intermediate_size']} |
| num_hidden_layers | {cfg['num_hidden_layers']} |
| num_attention_heads / num_key_value_heads | {cfg['num_attention_heads']} / {cfg['num_key_value_heads']} (grouped-query attention, head_dim {cfg['hidden_size'] // cfg['num_attention_heads']}) |
| vocab_size | {cfg['vocab_size']} |
| max_position_embeddings | {cfg['max_position_embeddings']} (trained on {args.seq_len}-token windows) |
| rms_norm_eps, rope_theta | {cfg['rms_norm_eps']}, {cfg.get('rope_theta', (cfg.get('rope_parameters') or {}).get('rope_theta'))} |
| tie_word_embeddings | {cfg['tie_word_embeddings']} |
| hidden_act | {cfg['hidden_act']} |

## Data and tokenizer

`tinyshakespeare.txt` ({len(text):,} characters). The first {args.train_frac:.0%} of the characters,
cut at the next line boundary (offset {cut:,}), is used to train both the tokenizer and
the model; the remaining {len(heldout_text):,} characters are held out for evaluation.
The tokenizer is SentencePiece BPE with the Llama-2 trainer settings (`byte_fallback`,
`split_digits`, identity normaliser, `add_dummy_prefix`, `unk_id=0 bos_id=1 eos_id=2
pad_id=-1`), vocabulary {sp.get_piece_size()} (3 special + 256 byte pieces + merges),
character_coverage 1.0. Newlines are encoded by the byte piece `<0x0A>`, as in Llama.

## Training

{total_steps} AdamW steps (batch {args.batch_size} windows x {args.seq_len} tokens, each window
`<s>` + {args.seq_len - 1} text tokens taken at a random offset; peak lr {args.lr}, {warmup} warm-up steps,
cosine decay to {args.min_lr_frac * args.lr:g}, weight decay {args.weight_decay}, betas (0.9, 0.95),
grad clip {args.grad_clip}), seed {args.seed}, {args.threads} CPU threads, fp32;
{train_time / 60:.1f} min of training, {wall / 60:.1f} min wall time in total{early_note}
(torch {torch.__version__}, transformers {transformers.__version__}).
Average training throughput: {total_steps * args.batch_size * args.seq_len / train_time:.0f} tokens/s
({total_steps * args.batch_size * args.seq_len:,} tokens seen, {total_steps * args.batch_size * (args.seq_len - 1) / len(train_ids):.2f} epochs of the training split).
The weights were then converted to float16 and saved with
`save_pretrained(..., safe_serialization=True)`.

Command (run from the repository root):

```
{command}
```

## Results

Held-out perplexity: the held-out text is tokenised as one string, cut into consecutive
chunks of {args.seq_len - 1} tokens, `<s>` is prepended to each chunk, and the mean
next-token cross entropy over all {n_eval:,} held-out tokens is reported.

| | loss (nats/token) | perplexity |
|---|---|---|
| train (mean of last {len(recent)} steps) | {final_train_loss:.4f} | {math.exp(final_train_loss):.2f} |
| held out, fp32 weights | {held_loss32:.4f} | {math.exp(held_loss32):.2f} |
| held out, saved fp16 weights (computed in fp32) | {held_loss16:.4f} | {math.exp(held_loss16):.2f} |

Greedy continuation of `{args.prompt}` ({args.gen_tokens} tokens):

```
{sample}
```

Full details (config, loss history, versions) are in `training_log.json`.

## Files

| file | bytes |
|---|---|
{size_rows}
| `README.md` | (this file) |

Total: {total / 1e6:.2f} MB.

## Licence

The training text, tinyshakespeare (Andrej Karpathy's char-rnn collection of
Shakespeare's plays), is public-domain text. The tokenizer and weights here were
produced from it by `tools/train_tiny_llama.py` and are shipped with fftmat under
the project's licence. This model is not derived from Meta's Llama weights; it only
uses the same architecture.
"""
    early_note = ("; the run was limited by a wall-time budget of "
                  f"{args.minutes:g} min with the cosine decay following the fraction of the "
                  "budget used, so the step count depends on the machine load "
                  "(`training_log.json` records the lr of every step; "
                  "`--replay-lr training_log.json` replays that exact schedule)"
                  if mode == "time" else "")
    body = render(0)
    total = sum(sizes.values()) + len(body.encode())
    with open(readme, "w") as f:
        f.write(render(total))
    total = dir_size(args.out)
    log(f"wrote {args.out}: {', '.join(f'{f} {os.path.getsize(os.path.join(args.out, f)):,}' for f in sorted(os.listdir(args.out)))}")
    log(f"total size {total / 1e6:.2f} MB; wall time {wall / 60:.1f} min")
    if total > args.max_size_mb * 1e6:
        raise SystemExit(f"output directory is {total / 1e6:.1f} MB > {args.max_size_mb} MB")


if __name__ == "__main__":
    main()
