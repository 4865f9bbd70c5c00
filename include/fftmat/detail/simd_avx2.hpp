#pragma once
// The AVX2 + FMA build of the packed product kernels (detail/simd_kernels.inl), compiled in a
// target region so that a program built for generic x86-64 carries it and runs it where the CPU
// has AVX2 and FMA (fftmat::kernel_isa()). Included by detail/complex_kernels.hpp only.

#include "internal_header_check.hpp"

#include <fftmat/detail/panel.hpp>
#include <fftmat/kernel_isa.hpp>

#ifdef FFTMAT_X86_KERNELS
#include <immintrin.h>

#include <Eigen/Core>

namespace fftmat::detail::avx2 {

#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

/// Complex panel columns as two __m256 (the real plane, then the imaginary plane); real columns
/// as one (RealSimd). simd_kernels.inl says what each operation is for.
struct Simd {
  using Vec = __m256;
  using Index = Eigen::Index;
  static constexpr int kColumnVectors = 2;
  /// 2 * 6 accumulators + the column (2) + two broadcasts fill the 16 registers.
  static constexpr Index kTokenTile = 6;

  static Vec zero() { return _mm256_setzero_ps(); }
  static Vec broadcast(const float* x) { return _mm256_broadcast_ss(x); }
  static Vec add(Vec a, Vec b) { return _mm256_add_ps(a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, Vec v) { _mm256_storeu_ps(p, v); }

  static void load_complex_column(const float* C, Index j, Vec* c) {
    c[0] = _mm256_loadu_ps(C + j * 16);
    c[1] = _mm256_loadu_ps(C + j * 16 + 8);
  }
  /// bfloat16 columns hold (real, imaginary) pairs: as 32-bit lanes, the high half is the
  /// imaginary part's float pattern (mask the low half), the low half shifted up the real part's.
  static void load_complex_column(const Eigen::bfloat16* C, Index j, Vec* c) {
    const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(C + j * 16));
    c[0] = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
    c[1] = _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
  }
  /// i c = [-imaginary | real] is c's planes swapped, one negated: complex_madd reads it from c.
  static void times_i(const Vec*, Vec*) {}
  /// sum += c (xr + i xi): the real plane gains cr xr - ci xi, the imaginary plane ci xr + cr xi.
  static void complex_madd(const Vec* c, const Vec*, Vec xr, Vec xi, Vec* sum) {
    sum[0] = _mm256_fnmadd_ps(c[1], xi, _mm256_fmadd_ps(c[0], xr, sum[0]));
    sum[1] = _mm256_fmadd_ps(c[0], xi, _mm256_fmadd_ps(c[1], xr, sum[1]));
  }

  static Vec load_real_column(const float* C, Index j) { return _mm256_loadu_ps(C + j * 8); }
  static Vec load_real_column(const Eigen::bfloat16* C, Index j) {
    const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(C + j * 8));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(values), 16));
  }
};
using RealSimd = Simd;

#include "simd_kernels.inl"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace fftmat::detail::avx2

#endif  // FFTMAT_X86_KERNELS
