#!/usr/bin/env python3
"""The block-circulant product as a PyTorch user writes it, timed like benchmarks/cpu/bench_cpu.cpp.

    Y = irfft( einsum('pqf,tqf->tpf', C, rfft(X)) )      C: cached spectra of the p x q blocks

for a 11008x4096 matrix (the Llama-2-7B gate/up shape) by default, float32, on the CPU with a given
number of threads. As in the C++ suite, the spectra are rotated over copies that together exceed
twice the last-level cache (at least 64 MiB), so that no iteration finds the previous one's in cache. Prints the median time per product
in ms for each token count, after the BLAS and OpenMP libraries torch runs on and the SIMD level of
its own kernels: a dense baseline that falls back to older kernels (docs/llama.md, "GEMM kernels")
shows there. Needs torch (pip install torch --index-url https://download.pytorch.org/whl/cpu) and
threadpoolctl (tools/requirements.txt); the comparison is in docs/benchmarks.md.

    python3 tools/bench_torch_recipe.py [--m 11008] [--n 4096] [--b 64] [--tokens 1 16 256] [--threads 2]
"""

import argparse
import glob
import math
import statistics
import time

import torch
from threadpoolctl import threadpool_info


def libraries_in_use():
    """Torch's BLAS and SIMD level, and each BLAS/OpenMP library loaded with the kernels it chose."""
    build = dict(item.split("=", 1) for item in torch.__config__.show().replace(",", "\n").split() if "=" in item)
    lines = [f"torch BLAS: {build.get('BLAS_INFO', 'unknown')}, CPU capability: {torch.backends.cpu.get_cpu_capability()}"]
    for library in threadpool_info():  # only shared libraries: a BLAS linked statically into torch is not listed
        lines.append(f"{library['internal_api']} {library.get('version')} ({library['filepath']}): "
                     f"{library.get('architecture', '-')}, {library['num_threads']} threads")
    return lines


def rotation_bytes():
    """Twice the largest cache (Linux sysfs), at least 64 MiB: what benchmarks/cpu rotates over."""
    largest, size = 0, 0
    for index in glob.glob("/sys/devices/system/cpu/cpu0/cache/index*"):
        try:
            level = int(open(f"{index}/level").read())
            text = open(f"{index}/size").read().strip()
        except (OSError, ValueError):
            continue
        unit = {"K": 2**10, "M": 2**20}.get(text[-1], 1)
        if level >= largest:
            largest, size = level, int(text.rstrip("KM")) * unit
    return max(64 * 2**20, 2 * size)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--m", type=int, default=11008)
    parser.add_argument("--n", type=int, default=4096)
    parser.add_argument("--b", type=int, default=64)
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 16, 256])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=2.0, help="time spent per token count")
    args = parser.parse_args()
    if args.m % args.b or args.n % args.b:
        parser.error(f"b = {args.b} must divide m = {args.m} and n = {args.n}")
    torch.set_num_threads(args.threads)
    p, q, b = args.m // args.b, args.n // args.b, args.b

    generator = torch.Generator().manual_seed(0)
    first_columns = torch.randn(p, q, b, generator=generator) / math.sqrt(args.n)
    spectra = torch.fft.rfft(first_columns, dim=-1)  # p x q x (b/2+1), computed once, as fftmat caches it
    copies = max(1, math.ceil(rotation_bytes() / (spectra.numel() * spectra.element_size())))
    rotation = [spectra.clone() for _ in range(copies)]

    print(f"torch {torch.__version__}, {args.threads} threads, {args.m}x{args.n}, b = {b}, "
          f"{copies} copies of the {spectra.numel() * 8 / 1e6:.2f} MB spectra")
    print("\n".join(libraries_in_use()))
    print("| T | median ms | iterations |\n|---|---|---|")
    with torch.inference_mode():
        for tokens in args.tokens:
            x = torch.randn(tokens, args.n, generator=generator)
            times = []
            start = time.perf_counter()
            k = 0
            while time.perf_counter() - start < args.seconds or len(times) < 5:
                tic = time.perf_counter()
                x_hat = torch.fft.rfft(x.view(tokens, q, b), dim=-1)
                y_hat = torch.einsum("pqf,tqf->tpf", rotation[k % copies], x_hat)
                y = torch.fft.irfft(y_hat, n=b, dim=-1).reshape(tokens, args.m)
                times.append(time.perf_counter() - tic)
                k += 1
            assert y.shape == (tokens, args.m)
            print(f"| {tokens} | {1e3 * statistics.median(times[1:]):.3f} | {len(times)} |")


if __name__ == "__main__":
    main()
