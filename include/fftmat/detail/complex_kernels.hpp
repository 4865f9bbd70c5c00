#pragma once
// Per-bin complex products Y^[f] = C^[f] X^[f] of a block-circulant apply (DESIGN.md section 2) on
// a packed, split real/imaginary copy of the spectra.
//
// Why a second layout: the per-bin matrices are small (p x q, e.g. 172 x 64 for 11008x4096 at
// b = 64) and there are b/2+1 of them. For one token the product is a batched complex GEMV that
// only has to stream the spectra from memory once; for many tokens it is FMA-bound. Eigen's complex
// GEMM/GEMV on interleaved std::complex data reaches neither (it shuffles real and imaginary parts
// on every step). With separate real and imaginary planes the complex product
//     yr += cr*xr - ci*xi,   yi += cr*xi + ci*xr
// is four plain FMAs on full SIMD vectors (the "4M" real formulation of a complex product), and with
// rows packed in panels of kPanelRows the kernel reads the spectra strictly sequentially:
//
//   complex bin f:  for each panel P (rows P*R .. P*R+R-1, zero-padded past p), for each column j:
//                   R real parts, then R imaginary parts                       (2*R*q scalars/panel)
//   real bin f:     (DC, and Nyquist when b is even: the DFT of real data is real there)
//                   for each panel, for each column j: R real parts            (R*q scalars/panel)
//
// The real bins hold b real numbers per block in all -- exactly the parameter count, so the T = 1
// product reads no more bytes than the first columns themselves.
//
// Register blocking follows the GotoBLAS/BLIS micro-kernel idea (Goto & van de Geijn, ACM TOMS 34,
// 2008; Van Zee & van de Geijn, ACM TOMS 41, 2015): a panel of R rows stays in L1 while a tile of up
// to kTokenTile tokens is accumulated in registers; the inputs are broadcast from the token-major
// input spectrum (bin f of block j of token t at t*ldx + f*q + j), where each token's q values of a
// bin are contiguous.
//
// The AVX2+FMA kernel (float) is compiled when the compiler targets AVX2 and FMA
// (e.g. -march=native on this project's own targets) unless FFTMAT_PORTABLE_KERNELS is defined; the
// portable kernel computes the same sums (rounding may differ in the last bits) and serves double,
// other CPUs, and builds with FFTMAT_PORTABLE_KERNELS (how the tests exercise it for float).

#include <Eigen/Core>

#include <algorithm>
#include <complex>
#include <type_traits>
#include <vector>

#if defined(__AVX2__) && defined(__FMA__) && !defined(FFTMAT_PORTABLE_KERNELS)
#include <immintrin.h>
#define FFTMAT_HAVE_AVX2_KERNELS 1
#endif

#ifndef FFTMAT_PREFETCH_LINES
#define FFTMAT_PREFETCH_LINES 16
#endif

namespace fftmat::detail {

/// Rows per packed panel: one AVX vector of floats.
inline constexpr Eigen::Index kPanelRows = 8;
/// Tokens accumulated in registers at once (2*kTokenTile accumulators + 2 panel vectors + 2
/// broadcasts fit the 16 AVX2 registers).
inline constexpr Eigen::Index kTokenTile = 6;

/// Tokens per chunk of the packed product: a multiple of kTokenTile whose output spectra
/// (`bytes_per_token` each) fill about half of a typical 512 KiB - 1 MiB L2.
inline Eigen::Index token_chunk(Eigen::Index bytes_per_token) noexcept {
  const Eigen::Index budget = Eigen::Index(256) << 10;
  const Eigen::Index tiles = std::max<Eigen::Index>(1, budget / std::max<Eigen::Index>(1, bytes_per_token * kTokenTile));
  return tiles * kTokenTile;
}

/// The spectra of a p x q block-circulant matrix, packed for the kernels below.
template <class Scalar>
class PackedSpectra {
 public:
  using Index = Eigen::Index;
  using Complex = std::complex<Scalar>;

  PackedSpectra() = default;

