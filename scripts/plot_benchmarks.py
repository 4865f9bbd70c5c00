#!/usr/bin/env python3
"""Turns the JSON of scripts/run_benchmarks.sh into PNG figures and a markdown table.

    python3 scripts/plot_benchmarks.py [docs/data/bench_cpu.json] [--figures docs/figures]
                                       [--markdown docs/benchmarks.md] [--prefix bench_]

Figures (docs/figures/<prefix>*.png):
  time_vs_b    time of one apply against block size b, per Llama shape and token count T, with the
               dense baselines (Eigen, OpenBLAS) as horizontal lines
  speedup      speedup of the block-circulant apply over the best dense baseline of the same run
  stages       rfft / per-bin product / irfft times of 11008x4096 against b, per T
  scaling      (with --full data) time against n for square matrices, b = 64

With --markdown, the results table between the markers
    <!-- bench-table:begin --> and <!-- bench-table:end -->
of that file is regenerated, each time beside the cost model's prediction (docs/cost_model.md): a
roofline max(flops / P, bytes / B) with P and B measured in the same run (P: the best dense GEMM
rate, B: the best of the stream-read and dense-GEMV bandwidths).
"""
import argparse
import json
import math
import os
import re
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

LLAMA = ["11008x4096", "4096x11008", "4096x4096"]
TOKENS = [1, 16, 256]


def load(path):
    """Median wall time (ms) and counters of every benchmark, keyed by its short name."""
    with open(path) as f:
        data = json.load(f)
    runs, cvs = {}, {}
    for b in data["benchmarks"]:
        name = b.get("run_name", b["name"])
        name = re.sub(r"/min_time:[^/]*", "", name).replace("/real_time", "")
        agg = b.get("aggregate_name")
        scale = {"ns": 1e-6, "us": 1e-3, "ms": 1.0, "s": 1e3}[b.get("time_unit", "ns")]
        if agg == "cv":
            cvs[name] = b["real_time"]
            continue
        if agg not in (None, "median"):
            continue
        if agg is None and name in runs and runs[name].get("_agg") == "median":
            continue
        entry = dict(b)
        entry["ms"] = b["real_time"] * scale
        entry["_agg"] = agg
        runs[name] = entry
    for name, cv in cvs.items():
        if name in runs:
            runs[name]["cv"] = cv
    return data.get("context", {}), runs


def parse(name):
    """('apply', 'bc', m, n, b, T) from 'apply/bc/11008x4096/b64/T1' (b = 0 for dense)."""
    parts = name.split("/")
    if len(parts) < 4 or parts[0] not in ("apply", "scale", "stage"):
        return None
    m, n = (int(v) for v in parts[2].split("x"))
    b = int(parts[3][1:]) if parts[3].startswith("b") else 0
    T = int(parts[-1][1:]) if parts[-1].startswith("T") else 0
    return parts[0], parts[1], m, n, b, T


def rates(runs):
    """Achievable compute (flop/s) and bandwidth (byte/s) measured in this run."""
    peak = max((r["GFLOPS"] * 1e9 for k, r in runs.items()
                if re.match(r"(apply|scale)/(eigen|blas)/", k) and r.get("T", 0) >= 16), default=float("nan"))
    bws = [r.get("bytes_per_second", 0) for k, r in runs.items()
           if k == "machine/stream_read" or (re.match(r"(apply|scale)/(eigen|blas)/", k) and r.get("T") == 1)]
    return peak, max(bws, default=float("nan"))


def model(m, n, b, T):
    """Cost model (docs/cost_model.md): flops and bytes of dense and block-circulant products."""
    dense = dict(flops=2.0 * m * n * T, bytes=4.0 * m * n + 4.0 * (m + n) * T)
    if not b:
        return dense
    p, q, bins = m // b, n // b, b // 2 + 1
    fft = 2.5 * b * math.log2(b) * (p + q) * T
    prod = 8.0 * bins * p * q * T
    spectra = 4.0 * p * q * b  # packed: DC and Nyquist real, so b reals per block (= the parameters)
    return dict(flops=fft + prod, fft=fft, prod=prod, bytes=spectra + 4.0 * (m + n) * T)


def predict(cost, peak, bw):
    return 1e3 * max(cost["flops"] / peak, cost["bytes"] / bw)


BLOCK_CIRCULANT = ("bc", "bcbf16", "bcref")  # the library, with bfloat16 spectra, the first implementation


