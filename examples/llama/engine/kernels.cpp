#include "kernels.hpp"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>
#include <type_traits>
#include <vector>

#include <fftmat/threading.hpp>

#include "error.hpp"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>
#define FFTMAT_LLAMA_AVX2 1
#else
#define FFTMAT_LLAMA_AVX2 0
#endif

namespace llama {

float f16_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1fu;
  const std::uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa * 2^-24
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    return sign ? -magnitude : magnitude;
  }
  const std::uint32_t out = exponent == 31 ? sign | 0x7f800000u | (mantissa << 13)       // inf, nan
                                           : sign | ((exponent + 112) << 23) | (mantissa << 13);  // rebias 15 -> 127
  float value;
  std::memcpy(&value, &out, sizeof value);
  return value;
}

float bf16_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t out = static_cast<std::uint32_t>(bits) << 16;
  float value;
  std::memcpy(&value, &out, sizeof value);
  return value;
}

namespace {

// One traits struct per weight dtype: how to widen one element, and (with AVX2) eight.
struct F32Weights {
  using Storage = float;
  static float widen(float w) { return w; }
#if FFTMAT_LLAMA_AVX2
  static __m256 widen8(const float* w) { return _mm256_loadu_ps(w); }
#endif
};

struct F16Weights {
  using Storage = std::uint16_t;
  static float widen(std::uint16_t w) { return f16_to_float(w); }
#if FFTMAT_LLAMA_AVX2
  static __m256 widen8(const std::uint16_t* w) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
  }
#endif
};

struct BF16Weights {
  using Storage = std::uint16_t;
  static float widen(std::uint16_t w) { return bf16_to_float(w); }
#if FFTMAT_LLAMA_AVX2
  static __m256 widen8(const std::uint16_t* w) {  // bf16 is the top half of a float
    const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w)));
    return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
  }
#endif
};

template <class Weights>
void widen(const typename Weights::Storage* w, std::size_t count, float* out) {
  std::size_t k = 0;
#if FFTMAT_LLAMA_AVX2
  for (; k + 8 <= count; k += 8) _mm256_storeu_ps(out + k, Weights::widen8(w + k));
#endif
  for (; k < count; ++k) out[k] = Weights::widen(w[k]);
}

template <class Weights>
float dot(const typename Weights::Storage* w, const float* x, int n) {
  int k = 0;
  float sum = 0.0f;
#if FFTMAT_LLAMA_AVX2
  // Four independent accumulators hide the FMA latency.
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  __m256 acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps();
  for (; k + 32 <= n; k += 32) {
    acc0 = _mm256_fmadd_ps(Weights::widen8(w + k), _mm256_loadu_ps(x + k), acc0);
    acc1 = _mm256_fmadd_ps(Weights::widen8(w + k + 8), _mm256_loadu_ps(x + k + 8), acc1);
    acc2 = _mm256_fmadd_ps(Weights::widen8(w + k + 16), _mm256_loadu_ps(x + k + 16), acc2);
    acc3 = _mm256_fmadd_ps(Weights::widen8(w + k + 24), _mm256_loadu_ps(x + k + 24), acc3);
  }
  for (; k + 8 <= n; k += 8) acc0 = _mm256_fmadd_ps(Weights::widen8(w + k), _mm256_loadu_ps(x + k), acc0);
  const __m256 acc = _mm256_add_ps(_mm256_add_ps(acc0, acc1), _mm256_add_ps(acc2, acc3));
  __m128 half = _mm_add_ps(_mm256_castps256_ps128(acc), _mm256_extractf128_ps(acc, 1));
  half = _mm_add_ps(half, _mm_movehl_ps(half, half));
  half = _mm_add_ss(half, _mm_movehdup_ps(half));
  sum = _mm_cvtss_f32(half);
#endif
  for (; k < n; ++k) sum += Weights::widen(w[k]) * x[k];
  return sum;
}