  /// From frequency-major spectra: bin f is a row-major p x q matrix at f*p*q.
  void pack(const Complex* spectra, Index block_size, Index p, Index q) {
    p_ = p;
    q_ = q;
    bins_ = block_size / 2 + 1;
    panels_ = (p + kPanelRows - 1) / kPanelRows;
    offsets_.assign(static_cast<std::size_t>(bins_ + 1), 0);
    real_.assign(static_cast<std::size_t>(bins_), false);
    for (Index f = 0; f < bins_; ++f) {
      real_[std::size_t(f)] = f == 0 || 2 * f == block_size;
      const Index planes = real_[std::size_t(f)] ? 1 : 2;
      offsets_[std::size_t(f + 1)] = offsets_[std::size_t(f)] + panels_ * q * planes * kPanelRows;
    }
    data_.setZero(offsets_.back());
    for (Index f = 0; f < bins_; ++f) {
      const bool real = real_[std::size_t(f)];
      const Complex* C = spectra + f * p * q;
      for (Index P = 0; P < panels_; ++P) {
        Scalar* panel = data_.data() + panel_offset(f, P);
        const Index rows = std::min(kPanelRows, p - P * kPanelRows);
        for (Index j = 0; j < q; ++j)
          for (Index r = 0; r < rows; ++r) {
            const Complex c = C[(P * kPanelRows + r) * q + j];
            if (real) {
              panel[j * kPanelRows + r] = c.real();
            } else {
              panel[j * 2 * kPanelRows + r] = c.real();
              panel[j * 2 * kPanelRows + kPanelRows + r] = c.imag();
            }
          }
      }
    }
  }

  bool empty() const noexcept { return data_.size() == 0; }
  Index panels() const noexcept { return panels_; }
  bool real_bin(Index f) const noexcept { return real_[std::size_t(f)]; }
  Index panel_offset(Index f, Index P) const noexcept {
    return offsets_[std::size_t(f)] + P * q_ * (real_bin(f) ? 1 : 2) * kPanelRows;
  }
  const Scalar* panel(Index f, Index P) const noexcept { return data_.data() + panel_offset(f, P); }
  /// Bytes one product streams (the packed spectra, zero-padded rows included).
  double bytes() const noexcept { return double(data_.size()) * sizeof(Scalar); }