def collect(runs, group="apply"):
    """({impl: {(shape, T): {b: ms}}} for the block-circulant impls, {(shape, T): {impl: ms}} for dense)."""
    bc = {impl: defaultdict(dict) for impl in BLOCK_CIRCULANT}
    dense = defaultdict(dict)
    for name, r in runs.items():
        p = parse(name)
        if not p or p[0] != group:
            continue
        _, impl, m, n, b, T = p
        shape = f"{m}x{n}"
        if impl in bc:
            bc[impl][(shape, T)][b] = r["ms"]
        else:
            dense[(shape, T)][impl] = r["ms"]
    return bc, dense


def fig_time_vs_b(runs, path):
    bc, dense = collect(runs)
    fig, axes = plt.subplots(len(TOKENS), len(LLAMA), figsize=(13, 10), squeeze=False)
    for i, T in enumerate(TOKENS):
        for j, shape in enumerate(LLAMA):
            ax = axes[i][j]
            for impl, style, color, label in (("bc", "o-", "C0", "block-circulant"),
                                              ("bcbf16", "s--", "C1", "block-circulant, bfloat16 spectra"),
                                              ("bcref", "x:", "gray", "block-circulant (first impl.)")):
                d = bc[impl].get((shape, T), {})
                if d:
                    bs = sorted(d)
                    ax.plot(bs, [d[b] for b in bs], style, color=color, label=label)
            for impl, style in (("eigen", "--"), ("blas", "-.")):
                if impl in dense.get((shape, T), {}):
                    ax.axhline(dense[(shape, T)][impl], linestyle=style, color="C3" if impl == "eigen" else "C2",
                               label=f"dense {'Eigen' if impl == 'eigen' else 'OpenBLAS'}")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{shape}, T = {T}")
            ax.set_xlabel("block size b")
            ax.set_ylabel("time per apply [ms]")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_speedup(runs, path):
    bc, dense = collect(runs)
    fig, axes = plt.subplots(1, len(LLAMA), figsize=(14, 4.2), squeeze=False)
    for j, shape in enumerate(LLAMA):
        ax = axes[0][j]
        for k, T in enumerate(TOKENS):
            base = dense.get((shape, T), {})
            for impl, style, label in (("bc", "o-", f"T = {T}"), ("bcbf16", "s--", f"T = {T}, bfloat16 spectra")):
                d = bc[impl].get((shape, T), {})
                if not d or not base:
                    continue
                best = min(base.values())
                bs = sorted(d)
                ax.plot(bs, [best / d[b] for b in bs], style, color=f"C{k}", label=label)
        if shape == "11008x4096":
            ax.plot([64], [60], "v", color="C0", markersize=9, label="target T=1 (60x)")
            ax.plot([64], [12], "v", color="C2", markersize=9, label="target T=256 (12x)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{shape}: speedup over best dense")
        ax.set_xlabel("block size b")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def fig_stages(runs, path):
    stages = defaultdict(dict)
    for name, r in runs.items():
        m = re.match(r"stage/(rfft|product|irfft)/11008x4096/b(\d+)/T(\d+)$", name)  # float spectra
        if m:
            stages[(int(m.group(3)), int(m.group(2)))][m.group(1)] = r["ms"]
    if not stages:
        return False
    fig, axes = plt.subplots(1, len(TOKENS), figsize=(14, 4.2), squeeze=False)
    for j, T in enumerate(TOKENS):
        ax = axes[0][j]
        bs = sorted(b for (t, b) in stages if t == T)
        bottom = [0.0] * len(bs)
        for stage, color in (("rfft", "C0"), ("product", "C1"), ("irfft", "C2")):
            vals = [stages[(T, b)].get(stage, 0.0) for b in bs]
            ax.bar([str(b) for b in bs], vals, bottom=bottom, color=color, label=stage)
            bottom = [x + y for x, y in zip(bottom, vals)]
        ax.set_title(f"11008x4096 stages, T = {T}")
        ax.set_xlabel("block size b")
        ax.set_ylabel("time [ms]")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def fig_scaling(runs, path):
    all_bc, dense = collect(runs, "scale")
    bc = all_bc["bc"]
    if not bc:
        return False
    fig, axes = plt.subplots(1, len(TOKENS), figsize=(14, 4.2), squeeze=False)
    for j, T in enumerate(TOKENS):
        ax = axes[0][j]
        ns = sorted(int(s.split("x")[0]) for (s, t) in bc if t == T)
        for b, style in ((16, "o-"), (64, "s-"), (256, "^-")):
            pts = [(n, bc[(f"{n}x{n}", T)].get(b)) for n in ns]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                ax.plot(*zip(*pts), style, label=f"block-circulant b={b}")
        for impl, style in (("eigen", "--"), ("blas", "-.")):
            pts = [(n, dense.get((f"{n}x{n}", T), {}).get(impl)) for n in ns]
            pts = [(n, v) for n, v in pts if v]
            if pts:
                ax.plot(*zip(*pts), style, label=f"dense {impl}")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"square n x n, T = {T}")
        ax.set_xlabel("n")
        ax.set_ylabel("time [ms]")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def fmt(ms):
    return f"{ms:.3g}" if ms < 100 else f"{ms:.0f}"


