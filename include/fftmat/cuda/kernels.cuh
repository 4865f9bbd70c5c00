#pragma once
// Custom kernels of the GPU backend (nvcc only). Both compute, for every bin f, the complex
// matrix-vector product of one token (T = 1):
//
//     normal:   y_f[i] = sum_j C_f[i][j] x_f[j]          (i < p, j < q)
//     adjoint:  y_f[j] = sum_i conj(C_f[i][j]) x_f[i]    (j < q, i < p)
//
// with C_f the row-major p x q spectrum of bin f at spectra + f*p*q and the vectors in the
// frequency-major layout of layout.hpp (bin f of block k at f*blocks + k). At T = 1 cuBLAS's
// batched GEMM is a poor fit (one column per bin) and the whole product is a few microseconds of
// memory traffic, so launch count is what matters:
//
//   gemv_bins            one warp per (bin, output block): lanes stride over the reduction index
//                        (contiguous in C for the normal product), then a shuffle reduction.
//   fused_gemv_irdft     one thread block per output block: all bins' dot products for that
//                        block into shared memory, then the inverse real DFT of the block by
//                        direct summation with a twiddle table (b * (b/2+1) multiply-adds per
//                        block, cheap for b <= kFusedMaxBlock). It replaces gemv_bins plus the
//                        cuFFT C2R, so a T = 1 product is two launches: cuFFT R2C and this.

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "../detail/block_layout.hpp"
#include "types.hpp"

