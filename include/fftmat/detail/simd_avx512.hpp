#pragma once
// The AVX-512F build of the packed product kernels (detail/simd_kernels.inl), compiled in a target
// region so that a program built for generic x86-64 carries it and runs it where the CPU has
// AVX-512F (fftmat::kernel_isa()). Included by detail/complex_kernels.hpp only.

#include "internal_header_check.hpp"

#include <fftmat/detail/simd_avx2.hpp>

#ifdef FFTMAT_X86_KERNELS
namespace fftmat::detail::avx512 {

// Only intrinsics whose GCC definitions take an explicit pass-through operand (the _mask_ forms
// with a full mask) are used where the plain form starts from _mm512_undefined_*: GCC 12 reports
// that as maybe-uninitialized (GCC bug 105593) in every program that includes this header.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx2,fma")
#endif

/// A complex panel column is one __m512: [8 real parts | 8 imaginary parts]. Real columns (8
/// floats) use the AVX2 operations. simd_kernels.inl says what each operation is for.
struct Simd {
  using Vec = __m512;
  using Index = Eigen::Index;
  static constexpr int kColumnVectors = 1;
  /// 12 accumulators + the column and its i-multiple + broadcasts: half of the 32 registers, and
  /// enough tokens that each column load and swap is shared by 24 FMAs.
  static constexpr Index kTokenTile = 12;

  static Vec zero() { return _mm512_setzero_ps(); }
  static Vec broadcast(const float* x) { return _mm512_set1_ps(*x); }
  static Vec add(Vec a, Vec b) { return _mm512_add_ps(a, b); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }

  static void load_complex_column(const float* C, Index j, Vec* c) { c[0] = _mm512_loadu_ps(C + j * 16); }
  /// (real, imaginary) bfloat16 pairs widened as in avx2::Simd, the two planes joined.
  static void load_complex_column(const Eigen::bfloat16* C, Index j, Vec* c) {
    avx2::Simd::Vec planes[2];
    avx2::Simd::load_complex_column(C, j, planes);
    c[0] = join(planes[0], planes[1]);
  }
  /// i c = [-imaginary | real]: the halves swapped, the low half negated.
  static void times_i(const Vec* c, Vec* ic) {
    const Vec swapped = _mm512_mask_shuffle_f32x4(c[0], __mmask16(0xFFFF), c[0], c[0], _MM_SHUFFLE(1, 0, 3, 2));
    ic[0] = _mm512_mask_sub_ps(swapped, __mmask16(0x00FF), _mm512_setzero_ps(), swapped);
  }
  /// sum += c xr + (i c) xi.
  static void complex_madd(const Vec* c, const Vec* ic, Vec xr, Vec xi, Vec* sum) {
    sum[0] = _mm512_fmadd_ps(ic[0], xi, _mm512_fmadd_ps(c[0], xr, sum[0]));
  }

 private:
  /// [low | high] from two __m256 (AVX-512F only: the float form of the insert is AVX-512DQ).
  static Vec join(__m256 low, __m256 high) {
    const __m512d zero = _mm512_setzero_pd();
    const __m512d lower = _mm512_mask_insertf64x4(zero, __mmask8(0xFF), zero, _mm256_castps_pd(low), 0);
    return _mm512_castpd_ps(_mm512_mask_insertf64x4(lower, __mmask8(0xFF), lower, _mm256_castps_pd(high), 1));
  }
};
using RealSimd = avx2::Simd;

#include "simd_kernels.inl"

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

}  // namespace fftmat::detail::avx512

#endif  // FFTMAT_X86_KERNELS
