#!/usr/bin/env python3
"""Writes tests/data/llama/perplexity/: logits of a "base" and a "student" model at 240 scored
positions (float32, vocabulary 48), the true next tokens, and llama-perplexity's statistics of them
computed independently in float64 with numpy (needs only numpy, scripts/requirements-plots.txt).
The C++ test (tests/llama/test_perplexity.cpp) feeds the same logits to PerplexityAccumulator.

Definitions, as llama.cpp's tools/perplexity/perplexity.cpp (kl_divergence) has them, in numpy's
terms: NLL = -log softmax(logits)[token]; PPL = exp(mean NLL) with standard error PPL * SE, SE the
standard error of the mean (std(ddof=1) / sqrt(n)); Cor(ln PPL(Q), ln PPL(base)) = numpy.corrcoef
of the two NLL series; KLD = sum p_base (log p_base - log p_Q) per position; Δp = p_Q - p_base of
the true token; percentiles numpy.quantile(method="linear"), numpy's default.
"""

import json
import os
import sys

import numpy as np

POSITIONS, VOCAB = 240, 48


def log_softmax(x):
    x = x.astype(np.float64)
    top = x.max(axis=1, keepdims=True)
    return x - top - np.log(np.exp(x - top).sum(axis=1, keepdims=True))


def mean_and_error(values):
    return {"value": float(values.mean()), "stderr": float(values.std(ddof=1) / np.sqrt(len(values)))}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "tests", "data",
                                                             "llama", "perplexity")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20)
    base = (rng.standard_normal((POSITIONS, VOCAB)) * 2.0).astype(np.float32)
    # A student near the base, further away at some positions, so that the KLD spreads out.
    scale = np.where(rng.random((POSITIONS, 1)) < 0.1, 1.5, 0.3)
    student = (base + scale * rng.standard_normal((POSITIONS, VOCAB))).astype(np.float32)
    # True tokens: mostly likely ones under the base, so that Δp is not centred on zero alone.
    targets = np.where(rng.random(POSITIONS) < 0.5, base.argmax(axis=1), rng.integers(0, VOCAB, POSITIONS))
    np.save(os.path.join(out, "base.npy"), base)
    np.save(os.path.join(out, "student.npy"), student)

    lp_base, lp_q = log_softmax(base), log_softmax(student)
    rows = np.arange(POSITIONS)
    nll_base, nll_q = -lp_base[rows, targets], -lp_q[rows, targets]
    n = POSITIONS
    se_q, se_base = nll_q.std(ddof=1) / np.sqrt(n), nll_base.std(ddof=1) / np.sqrt(n)
    cov_of_means = np.cov(nll_q, nll_base, ddof=1)[0, 1] / n
    ppl_q, ppl_base = np.exp(nll_q.mean()), np.exp(nll_base.mean())
    ln_ratio_se = np.sqrt(se_q**2 + se_base**2 - 2 * cov_of_means)
    kld = (np.exp(lp_base) * (lp_base - lp_q)).sum(axis=1)
    delta_p = np.exp(-nll_q) - np.exp(-nll_base)
    same = float((base.argmax(axis=1) == student.argmax(axis=1)).mean())
    kld_q = [1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0]
    dp_q = [1, 0.999, 0.99, 0.95, 0.9, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01, 0.001, 0]
    mse = mean_and_error(delta_p**2)
    reference = {
        "generator": f"tools/make_perplexity_reference.py, numpy {np.__version__}",
        "targets": targets.tolist(),
        "ppl_q": {"value": float(ppl_q), "stderr": float(ppl_q * se_q)},
        "ppl_base": {"value": float(ppl_base), "stderr": float(ppl_base * se_base)},
        "ln_ppl_ratio": {"value": float(nll_q.mean() - nll_base.mean()), "stderr": float(ln_ratio_se)},
        "ln_ppl_correlation": float(np.corrcoef(nll_q, nll_base)[0, 1]),
        "kld": mean_and_error(kld),
        "kld_quantiles": [float(np.quantile(kld, q)) for q in kld_q],
        "delta_p": mean_and_error(delta_p),
        "delta_p_quantiles": [float(np.quantile(delta_p, q)) for q in dp_q],
        "delta_p_rms": {"value": float(np.sqrt(mse["value"])), "stderr": float(mse["stderr"] / (2 * np.sqrt(mse["value"])))},
        "same_top": {"value": same, "stderr": float(np.sqrt(same * (1 - same) / (n - 1)))},
    }
    with open(os.path.join(out, "reference.json"), "w") as f:
        json.dump(reference, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