/// dot() of four consecutive rows of length n with one x: each load of x serves four rows, which
/// matters on cores that split 256-bit loads in two (Zen 1).
template <class Weights>
void dot4(const typename Weights::Storage* w, const float* x, int n, float* out) {
  const auto* w0 = w;
  const auto* w1 = w + n;
  const auto* w2 = w + 2 * static_cast<std::ptrdiff_t>(n);
  const auto* w3 = w + 3 * static_cast<std::ptrdiff_t>(n);
  int k = 0;
  float sums[4] = {0.0f, 0.0f, 0.0f, 0.0f};
#if FFTMAT_LLAMA_AVX2
  // Two accumulators per row: eight independent FMA chains cover the FMA latency.
  __m256 acc[4], odd[4];
  for (int j = 0; j < 4; ++j) acc[j] = odd[j] = _mm256_setzero_ps();
  for (; k + 16 <= n; k += 16) {
    const __m256 xk = _mm256_loadu_ps(x + k), xk8 = _mm256_loadu_ps(x + k + 8);
    acc[0] = _mm256_fmadd_ps(Weights::widen8(w0 + k), xk, acc[0]);
    acc[1] = _mm256_fmadd_ps(Weights::widen8(w1 + k), xk, acc[1]);
    acc[2] = _mm256_fmadd_ps(Weights::widen8(w2 + k), xk, acc[2]);
    acc[3] = _mm256_fmadd_ps(Weights::widen8(w3 + k), xk, acc[3]);
    odd[0] = _mm256_fmadd_ps(Weights::widen8(w0 + k + 8), xk8, odd[0]);
    odd[1] = _mm256_fmadd_ps(Weights::widen8(w1 + k + 8), xk8, odd[1]);
    odd[2] = _mm256_fmadd_ps(Weights::widen8(w2 + k + 8), xk8, odd[2]);
    odd[3] = _mm256_fmadd_ps(Weights::widen8(w3 + k + 8), xk8, odd[3]);
  }
  for (; k + 8 <= n; k += 8) {
    const __m256 xk = _mm256_loadu_ps(x + k);
    acc[0] = _mm256_fmadd_ps(Weights::widen8(w0 + k), xk, acc[0]);
    acc[1] = _mm256_fmadd_ps(Weights::widen8(w1 + k), xk, acc[1]);
    acc[2] = _mm256_fmadd_ps(Weights::widen8(w2 + k), xk, acc[2]);
    acc[3] = _mm256_fmadd_ps(Weights::widen8(w3 + k), xk, acc[3]);
  }
  for (int j = 0; j < 4; ++j) acc[j] = _mm256_add_ps(acc[j], odd[j]);
  // Transpose-add: lane j of the result is the horizontal sum of acc[j].
  const __m256 s01 = _mm256_hadd_ps(acc[0], acc[1]), s23 = _mm256_hadd_ps(acc[2], acc[3]);
  const __m256 s0123 = _mm256_hadd_ps(s01, s23);
  const __m128 total = _mm_add_ps(_mm256_castps256_ps128(s0123), _mm256_extractf128_ps(s0123, 1));
  _mm_storeu_ps(sums, total);
#endif
  for (; k < n; ++k) {
    sums[0] += Weights::widen(w0[k]) * x[k];
    sums[1] += Weights::widen(w1[k]) * x[k];
    sums[2] += Weights::widen(w2[k]) * x[k];
    sums[3] += Weights::widen(w3[k]) * x[k];
  }
  for (int j = 0; j < 4; ++j) out[j] = sums[j];
}

/// Calls body(first, last) on blocks of `block_size` of [0, count), handed out to the OpenMP threads
/// one block at a time: on a shared machine a descheduled thread then holds up one block, not a
/// static share of the work. Runs serially when the whole loop is too small to repay the threads.
template <class Body>
void parallel_blocks(int count, int block_size, double flops, Body&& body) {
  const int blocks = (count + block_size - 1) / block_size;
#ifdef _OPENMP
  const bool worth_it = blocks > 1 && flops > fftmat::parallel_min_flops();
#pragma omp parallel for schedule(dynamic) num_threads(fftmat::max_threads()) if (worth_it)
#else
  (void)flops;
#endif
  for (int b = 0; b < blocks; ++b) body(b * block_size, std::min(count, (b + 1) * block_size));
}

