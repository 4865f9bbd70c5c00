#pragma once
// Custom kernels of the GPU backend (nvcc only). Both compute, for every bin f, the complex
// matrix-vector product of one token (T = 1):
//
//     normal:   y_f[i] = sum_j C_f[i][j] x_f[j]          (i < p, j < q)
//     adjoint:  y_f[j] = sum_i conj(C_f[i][j]) x_f[i]    (j < q, i < p)
//
// with C_f the row-major p x q spectrum of bin f at spectra + f*p*q (the inverse DFT's 1/b folded
// in). At T = 1 cuBLAS's batched GEMM is a poor fit (one column per bin) and the whole product is
// a few microseconds of memory traffic, so launch count and filling the GPU are what matter:
//
//   one_token_product    the whole product in one launch, no cuFFT: input DFT, per-bin products
//                        and inverse DFT, split over tiles x bins thread blocks (layout.hpp,
//                        OneTokenPlan), the last block of each tile finishing it.
//   gemv_bins            the per-bin products alone, one warp per (bin, output block), between
//                        cuFFT R2C and C2R, for shapes the one-launch plan does not fit (b > 512,
//                        or more input blocks than shared memory holds).

#include <cooperative_groups.h>
#include <cuda/barrier>
#include <cuda/ptx>
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <nv/target>

#include <cstddef>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "../detail/block_layout.hpp"
#include "layout.hpp"
#include "types.hpp"