namespace fftmat::cuda::detail {

/// Largest block size for which the fused kernel's direct inverse DFT is used.
inline constexpr int kFusedMaxBlock = 512;
/// Threads per block of both kernels (8 warps).
inline constexpr int kThreads = 256;
inline constexpr int kWarps = kThreads / 32;

template <class C>
__device__ __forceinline__ void multiply_add(C& acc, const C& a, const C& x) {
  acc.x += a.x * x.x - a.y * x.y;
  acc.y += a.x * x.y + a.y * x.x;
}

/// acc += conj(a) * x
template <class C>
__device__ __forceinline__ void multiply_add_conj(C& acc, const C& a, const C& x) {
  acc.x += a.x * x.x + a.y * x.y;
  acc.y += a.x * x.y - a.y * x.x;
}

/// A spectrum entry in the arithmetic type: full-precision entries as they are, bfloat16 pairs
/// (SpectrumPrecision::bfloat16, float matrices) widened to float2 exactly.
__device__ __forceinline__ float2 widen(const float2& v) { return v; }
__device__ __forceinline__ double2 widen(const double2& v) { return v; }
__device__ __forceinline__ float2 widen(const __nv_bfloat162& v) { return __bfloat1622float2(v); }

template <class C>
__device__ __forceinline__ C warp_sum(C value) {
  for (int offset = 16; offset > 0; offset >>= 1) {
    value.x += __shfl_down_sync(0xffffffffu, value.x, offset);
    value.y += __shfl_down_sync(0xffffffffu, value.y, offset);
  }
  return value;  // complete in lane 0
}

/// One warp's dot product for output `out` of bin `f`; the full sum lands in lane 0. S: the
/// stored spectrum type (C, or __nv_bfloat162 for C = float2).
template <bool Adjoint, class S, class C>
__device__ __forceinline__ C bin_dot(const S* __restrict__ spectra, const C* __restrict__ x, long long f, int out,
                                     int p, int q, int lane) {
  const S* bin = spectra + f * p * q;
  C acc;
  acc.x = 0;
  acc.y = 0;
  if (!Adjoint) {
    const S* row = bin + static_cast<long long>(out) * q;  // C_f[out][:], contiguous
    const C* xf = x + f * q;
    for (int j = lane; j < q; j += 32) multiply_add(acc, widen(row[j]), xf[j]);
  } else {
    const C* xf = x + f * p;
    for (int i = lane; i < p; i += 32) {
      multiply_add_conj(acc, widen(bin[static_cast<long long>(i) * q + out]), xf[i]);
    }
  }
  return warp_sum(acc);
}

/// Grid: bins * ceil(outputs / kWarps) blocks of kThreads; outputs = Adjoint ? q : p.
/// y: bins * outputs values, frequency-major.
template <bool Adjoint, class S, class C>
__global__ void __launch_bounds__(kThreads)
    gemv_bins(const S* __restrict__ spectra, const C* __restrict__ x, C* __restrict__ y, int p, int q) {
  const int outputs = Adjoint ? q : p;
  const int tiles = (outputs + kWarps - 1) / kWarps;
  const long long f = blockIdx.x / tiles;
  const int out = (blockIdx.x % tiles) * kWarps + threadIdx.x / 32;
  const int lane = threadIdx.x % 32;
  if (out >= outputs) return;  // a whole warp leaves together: the shuffles stay converged
  const C sum = bin_dot<Adjoint>(spectra, x, f, out, p, q, lane);
  if (lane == 0) y[f * outputs + out] = sum;
}

/// Grid: one block of kThreads per output block (p, or q for the adjoint). Dynamic shared
/// memory: (b + bins) * sizeof(C). twiddles[m] = (cos 2 pi m / b, sin 2 pi m / b), m < b.
/// y: the token's output vector (outputs * b reals).
template <bool Adjoint, class Real, class S, class C>
__global__ void __launch_bounds__(kThreads)
    fused_gemv_irdft(const S* __restrict__ spectra, const C* __restrict__ x, const C* __restrict__ twiddles,
                     Real* __restrict__ y, int p, int q, int b) {
  extern __shared__ unsigned char shared_raw[];
  C* s_twiddles = reinterpret_cast<C*>(shared_raw);
  C* s_bins = s_twiddles + b;
  const int bins = b / 2 + 1;
  const int out = blockIdx.x;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;

  for (int m = threadIdx.x; m < b; m += blockDim.x) s_twiddles[m] = twiddles[m];
  for (int f = warp; f < bins; f += kWarps) {
    const C sum = bin_dot<Adjoint>(spectra, x, f, out, p, q, lane);
    if (lane == 0) s_bins[f] = sum;
  }
  __syncthreads();

  // y[r] = sum_f w_f Re(Y_f e^{2 pi i f r / b}), w_f = 1 for the DC and Nyquist bins, 2 otherwise:
  // the unnormalised inverse real DFT, as cuFFT's C2R (imaginary parts of DC/Nyquist ignored;
  // the 1/b is folded into the spectra). m tracks f*r mod b without a division.
  for (int r = threadIdx.x; r < b; r += blockDim.x) {
    Real sum = s_bins[0].x;
    int m = 0;
    for (int f = 1; f < bins; ++f) {
      m += r;
      if (m >= b) m -= b;
      const C w = s_twiddles[m];
      const C v = s_bins[f];
      const Real term = v.x * w.x - v.y * w.y;
      sum += fftmat::detail::is_real_bin(f, b) ? term : 2 * term;
    }
    y[static_cast<long long>(out) * b + r] = sum;
  }
}

/// Complex conjugate, for Thrust (the spectra of A^T are the conjugates of those of A).
template <class C>
struct Conjugate {
  __host__ __device__ C operator()(const C& v) const {
    C result;
    result.x = v.x;
    result.y = -v.y;
    return result;
  }
};

/// A real value as a complex one: the "spectrum" of a length-1 block (cuFFT has no size-1 plans
/// to rely on, so b = 1 transforms are Thrust transforms).
template <class Real, class C>
struct ToComplex {
  __host__ __device__ C operator()(Real v) const {
    C result;
    result.x = v;
    result.y = 0;
    return result;
  }
};

/// The real part: the inverse transform of a length-1 block.
template <class Real, class C>
struct RealPart {
  __host__ __device__ Real operator()(const C& v) const { return v.x; }
};

}  // namespace fftmat::cuda::detail