/// Few tokens: every weight row is streamed from memory once, four rows at a time, and reused from
/// cache for each token.
template <class Weights>
void matmul_rows(const typename Weights::Storage* W, int rows, int cols, const float* X, int T, float* Y) {
  constexpr int kBlockRows = 64;  // 512 KB of a 4096-wide fp16 matrix: contiguous enough to prefetch
  parallel_blocks(rows, kBlockRows, 2.0 * rows * cols * T, [&](int first, int last) {
    int r = first;
    for (; r + 4 <= last; r += 4) {
      const auto* four_rows = W + r * static_cast<std::ptrdiff_t>(cols);
      for (int t = 0; t < T; ++t) {
        float out[4];
        dot4<Weights>(four_rows, X + static_cast<std::ptrdiff_t>(t) * cols, cols, out);
        std::copy(out, out + 4, Y + static_cast<std::ptrdiff_t>(t) * rows + r);
      }
    }
    for (; r < last; ++r) {
      const auto* row = W + r * static_cast<std::ptrdiff_t>(cols);
      for (int t = 0; t < T; ++t) {
        Y[static_cast<std::ptrdiff_t>(t) * rows + r] = dot<Weights>(row, X + static_cast<std::ptrdiff_t>(t) * cols, cols);
      }
    }
  });
}

/// Weight rows per sgemm call. OpenBLAS's single-threaded sgemm is much faster from 512 output
/// columns on than at 128-256, which outweighs the cost of a widened float tile too large to stay
/// in cache (docs/llama.md, "Prefill", has the measurements).
constexpr int kTileRows = 512;

/// Many tokens: tiles of weight rows, widened to float, times X with single-threaded sgemm; the
/// OpenMP loop over tiles owns the cores (OpenBLAS's own threads would compete with it).
template <class Weights>
void matmul_tiles(const typename Weights::Storage* W, int rows, int cols, const float* X, int T, float* Y) {
  static std::once_flag single_threaded_blas;
  std::call_once(single_threaded_blas, [] { openblas_set_num_threads(1); });
  // Smaller tiles only where there would otherwise be fewer tiles than threads (small models).
  const int per_thread = (rows + fftmat::max_threads() - 1) / fftmat::max_threads();
  const int tile_rows = std::max(16, std::min(kTileRows, (per_thread + 15) / 16 * 16));
  parallel_blocks(rows, tile_rows, 2.0 * T * rows * cols, [&](int first, int last) {
    const int count = last - first;
    const auto* weights = W + static_cast<std::ptrdiff_t>(first) * cols;
    const float* tile_weights;
    if constexpr (std::is_same_v<typename Weights::Storage, float>) {
      tile_weights = weights;
    } else {
      thread_local std::vector<float> widened;  // grows once per thread, reused by every call
      widened.resize(static_cast<std::size_t>(count) * cols);
      widen<Weights>(weights, widened.size(), widened.data());
      tile_weights = widened.data();
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, count, cols, 1.0f, X, cols, tile_weights, cols, 0.0f,
                Y + first, rows);
  });
}

template <class Weights>
void matmul_typed(const std::uint8_t* W, int rows, int cols, const float* X, int T, float* Y) {
  const auto* weights = reinterpret_cast<const typename Weights::Storage*>(W);
  if (T < kGemmMinTokens) {
    matmul_rows<Weights>(weights, rows, cols, X, T, Y);
  } else {
    matmul_tiles<Weights>(weights, rows, cols, X, T, Y);
  }
}

}  // namespace

void swiglu(const float* gate, const float* up, float* out, std::size_t count) {
  for (std::size_t k = 0; k < count; ++k) {
    const float g = gate[k];
    out[k] = g / (1.0f + std::exp(-g)) * up[k];
  }
}

float dot(const float* a, const float* b, int n) { return dot<F32Weights>(a, b, n); }

void to_float(const std::uint8_t* data, DType dtype, std::size_t first, std::size_t count, float* out) {
  switch (dtype) {
    case DType::f32: return widen<F32Weights>(reinterpret_cast<const float*>(data) + first, count, out);
    case DType::f16: return widen<F16Weights>(reinterpret_cast<const std::uint16_t*>(data) + first, count, out);
    case DType::bf16: return widen<BF16Weights>(reinterpret_cast<const std::uint16_t*>(data) + first, count, out);
    case DType::unsupported: break;
  }
  throw error("to_float: unsupported dtype");
}

void matmul(const std::uint8_t* W, DType dtype, int rows, int cols, const float* X, int T, float* Y) {
  switch (dtype) {
    case DType::f32: return matmul_typed<F32Weights>(W, rows, cols, X, T, Y);
    case DType::f16: return matmul_typed<F16Weights>(W, rows, cols, X, T, Y);
    case DType::bf16: return matmul_typed<BF16Weights>(W, rows, cols, X, T, Y);
    case DType::unsupported: break;
  }
  throw error("matmul: unsupported weight dtype");
}

}  // namespace llama