 private:
  Index p_ = 0, q_ = 0, bins_ = 0, panels_ = 0;
  std::vector<Index> offsets_;
  std::vector<bool> real_;
  Eigen::Matrix<Scalar, Eigen::Dynamic, 1> data_;
};

// ---- micro-kernels -------------------------------------------------------------------------------
// Each computes, for one panel (R rows) and Tn tokens, acc[t][0..R) = real parts and
// acc[t][R..2R) = imaginary parts of sum_j C(r, j) x(j, t); x(j, t) is the interleaved complex at
// x + t*ldx + 2*j (ldx in scalars).

/// Portable: plain loops over the R rows that compilers vectorise.
template <class Scalar, int Tn>
inline void complex_tile_portable(const Scalar* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx,
                                  Scalar* acc) {
  constexpr Eigen::Index R = kPanelRows;
  std::fill(acc, acc + Tn * 2 * R, Scalar(0));
  for (Eigen::Index j = 0; j < q; ++j) {
    const Scalar* cr = C + j * 2 * R;
    const Scalar* ci = cr + R;
    for (int t = 0; t < Tn; ++t) {
      const Scalar xr = x[t * ldx + 2 * j], xi = x[t * ldx + 2 * j + 1];
      Scalar* yr = acc + t * 2 * R;
      Scalar* yi = yr + R;
      for (Eigen::Index r = 0; r < R; ++r) {
        yr[r] += cr[r] * xr - ci[r] * xi;
        yi[r] += cr[r] * xi + ci[r] * xr;
      }
    }
  }
}

/// Portable, real bin: only real parts (x(j, t) is real there too).
template <class Scalar, int Tn>
inline void real_tile_portable(const Scalar* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx, Scalar* acc) {
  constexpr Eigen::Index R = kPanelRows;
  std::fill(acc, acc + Tn * 2 * R, Scalar(0));
  for (Eigen::Index j = 0; j < q; ++j) {
    const Scalar* c = C + j * R;
    for (int t = 0; t < Tn; ++t) {
      const Scalar xr = x[t * ldx + 2 * j];
      Scalar* yr = acc + t * 2 * R;
      for (Eigen::Index r = 0; r < R; ++r) yr[r] += c[r] * xr;
    }
  }
}

#ifdef FFTMAT_HAVE_AVX2_KERNELS
/// Software prefetch distance of the one-token kernel, in 64-byte lines (columns of a panel).
inline constexpr Eigen::Index kPrefetchLines = FFTMAT_PREFETCH_LINES;

/// AVX2: one __m256 per plane of the panel; 4 FMAs per (column, token).
template <int Tn>
inline void complex_tile_avx2(const float* C, Eigen::Index q, const float* x, Eigen::Index ldx, float* acc) {
  if constexpr (Tn == 1) {
    // One token: a GEMV, bound by streaming C. Four independent accumulators keep the FMA latency
    // (4-5 cycles) off the critical path; the cr*xr - ci*xi subtraction happens once at the end.
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
    for (Eigen::Index j = 0; j < q; ++j) {
      // One 64-byte line of C per column: ask for the line kPrefetchLines ahead, since one
      // sequential stream per core does not keep enough misses in flight to saturate memory.
      _mm_prefetch(reinterpret_cast<const char*>(C + (j + kPrefetchLines) * 16), _MM_HINT_T0);
      const __m256 cr = _mm256_loadu_ps(C + j * 16), ci = _mm256_loadu_ps(C + j * 16 + 8);
      const __m256 xr = _mm256_broadcast_ss(x + 2 * j), xi = _mm256_broadcast_ss(x + 2 * j + 1);
      a = _mm256_fmadd_ps(cr, xr, a);
      b = _mm256_fmadd_ps(ci, xi, b);
      c = _mm256_fmadd_ps(cr, xi, c);
      d = _mm256_fmadd_ps(ci, xr, d);
    }
    _mm256_storeu_ps(acc, _mm256_sub_ps(a, b));
    _mm256_storeu_ps(acc + 8, _mm256_add_ps(c, d));
  } else {
    // Named accumulators, not arrays: GCC 12 keeps an array of __m256 in registers but also
    // stores it to the stack on every iteration, which made the kernel store-bound (measured:
    // 15-18 GFLOP/s against 30-35 GFLOP/s with named variables, one core, hot cache).
    __m256 r0 = _mm256_setzero_ps(), r1 = r0, r2 = r0, r3 = r0, r4 = r0, r5 = r0;
    __m256 i0 = r0, i1 = r0, i2 = r0, i3 = r0, i4 = r0, i5 = r0;
    const float *x0 = x, *x1 = x + ldx;  // tokens past Tn are never formed, let alone read:
    const float *x2 = Tn > 2 ? x + 2 * ldx : x, *x3 = Tn > 3 ? x + 3 * ldx : x;
    const float *x4 = Tn > 4 ? x + 4 * ldx : x, *x5 = Tn > 5 ? x + 5 * ldx : x;
    for (Eigen::Index j = 0; j < q; ++j) {
      const __m256 cr = _mm256_loadu_ps(C + j * 16), ci = _mm256_loadu_ps(C + j * 16 + 8);
      const auto step = [&](const float* xt, __m256& yr, __m256& yi) {
        const __m256 xr = _mm256_broadcast_ss(xt + 2 * j), xi = _mm256_broadcast_ss(xt + 2 * j + 1);
        yr = _mm256_fmadd_ps(cr, xr, yr);
        yi = _mm256_fmadd_ps(cr, xi, yi);
        yr = _mm256_fnmadd_ps(ci, xi, yr);
        yi = _mm256_fmadd_ps(ci, xr, yi);
      };
      step(x0, r0, i0);
      step(x1, r1, i1);
      if constexpr (Tn > 2) step(x2, r2, i2);
      if constexpr (Tn > 3) step(x3, r3, i3);
      if constexpr (Tn > 4) step(x4, r4, i4);
      if constexpr (Tn > 5) step(x5, r5, i5);
    }
    const __m256 yr[6] = {r0, r1, r2, r3, r4, r5}, yi[6] = {i0, i1, i2, i3, i4, i5};
    for (int t = 0; t < Tn; ++t) {
      _mm256_storeu_ps(acc + t * 16, yr[t]);
      _mm256_storeu_ps(acc + t * 16 + 8, yi[t]);
    }
  }
}

template <int Tn>
inline void real_tile_avx2(const float* C, Eigen::Index q, const float* x, Eigen::Index ldx, float* acc) {
  __m256 y[Tn], y2[Tn];
  for (int t = 0; t < Tn; ++t) y[t] = y2[t] = _mm256_setzero_ps();
  Eigen::Index j = 0;
  for (; j + 1 < q; j += 2) {  // two accumulators per token against the FMA latency
    const __m256 c0 = _mm256_loadu_ps(C + j * 8), c1 = _mm256_loadu_ps(C + j * 8 + 8);
    for (int t = 0; t < Tn; ++t) {
      y[t] = _mm256_fmadd_ps(c0, _mm256_broadcast_ss(x + t * ldx + 2 * j), y[t]);
      y2[t] = _mm256_fmadd_ps(c1, _mm256_broadcast_ss(x + t * ldx + 2 * j + 2), y2[t]);
    }
  }
  for (; j < q; ++j) {
    const __m256 c0 = _mm256_loadu_ps(C + j * 8);
    for (int t = 0; t < Tn; ++t) y[t] = _mm256_fmadd_ps(c0, _mm256_broadcast_ss(x + t * ldx + 2 * j), y[t]);
  }
  for (int t = 0; t < Tn; ++t) {
    _mm256_storeu_ps(acc + t * 16, _mm256_add_ps(y[t], y2[t]));
    _mm256_storeu_ps(acc + t * 16 + 8, _mm256_setzero_ps());
  }
}
#endif

#ifdef FFTMAT_HAVE_AVX2_KERNELS
/// One token, two complex panels at once (see one_token_pair): two sequential streams keep more
/// cache misses in flight than one (measured on the reference machine: 8.8 against 7.3 GB/s on one
/// core), which matters because the one-token product is bound by reading the spectra.
inline void complex_pair_avx2(const float* C1, const float* x1, const float* C2, const float* x2, Eigen::Index q,
                              float* acc1, float* acc2) {
  __m256 a1 = _mm256_setzero_ps(), b1 = a1, c1 = a1, d1 = a1, a2 = a1, b2 = a1, c2 = a1, d2 = a1;
  for (Eigen::Index j = 0; j < q; ++j) {
    _mm_prefetch(reinterpret_cast<const char*>(C1 + (j + kPrefetchLines) * 16), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(C2 + (j + kPrefetchLines) * 16), _MM_HINT_T0);
    const __m256 cr1 = _mm256_loadu_ps(C1 + j * 16), ci1 = _mm256_loadu_ps(C1 + j * 16 + 8);
    const __m256 xr1 = _mm256_broadcast_ss(x1 + 2 * j), xi1 = _mm256_broadcast_ss(x1 + 2 * j + 1);
    a1 = _mm256_fmadd_ps(cr1, xr1, a1);
    b1 = _mm256_fmadd_ps(ci1, xi1, b1);
    c1 = _mm256_fmadd_ps(cr1, xi1, c1);
    d1 = _mm256_fmadd_ps(ci1, xr1, d1);
    const __m256 cr2 = _mm256_loadu_ps(C2 + j * 16), ci2 = _mm256_loadu_ps(C2 + j * 16 + 8);
    const __m256 xr2 = _mm256_broadcast_ss(x2 + 2 * j), xi2 = _mm256_broadcast_ss(x2 + 2 * j + 1);
    a2 = _mm256_fmadd_ps(cr2, xr2, a2);
    b2 = _mm256_fmadd_ps(ci2, xi2, b2);
    c2 = _mm256_fmadd_ps(cr2, xi2, c2);
    d2 = _mm256_fmadd_ps(ci2, xr2, d2);
  }
  _mm256_storeu_ps(acc1, _mm256_sub_ps(a1, b1));
  _mm256_storeu_ps(acc1 + 8, _mm256_add_ps(c1, d1));
  _mm256_storeu_ps(acc2, _mm256_sub_ps(a2, b2));
  _mm256_storeu_ps(acc2 + 8, _mm256_add_ps(c2, d2));
}
#endif

template <class Scalar, int Tn>
inline void tile(bool real, const Scalar* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx, Scalar* acc) {
#ifdef FFTMAT_HAVE_AVX2_KERNELS
  if constexpr (std::is_same_v<Scalar, float>) {
    if (real) {
      real_tile_avx2<Tn>(C, q, x, ldx, acc);
    } else {
      complex_tile_avx2<Tn>(C, q, x, ldx, acc);
    }
    return;
  }
#endif
  if (real) {
    real_tile_portable<Scalar, Tn>(C, q, x, ldx, acc);
  } else {
    complex_tile_portable<Scalar, Tn>(C, q, x, ldx, acc);
  }
}

/// One panel of one bin for all T tokens:
///   Y(row0 + r, t) = sum_j C(row0 + r, j) X(j, t)   for r < rows (<= kPanelRows),
/// X(j, t) at x[t*ldx + j] (complex), Y(i, t) at y[t*ldy + i*ldy_row] (complex): the output is
/// written in the block-major layout the inverse FFT prefers (bins of one block contiguous).
template <class Scalar>
void panel_product(const PackedSpectra<Scalar>& packed, Eigen::Index f, Eigen::Index P, Eigen::Index q,
                   const std::complex<Scalar>* x, Eigen::Index ldx, Eigen::Index T, std::complex<Scalar>* y,
                   Eigen::Index ldy, Eigen::Index ldy_row, Eigen::Index rows) {
  constexpr Eigen::Index R = kPanelRows;
  alignas(64) Scalar acc[kTokenTile * 2 * R];
  const Scalar* C = packed.panel(f, P);
  const bool real = packed.real_bin(f);
  const Scalar* xs = reinterpret_cast<const Scalar*>(x);
  const Eigen::Index ldxs = 2 * ldx;
  for (Eigen::Index t0 = 0; t0 < T; t0 += kTokenTile) {
    const Eigen::Index tn = std::min(kTokenTile, T - t0);
    const Scalar* xt = xs + t0 * ldxs;
    switch (tn) {
      case 1: tile<Scalar, 1>(real, C, q, xt, ldxs, acc); break;
      case 2: tile<Scalar, 2>(real, C, q, xt, ldxs, acc); break;
      case 3: tile<Scalar, 3>(real, C, q, xt, ldxs, acc); break;
      case 4: tile<Scalar, 4>(real, C, q, xt, ldxs, acc); break;
      case 5: tile<Scalar, 5>(real, C, q, xt, ldxs, acc); break;
      default: tile<Scalar, 6>(real, C, q, xt, ldxs, acc); break;
    }
    static_assert(kTokenTile == 6, "the switch above covers tiles of 1..6 tokens");
    for (Eigen::Index t = 0; t < tn; ++t) {
      std::complex<Scalar>* yt = y + (t0 + t) * ldy;
      const Scalar* a = acc + t * 2 * R;
      for (Eigen::Index r = 0; r < rows; ++r) yt[r * ldy_row] = std::complex<Scalar>(a[r], a[R + r]);
    }
  }
}

/// One token (T = 1), two (bin, panel) work items at once -- on AVX2 two interleaved streams of
/// the packed spectra (complex_pair_avx2), otherwise simply one after the other. Item k is
/// (f_k, P_k); x is the token's input spectrum (token-major), y its block-major output spectrum.
template <class Scalar>
void one_token_pair(const PackedSpectra<Scalar>& packed, Eigen::Index f1, Eigen::Index P1, Eigen::Index f2,
                    Eigen::Index P2, Eigen::Index p, Eigen::Index q, const std::complex<Scalar>* x,
                    std::complex<Scalar>* y, Eigen::Index bins) {
  constexpr Eigen::Index R = kPanelRows;
  const auto rows = [&](Eigen::Index P) { return std::min(R, p - P * R); };
  const auto single = [&](Eigen::Index f, Eigen::Index P) {
    panel_product(packed, f, P, q, x + f * q, 0, 1, y + P * R * bins + f, 0, bins, rows(P));
  };
#ifdef FFTMAT_HAVE_AVX2_KERNELS
  if constexpr (std::is_same_v<Scalar, float>) {
    if (!packed.real_bin(f1) && !packed.real_bin(f2)) {
      alignas(32) float acc[2][2 * R];
      complex_pair_avx2(packed.panel(f1, P1), reinterpret_cast<const float*>(x + f1 * q), packed.panel(f2, P2),
                        reinterpret_cast<const float*>(x + f2 * q), q, acc[0], acc[1]);
      const Eigen::Index fs[2] = {f1, f2}, Ps[2] = {P1, P2};
      for (int k = 0; k < 2; ++k) {
        std::complex<float>* out = y + Ps[k] * R * bins + fs[k];
        for (Eigen::Index r = 0; r < rows(Ps[k]); ++r) out[r * bins] = std::complex<float>(acc[k][r], acc[k][R + r]);
      }
      return;
    }
  }
#endif
  single(f1, P1);
  single(f2, P2);
}

}  // namespace fftmat::detail