def table(context, runs):
    peak, bw = rates(runs)
    all_bc, dense = collect(runs)
    bc, bf16, ref = all_bc["bc"], all_bc["bcbf16"], all_bc["bcref"]
    lines = [
        f"Rates used by the cost model in this run: P = {peak / 1e9:.1f} GFLOP/s (best dense GEMM), "
        f"B = {bw / 1e9:.2f} GB/s (best of stream read and dense GEMV). Times are medians in ms; "
        "'model' is the roofline max(flops/P, bytes/B); cv is the run-to-run coefficient of variation.",
        "",
        "| shape | T | b | block-circ. ms (cv) | model ms | first impl. ms | best dense ms (which) | dense model ms | speedup | bytes ratio | bfloat16 spectra ms (speedup) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for shape in LLAMA:
        m, n = (int(v) for v in shape.split("x"))
        for T in TOKENS:
            base = dense.get((shape, T), {})
            if not base:
                continue
            which = min(base, key=base.get)
            best = base[which]
            dcost = model(m, n, 0, T)
            for b in sorted(bc.get((shape, T), {})):
                ms = bc[(shape, T)][b]
                r = runs[f"apply/bc/{shape}/b{b}/T{T}"]
                cv = r.get("cv")
                cost = model(m, n, b, T)
                refms = ref.get((shape, T), {}).get(b)
                bf16ms = bf16.get((shape, T), {}).get(b)
                lines.append(
                    f"| {shape} | {T} | {b} | {fmt(ms)}" + (f" ({cv:.0%})" if cv is not None else "") +
                    f" | {fmt(predict(cost, peak, bw))} | {fmt(refms) if refms else '-'} | {fmt(best)} ({which})"
                    f" | {fmt(predict(dcost, peak, bw))} | **{best / ms:.1f}x** | {dcost['bytes'] / cost['bytes']:.0f}x |"
                    + (f" {fmt(bf16ms)} (**{best / bf16ms:.1f}x**) |" if bf16ms else " - |"))
    return "\n".join(lines)


def other_table(runs):
    lines = ["| benchmark | median ms | rate |", "|---|---|---|"]
    for name in sorted(runs):
        if not re.match(r"(stage/.*/11008x4096/b64/|project/|calib/|machine/)", name):
            continue
        r = runs[name]
        rate = ""
        if "samples_per_second" in r:
            rate = f"{r['samples_per_second']:.3g} samples/s"
        elif "stage_GFLOPS" in r:
            rate = f"{r['stage_GFLOPS']:.2f} GFLOP/s"
        elif "bytes_per_second" in r:
            rate = f"{r['bytes_per_second'] / 1e9:.2f} GB/s"
        lines.append(f"| `{name}` | {fmt(r['ms'])} | {rate} |")
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("json", nargs="?", default=os.path.join(root, "docs/data/bench_cpu.json"))
    ap.add_argument("--figures", default=os.path.join(root, "docs/figures"))
    ap.add_argument("--prefix", default="bench_")
    ap.add_argument("--markdown", help="regenerate the table between the bench-table markers of this file")
    args = ap.parse_args()

    context, runs = load(args.json)
    os.makedirs(args.figures, exist_ok=True)
    out = lambda name: os.path.join(args.figures, f"{args.prefix}{name}.png")  # noqa: E731
    fig_time_vs_b(runs, out("time_vs_b"))
    fig_speedup(runs, out("speedup"))
    fig_stages(runs, out("stages"))
    fig_scaling(runs, out("scaling"))
    text = table(context, runs) + "\n\nStages (11008x4096, b = 64), projection, calibration, machine:\n\n" + other_table(runs)
    if args.markdown:
        with open(args.markdown) as f:
            doc = f.read()
        begin, end = "<!-- bench-table:begin -->", "<!-- bench-table:end -->"
        if begin not in doc or end not in doc:
            sys.exit(f"{args.markdown} has no {begin} ... {end} markers")
        head, rest = doc.split(begin, 1)
        _, tail = rest.split(end, 1)
        with open(args.markdown, "w") as f:
            f.write(head + begin + "\n" + text + "\n" + end + tail)
    else:
        print(text)


if __name__ == "__main__":
    main()