namespace fftmat::cuda::detail {

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

/// A stored spectrum entry as cuda::memcpy_async copies it: that requires a trivially copyable
/// type, which __nv_bfloat162 (user-provided constructors) is not, so it goes as its 4-byte bits.
template <class S>
struct EntryBits {
  using type = S;
};
template <>
struct EntryBits<__nv_bfloat162> {
  using type = unsigned;
  static_assert(sizeof(__nv_bfloat162) == sizeof(unsigned) && alignof(__nv_bfloat162) == alignof(unsigned));
};

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

/// Grid: plan.grid() blocks of kThreads, dynamic shared memory plan.shared_bytes (layout.hpp).
/// x: the token's input (in_blocks * b reals; it must not overlap y, which other thread blocks
/// write while this one still reads x); twiddles[m] = (cos 2 pi m / b, sin 2 pi m / b), m < b;
/// partial: bins * out_blocks values of scratch; arrivals: plan.tiles counters, zero before the
/// launch and zero again after it (the last block of a tile resets its counter), so consecutive
/// launches and graph replays on one stream can share them; y: out_blocks * b reals.
template <bool Adjoint, class Real, class S, class C>
__global__ void __launch_bounds__(kThreads)
    one_token_product(const S* __restrict__ spectra, const Real* __restrict__ x, const C* __restrict__ twiddles,
                      C* __restrict__ partial, unsigned* __restrict__ arrivals, Real* __restrict__ y, int p, int q,
                      int b, OneTokenPlan plan) {
  namespace cg = cooperative_groups;
  extern __shared__ __align__(16) unsigned char shared_raw[];
  // Static shared memory, within layout.hpp's kOneTokenStaticSharedBytes. The barrier is
  // initialised by init() below, not by a constructor, as the CUDA Programming Guide's examples
  // declare it (hence the diagnostic about dynamic initialisation is silenced here).
  __shared__ bool last_of_tile;
#pragma nv_diagnostic push
#pragma nv_diag_suppress static_var_with_dynamic_init
  __shared__ ::cuda::barrier<::cuda::thread_scope_block> rows_staged;
#pragma nv_diagnostic pop
  C* s_twiddles = reinterpret_cast<C*>(shared_raw);
  C* s_input = reinterpret_cast<C*>(shared_raw + plan.input_offset);
  unsigned char* s_region = shared_raw + plan.region_offset;

  const int bins = plan.bins;
  const int in_blocks = Adjoint ? p : q, out_blocks = Adjoint ? q : p;
  const int tile = static_cast<int>(blockIdx.x) / bins, f = static_cast<int>(blockIdx.x) % bins;
  const int first = tile * plan.tile_blocks;
  const int count = min(plan.tile_blocks, out_blocks - first);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const S* bin = spectra + static_cast<long long>(f) * p * q;
  const cg::thread_block block = cg::this_thread_block();

  // 1. Stage the tile's rows of C_f (contiguous in the normal product) while step 2 runs, with
  //    the asynchronous copy the GPU offers (CUDA Programming Guide, "Asynchronous Data Copies"):
  //    on sm_90 and later, rows 16-byte aligned in size and place (plan.aligned_rows) go as one
  //    bulk copy issued by one thread, whose bytes the barrier counts; otherwise each thread
  //    issues cp.async (sm_80 and later) or plain copies. Every thread arrives at the barrier in
  //    step 2 and waits there for the bytes.
  S* s_spectra = reinterpret_cast<S*>(s_region);
  if constexpr (!Adjoint) {
    if (threadIdx.x == 0) {
      init(&rows_staged, static_cast<std::ptrdiff_t>(blockDim.x));
      // The bulk copy completes on the barrier through the async proxy, which must see it
      // initialised (CUDA Programming Guide, "Using TMA to transfer one-dimensional arrays").
      NV_IF_TARGET(NV_PROVIDES_SM_90, (::cuda::ptx::fence_proxy_async(::cuda::ptx::space_shared);));
    }
    __syncthreads();
    using Bits = typename EntryBits<S>::type;
    Bits* destination = reinterpret_cast<Bits*>(s_spectra);
    const Bits* rows = reinterpret_cast<const Bits*>(bin + static_cast<long long>(first) * q);
    const std::size_t bytes = sizeof(S) * static_cast<std::size_t>(count) * static_cast<std::size_t>(q);
    if (plan.aligned_rows) {
      ::cuda::memcpy_async(block, destination, rows, ::cuda::aligned_size_t<16>(bytes), rows_staged);
    } else {
      ::cuda::memcpy_async(block, destination, rows, bytes, rows_staged);
    }
  }
  for (int m = threadIdx.x; m < b; m += blockDim.x) s_twiddles[m] = twiddles[m];
  __syncthreads();

  // 2. Bin f of every input block: x_f[j] = sum_k x[j*b + k] e^{-2 pi i f k / b}, a warp per block
  //    (lanes over k, coalesced), the twiddle of f*k mod b from the table. Lane l visits
  //    k = l, l + 32, ...: its index starts at f*l mod b and steps by f*32 mod b, so the loop
  //    needs no division.
  const int twiddle_start = (f * lane) % b, twiddle_step = (f * 32) % b;
  for (int j = warp; j < in_blocks; j += kWarps) {
    const Real* xj = x + static_cast<long long>(j) * b;
    C acc;
    acc.x = 0;
    acc.y = 0;
    int m = twiddle_start;
    for (int k = lane; k < b; k += 32) {
      const C w = s_twiddles[m];
      const Real v = xj[k];
      acc.x += v * w.x;
      acc.y -= v * w.y;
      m += twiddle_step;
      if (m >= b) m -= b;
    }
    acc = warp_sum(acc);
    if (lane == 0) s_input[j] = acc;
  }
  if constexpr (!Adjoint) rows_staged.arrive_and_wait();
  __syncthreads();

  // 3. The tile's outputs of bin f, a warp each, into global scratch (frequency-major).
  for (int o = warp; o < count; o += kWarps) {
    C acc;
    acc.x = 0;
    acc.y = 0;
    if (!Adjoint) {
      const S* row = s_spectra + static_cast<long long>(o) * q;
      for (int j = lane; j < q; j += 32) multiply_add(acc, widen(row[j]), s_input[j]);
    } else {
      const int out = first + o;
      for (int i = lane; i < p; i += 32) multiply_add_conj(acc, widen(bin[static_cast<long long>(i) * q + out]), s_input[i]);
    }
    acc = warp_sum(acc);
    if (lane == 0) partial[static_cast<long long>(f) * out_blocks + first + o] = acc;
  }

  // 4. Arrival: the writes above are made visible device-wide before the counter moves, so the
  //    block that sees the count reach `bins` reads every bin of the tile (CUDA Programming
  //    Guide, "Memory Fence Functions", the sum-reduction example).
  __threadfence();
  __syncthreads();
  if (threadIdx.x == 0) last_of_tile = atomicAdd(&arrivals[tile], 1u) == static_cast<unsigned>(bins - 1);
  __syncthreads();
  if (!last_of_tile) return;
  __threadfence();

  // 5. The last block of the tile: gather every bin of the tile's outputs (through L2: another
  //    block wrote them), reset the counter for the next launch, and write the inverse DFTs
  //    y[o*b + r] = sum_f w_f Re(Y_f[o] e^{2 pi i f r / b}), w_f = 1 for the DC and Nyquist bins and
  //    2 otherwise -- the unnormalised inverse real DFT, as cuFFT's C2R (imaginary parts of DC and
  //    Nyquist ignored). m tracks f*r mod b without a division.
  C* s_bins = reinterpret_cast<C*>(s_region);  // bins x count; the staged rows are no longer read
  for (int e = threadIdx.x; e < bins * count; e += blockDim.x) {
    const int g = e / count, o = e % count;
    s_bins[e] = __ldcg(partial + static_cast<long long>(g) * out_blocks + first + o);
  }
  if (threadIdx.x == 0) arrivals[tile] = 0;
  __syncthreads();
  for (int e = threadIdx.x; e < count * b; e += blockDim.x) {
    const int o = e / b, r = e % b;
    Real sum = s_bins[o].x;
    int m = 0;
    for (int g = 1; g < bins; ++g) {
      m += r;
      if (m >= b) m -= b;
      const C w = s_twiddles[m];
      const C v = s_bins[g * count + o];
      const Real term = v.x * w.x - v.y * w.y;
      sum += fftmat::detail::is_real_bin(g, b) ? term : 2 * term;
    }
    y[static_cast<long long>(first + o) * b + r] = sum;
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
