#!/usr/bin/env python3
"""Plots an evaluation sweep's results.json (written by `fftmat-llama sweep`) as PNG figures.

  quality_vs_block.png   last-token KL and all-position top-1 agreement against block size (for
                         low-rank rows: the block size whose budget sets the rank), one line per
                         (layers, projection) group
  quality_vs_layers.png  last-token KL against the number of patched layers, per projection
  throughput.png         prefill and decode tokens/s of every row

Given a sensitivity.json (written by `fftmat-llama sensitivity`) instead, it draws

  sensitivity.png        per layer patched alone: all-position KL on the selection windows and on the
                         evaluation prompts, and held-out perplexity; the greedy choice marked

Each figure is written to a temporary file and renamed, so a figure is complete or absent.
"""
import argparse
import json
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(fig, path):
    temporary = path + ".tmp.png"
    fig.savefig(temporary, dpi=120, bbox_inches="tight")
    plt.close(fig)
    os.replace(temporary, path)


def layer_count(row):
    return len(row["layer_list"])


def plot_quality_vs_block(rows, out):
    groups = defaultdict(list)
    for r in rows:
        if r["projection"] in ("frobenius", "calibrated", "sequential", "lowrank", "lowrank-sequential"):
            groups[(layer_count(r), r["projection"])].append(r)
    fig, (ax_kl, ax_top1) = plt.subplots(1, 2, figsize=(11, 4))
    for (layers, projection), members in sorted(groups.items()):
        members.sort(key=lambda r: r["block_size"])
        blocks = [r["block_size"] for r in members]
        label = f"{layers} layer{'s' if layers > 1 else ''}, {projection}"
        ax_kl.errorbar(blocks, [r["kl"] for r in members], yerr=[r["stderr"]["kl"] for r in members],
                       marker="o", capsize=3, label=label)
        ax_top1.plot(blocks, [r["top1_all_positions"] for r in members], marker="o", label=label)
    for r in rows:  # the zero-MLP references as horizontal lines
        if r["projection"] == "zero":
            ax_kl.axhline(r["kl"], linestyle=":", color="grey")
            ax_kl.annotate(f"MLP zeroed, {layer_count(r)} layers", (ax_kl.get_xlim()[0], r["kl"]), fontsize=7,
                           color="grey", va="bottom")
    for ax in (ax_kl, ax_top1):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("block size b")
        ax.grid(alpha=0.3)
    ax_kl.set_yscale("log")
    ax_kl.set_ylabel("KL(teacher || student), last token [nats]")
    ax_top1.set_ylabel("top-1 agreement, all positions")
    ax_top1.set_ylim(-0.05, 1.05)
    if ax_kl.get_legend_handles_labels()[0]:
        ax_kl.legend(fontsize=7)
    fig.suptitle("Quality against block size")
    save(fig, os.path.join(out, "quality_vs_block.png"))


def plot_quality_vs_layers(rows, out):
    groups = defaultdict(list)
    for r in rows:
        if r["projection"] != "dense":
            groups[(r["projection"], r["block_size"] if r["projection"] != "zero" else 0)].append(r)
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for (projection, block), members in sorted(groups.items()):
        members.sort(key=layer_count)
        if len(members) < 2:
            continue
        label = projection if projection == "zero" else f"{projection}, b={block}"
        ax.errorbar([layer_count(r) for r in members], [r["kl"] for r in members],
                    yerr=[r["stderr"]["kl"] for r in members], marker="o", capsize=3, label=label)
    ax.set_yscale("log")
    ax.set_xlabel("patched layers")
    ax.set_ylabel("KL(teacher || student), last token [nats]")
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    ax.set_title("Quality against the number of patched layers")
    save(fig, os.path.join(out, "quality_vs_layers.png"))


def plot_throughput(rows, out):
    names = [r["name"] + ("" if r["projection"] in ("dense", "zero") else f" (b={r['block_size']})") for r in rows]
    fig, (ax_p, ax_d) = plt.subplots(1, 2, figsize=(12, 0.35 * len(rows) + 1.5), sharey=True)
    y = range(len(rows))
    ax_p.barh(y, [r["prefill_tokens_per_s"] for r in rows], xerr=[r["prefill_stddev"] for r in rows])
    ax_d.barh(y, [r["decode_tokens_per_s"] for r in rows], xerr=[r["decode_stddev"] for r in rows], color="C1")
    ax_p.set_yticks(list(y))
    ax_p.set_yticklabels(names, fontsize=7)
    ax_p.invert_yaxis()
    ax_p.set_xlabel("prefill tokens/s")
    ax_d.set_xlabel("decode tokens/s")
    for ax in (ax_p, ax_d):
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle("Throughput (mean ± stddev)")
    save(fig, os.path.join(out, "throughput.png"))


def plot_sensitivity(study, out):
    layers = study["layers"]
    index = [entry["layer"] for entry in layers]
    chosen = set(study["chosen"]["layer_list"])
    fig, (ax_kl, ax_ppl) = plt.subplots(1, 2, figsize=(11, 4))
    width = 0.4
    ax_kl.bar([i - width / 2 for i in index], [e["selection_kl"] for e in layers], width,
              label="selection windows (ranks the layers)")
    ax_kl.bar([i + width / 2 for i in index], [e["kl_all_positions"] for e in layers], width,
              yerr=[e["kl_all_positions_stderr"] for e in layers], capsize=2, label="evaluation prompts")
    ax_kl.axhline(study["kl_budget"], linestyle=":", color="grey")
    ax_kl.annotate(f"budget {study['kl_budget']:g}", (index[0] - 0.5, study["kl_budget"]), fontsize=7, color="grey",
                   va="bottom")
    ax_kl.set_ylabel("KL(teacher || student), all positions [nats]")
    ax_ppl.bar(index, [e["perplexity_student"] for e in layers],
               color=["C2" if i in chosen else "C7" for i in index])
    ax_ppl.axhline(study["original"]["perplexity_teacher"], linestyle=":", color="grey")
    ax_ppl.set_ylabel("held-out perplexity (green: in the greedy choice)")
    for ax in (ax_kl, ax_ppl):
        ax.set_xlabel("layer patched alone")
        ax.set_xticks(index)
        ax.grid(axis="y", alpha=0.3)
    ax_kl.legend(fontsize=7)
    fig.suptitle(f"Per-layer sensitivity: {study['projection']}, b={study['block_size']}; greedy choice "
                 f"{sorted(chosen) or 'none'}")
    save(fig, os.path.join(out, "sensitivity.png"))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", help="results.json of a sweep, or sensitivity.json of a sensitivity scan")
    parser.add_argument("--out", help="directory for the PNGs (default: beside the JSON file)")
    args = parser.parse_args()
    with open(args.results) as f:
        document = json.load(f)
    out = args.out or os.path.dirname(os.path.abspath(args.results))
    os.makedirs(out, exist_ok=True)
    if "greedy_steps" in document:
        plot_sensitivity(document, out)
        print(f"plot written to {out}")
        return
    rows = document["rows"]
    plot_quality_vs_block(rows, out)
    plot_quality_vs_layers(rows, out)
    plot_throughput(rows, out)
    print(f"plots written to {out}")


if __name__ == "__main__":
    main()
