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
//   for each panel P (rows P*R .. P*R+R-1, zero-padded past p), for each bin f:
//     complex bin:  for each column j: R real parts, then R imaginary parts     (2*R*q scalars)
//     real bin:     (DC, and Nyquist when b is even: the DFT of real data is real there)
//                   for each column j: R real parts                             (R*q scalars)
//
// Panel-major, because a panel's R rows are R whole output blocks: once all bins of a panel are
// done, those blocks can be inverse-transformed at once, by the thread that streamed them.
//
// The real bins hold b real numbers per block in all -- exactly the parameter count, so the T = 1
// product reads no more bytes than the first columns themselves.
//
// Optionally (SpectrumPrecision::bfloat16) the panels are stored as bfloat16, which halves the bytes
// a one-token product streams. A complex panel's column then holds the pairs (real, imaginary) of
// its R rows side by side: read as R 32-bit lanes, each lane's high half is already the float
// pattern of the imaginary part (mask off the low half) and its low half shifted up is the real
// part -- two integer instructions widen 16 values. (Converting planar binary16 with F16C, or
// planar bfloat16 by zero extension, measured 1.4x slower per column than this layout on the
// reference machine's Zen 1 cores, enough to make the one-token product compute-bound.)
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

#include <fftmat/detail/huge_page_array.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
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

/// The spectra of a p x q block-circulant matrix, packed for the kernels below, in Scalar or (with
/// `bfloat16`) in bfloat16 with the interleaved complex columns described above.
template <class Scalar>
class PackedSpectra {
 public:
  using Index = Eigen::Index;
  using Complex = std::complex<Scalar>;

  PackedSpectra() = default;

  /// From frequency-major spectra: bin f is a row-major p x q matrix at f*p*q. With `bfloat16`,
  /// every value must be within bfloat16's range (BlockCirculant checks).
  void pack(const Complex* spectra, Index block_size, Index p, Index q, bool bfloat16) {
    bins_ = block_size / 2 + 1;
    panels_ = (p + kPanelRows - 1) / kPanelRows;
    bin_offsets_.assign(static_cast<std::size_t>(bins_ + 1), 0);
    real_.assign(static_cast<std::size_t>(bins_), false);
    for (Index f = 0; f < bins_; ++f) {
      real_[std::size_t(f)] = f == 0 || 2 * f == block_size;
      const Index planes = real_[std::size_t(f)] ? 1 : 2;
      bin_offsets_[std::size_t(f + 1)] = bin_offsets_[std::size_t(f)] + q * planes * kPanelRows;
    }
    const Index size = panels_ * bin_offsets_.back();
    data_ = HugePageArray<Scalar>(bfloat16 ? 0 : std::size_t(size));
    bf16_ = HugePageArray<Eigen::bfloat16>(bfloat16 ? std::size_t(size) : 0);
    for (Index f = 0; f < bins_; ++f) {
      const bool real = real_[std::size_t(f)];
      const Complex* C = spectra + f * p * q;
      for (Index P = 0; P < panels_; ++P) {
        const Index begin = panel_offset(f, P), rows = std::min(kPanelRows, p - P * kPanelRows);
        for (Index j = 0; j < q; ++j)
          for (Index r = 0; r < rows; ++r) {
            const Complex c = C[(P * kPanelRows + r) * q + j];
            if (real) {
              set(begin + j * kPanelRows + r, c.real());
            } else if (bfloat16) {  // interleaved: (real, imaginary) pairs
              set(begin + j * 2 * kPanelRows + 2 * r, c.real());
              set(begin + j * 2 * kPanelRows + 2 * r + 1, c.imag());
            } else {  // planes: R real parts, then R imaginary parts
              set(begin + j * 2 * kPanelRows + r, c.real());
              set(begin + j * 2 * kPanelRows + kPanelRows + r, c.imag());
            }
          }
      }
    }
  }

  bool empty() const noexcept { return data_.size() == 0 && bf16_.size() == 0; }
  bool bfloat16() const noexcept { return bf16_.size() != 0; }
  Index panels() const noexcept { return panels_; }
  bool real_bin(Index f) const noexcept { return real_[std::size_t(f)]; }
  Index panel_offset(Index f, Index P) const noexcept {
    return P * bin_offsets_.back() + bin_offsets_[std::size_t(f)];
  }
  /// Panel P of bin f: Element is Scalar, or Eigen::bfloat16 when bfloat16().
  template <class Element>
  const Element* panel(Index f, Index P) const noexcept {
    if constexpr (std::is_same_v<Element, Eigen::bfloat16>) {
      return bf16_.data() + panel_offset(f, P);
    } else {
      return data_.data() + panel_offset(f, P);
    }
  }
  /// Bytes one product streams (the packed spectra, zero-padded rows included).
  double bytes() const noexcept {
    return bfloat16() ? double(bf16_.size()) * sizeof(Eigen::bfloat16) : double(data_.size()) * sizeof(Scalar);
  }

 private:
  void set(Index k, Scalar value) {
    if (bf16_.size() != 0) {
      bf16_[std::size_t(k)] = Eigen::bfloat16(static_cast<float>(value));  // rounds to nearest even
    } else {
      data_[std::size_t(k)] = value;
    }
  }

  Index bins_ = 0, panels_ = 0;
  std::vector<Index> bin_offsets_;  // where bin f starts within a panel; the last entry: a panel's size
  std::vector<bool> real_;
  HugePageArray<Scalar> data_;           // the panels in Scalar, or empty
  HugePageArray<Eigen::bfloat16> bf16_;  // the panels in bfloat16, or empty
};

// ---- micro-kernels -------------------------------------------------------------------------------
// Each computes, for one panel (R rows) and Tn tokens, acc[t][0..R) = real parts and
// acc[t][R..2R) = imaginary parts of sum_j C(r, j) x(j, t); x(j, t) is the interleaved complex at
// x + t*ldx + 2*j (ldx in scalars). The panel's Element is Scalar or Eigen::bfloat16.

/// A stored panel value as Scalar (bfloat16 widens through float, exactly).
template <class Scalar, class Element>
inline Scalar widen(Element value) {
  if constexpr (std::is_same_v<Element, Eigen::bfloat16>) {
    return static_cast<Scalar>(static_cast<float>(value));
  } else {
    return value;
  }
}

/// Column j of a complex panel as R real and R imaginary parts, for either layout.
template <class Scalar, class Element>
inline void complex_column(const Element* C, Eigen::Index j, Scalar* cr, Scalar* ci) {
  constexpr Eigen::Index R = kPanelRows;
  const Element* column = C + j * 2 * R;
  for (Eigen::Index r = 0; r < R; ++r) {
    if constexpr (std::is_same_v<Element, Eigen::bfloat16>) {
      cr[r] = widen<Scalar>(column[2 * r]);
      ci[r] = widen<Scalar>(column[2 * r + 1]);
    } else {
      cr[r] = column[r];
      ci[r] = column[R + r];
    }
  }
}

/// Portable: plain loops over the R rows that compilers vectorise.
template <class Scalar, int Tn, class Element>
inline void complex_tile_portable(const Element* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx,
                                  Scalar* acc) {
  constexpr Eigen::Index R = kPanelRows;
  std::fill(acc, acc + Tn * 2 * R, Scalar(0));
  Scalar cr[R], ci[R];
  for (Eigen::Index j = 0; j < q; ++j) {
    complex_column(C, j, cr, ci);
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
template <class Scalar, int Tn, class Element>
inline void real_tile_portable(const Element* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx, Scalar* acc) {
  constexpr Eigen::Index R = kPanelRows;
  std::fill(acc, acc + Tn * 2 * R, Scalar(0));
  Scalar c[R];
  for (Eigen::Index j = 0; j < q; ++j) {
    for (Eigen::Index r = 0; r < R; ++r) c[r] = widen<Scalar>(C[j * R + r]);
    for (int t = 0; t < Tn; ++t) {
      const Scalar xr = x[t * ldx + 2 * j];
      Scalar* yr = acc + t * 2 * R;
      for (Eigen::Index r = 0; r < R; ++r) yr[r] += c[r] * xr;
    }
  }
}

#ifdef FFTMAT_HAVE_AVX2_KERNELS
/// Software prefetch distance of the one-token kernels, in bytes of the panel stream.
inline constexpr Eigen::Index kPrefetchBytes = FFTMAT_PREFETCH_LINES * 64;

/// Column j of a complex panel: its R real parts and R imaginary parts as floats.
inline void load_complex_column(const float* C, Eigen::Index j, __m256& cr, __m256& ci) {
  cr = _mm256_loadu_ps(C + j * 16);
  ci = _mm256_loadu_ps(C + j * 16 + 8);
}
inline void load_complex_column(const Eigen::bfloat16* C, Eigen::Index j, __m256& cr, __m256& ci) {
  const __m256i pairs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(C + j * 16));
  cr = _mm256_castsi256_ps(_mm256_slli_epi32(pairs, 16));
  ci = _mm256_castsi256_ps(_mm256_and_si256(pairs, _mm256_set1_epi32(static_cast<int>(0xFFFF0000u))));
}
/// Column j of a real panel as floats.
inline __m256 load_real_column(const float* C, Eigen::Index j) { return _mm256_loadu_ps(C + j * 8); }
inline __m256 load_real_column(const Eigen::bfloat16* C, Eigen::Index j) {
  const __m128i values = _mm_loadu_si128(reinterpret_cast<const __m128i*>(C + j * 8));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(values), 16));
}

/// Asks for the panel bytes kPrefetchBytes ahead of complex column j: one sequential stream per
/// core does not keep enough misses in flight to saturate memory.
template <class Element>
inline void prefetch_ahead(const Element* C, Eigen::Index j) {
  _mm_prefetch(reinterpret_cast<const char*>(C + j * 2 * kPanelRows) + kPrefetchBytes, _MM_HINT_T0);
}

/// AVX2: one __m256 per plane of the panel; 4 FMAs per (column, token).
template <int Tn, class Element>
inline void complex_tile_avx2(const Element* C, Eigen::Index q, const float* x, Eigen::Index ldx, float* acc) {
  if constexpr (Tn == 1) {
    // One token: a GEMV, bound by streaming C. Four independent accumulators keep the FMA latency
    // (4-5 cycles) off the critical path; the cr*xr - ci*xi subtraction happens once at the end.
    __m256 a = _mm256_setzero_ps(), b = _mm256_setzero_ps(), c = _mm256_setzero_ps(), d = _mm256_setzero_ps();
    for (Eigen::Index j = 0; j < q; ++j) {
      prefetch_ahead(C, j);
      __m256 cr, ci;
      load_complex_column(C, j, cr, ci);
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
      __m256 cr, ci;
      load_complex_column(C, j, cr, ci);
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

template <int Tn, class Element>
inline void real_tile_avx2(const Element* C, Eigen::Index q, const float* x, Eigen::Index ldx, float* acc) {
  __m256 y[Tn], y2[Tn];
  for (int t = 0; t < Tn; ++t) y[t] = y2[t] = _mm256_setzero_ps();
  Eigen::Index j = 0;
  for (; j + 1 < q; j += 2) {  // two accumulators per token against the FMA latency
    const __m256 c0 = load_real_column(C, j), c1 = load_real_column(C, j + 1);
    for (int t = 0; t < Tn; ++t) {
      y[t] = _mm256_fmadd_ps(c0, _mm256_broadcast_ss(x + t * ldx + 2 * j), y[t]);
      y2[t] = _mm256_fmadd_ps(c1, _mm256_broadcast_ss(x + t * ldx + 2 * j + 2), y2[t]);
    }
  }
  for (; j < q; ++j) {
    const __m256 c0 = load_real_column(C, j);
    for (int t = 0; t < Tn; ++t) y[t] = _mm256_fmadd_ps(c0, _mm256_broadcast_ss(x + t * ldx + 2 * j), y[t]);
  }
  for (int t = 0; t < Tn; ++t) {
    _mm256_storeu_ps(acc + t * 16, _mm256_add_ps(y[t], y2[t]));
    _mm256_storeu_ps(acc + t * 16 + 8, _mm256_setzero_ps());
  }
}

/// One token, bin f of two panels at once (see one_token_panels): two sequential streams keep more
/// cache misses in flight than one (measured on the reference machine: 8.8 against 7.3 GB/s on one
/// core), which matters because the one-token product is bound by reading the spectra; the two
/// panels share the bin's input, so each broadcast serves both.
template <class Element>
inline void complex_two_panels_avx2(const Element* C1, const Element* C2, const float* x, Eigen::Index q,
                                    float* acc1, float* acc2) {
  __m256 a1 = _mm256_setzero_ps(), b1 = a1, c1 = a1, d1 = a1, a2 = a1, b2 = a1, c2 = a1, d2 = a1;
  for (Eigen::Index j = 0; j < q; ++j) {
    prefetch_ahead(C1, j);
    prefetch_ahead(C2, j);
    const __m256 xr = _mm256_broadcast_ss(x + 2 * j), xi = _mm256_broadcast_ss(x + 2 * j + 1);
    __m256 cr1, ci1, cr2, ci2;
    load_complex_column(C1, j, cr1, ci1);
    a1 = _mm256_fmadd_ps(cr1, xr, a1);
    b1 = _mm256_fmadd_ps(ci1, xi, b1);
    c1 = _mm256_fmadd_ps(cr1, xi, c1);
    d1 = _mm256_fmadd_ps(ci1, xr, d1);
    load_complex_column(C2, j, cr2, ci2);
    a2 = _mm256_fmadd_ps(cr2, xr, a2);
    b2 = _mm256_fmadd_ps(ci2, xi, b2);
    c2 = _mm256_fmadd_ps(cr2, xi, c2);
    d2 = _mm256_fmadd_ps(ci2, xr, d2);
  }
  _mm256_storeu_ps(acc1, _mm256_sub_ps(a1, b1));
  _mm256_storeu_ps(acc1 + 8, _mm256_add_ps(c1, d1));
  _mm256_storeu_ps(acc2, _mm256_sub_ps(a2, b2));
  _mm256_storeu_ps(acc2 + 8, _mm256_add_ps(c2, d2));
}
#endif

/// Whether the AVX2 kernels serve Scalar sums over panels of Element.
template <class Scalar, class Element>
inline constexpr bool kAvx2Kernels = false;
#ifdef FFTMAT_HAVE_AVX2_KERNELS
template <>
inline constexpr bool kAvx2Kernels<float, float> = true;
template <>
inline constexpr bool kAvx2Kernels<float, Eigen::bfloat16> = true;
#endif

template <class Scalar, int Tn, class Element>
inline void tile(bool real, const Element* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx, Scalar* acc) {
#ifdef FFTMAT_HAVE_AVX2_KERNELS
  if constexpr (kAvx2Kernels<Scalar, Element>) {
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

/// Writes the sums of one panel (acc: R real parts, then R imaginary parts) to the rows y[0],
/// y[ld], ... of a block-major output spectrum.
template <class Scalar>
inline void store_panel(const Scalar* acc, Eigen::Index rows, std::complex<Scalar>* y, Eigen::Index ld) {
  for (Eigen::Index r = 0; r < rows; ++r) y[r * ld] = std::complex<Scalar>(acc[r], acc[kPanelRows + r]);
}

/// panel_product for panels stored as Element.
template <class Element, class Scalar>
void panel_product_of(const PackedSpectra<Scalar>& packed, Eigen::Index f, Eigen::Index P, Eigen::Index q,
                      const std::complex<Scalar>* x, Eigen::Index ldx, Eigen::Index T, std::complex<Scalar>* y,
                      Eigen::Index ldy, Eigen::Index ldy_row, Eigen::Index rows) {
  alignas(64) Scalar acc[kTokenTile * 2 * kPanelRows];
  const Element* C = packed.template panel<Element>(f, P);
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
    for (Eigen::Index t = 0; t < tn; ++t) store_panel(acc + t * 2 * kPanelRows, rows, y + (t0 + t) * ldy, ldy_row);
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
  if (packed.bfloat16()) {
    panel_product_of<Eigen::bfloat16>(packed, f, P, q, x, ldx, T, y, ldy, ldy_row, rows);
  } else {
    panel_product_of<Scalar>(packed, f, P, q, x, ldx, T, y, ldy, ldy_row, rows);
  }
}

/// one_token_panels for panels stored as Element.
template <class Element, class Scalar>
void one_token_panels_of(const PackedSpectra<Scalar>& packed, Eigen::Index P1, Eigen::Index P2, Eigen::Index p,
                         Eigen::Index q, const std::complex<Scalar>* x, std::complex<Scalar>* y, Eigen::Index bins) {
  constexpr Eigen::Index R = kPanelRows;
  const auto rows = [&](Eigen::Index P) { return std::min(R, p - P * R); };
  const auto one_bin = [&](Eigen::Index f, Eigen::Index P) {
    panel_product_of<Element>(packed, f, P, q, x + f * q, 0, 1, y + P * R * bins + f, 0, bins, rows(P));
  };
  const bool two = P2 != P1;
  for (Eigen::Index f = 0; f < bins; ++f) {
#ifdef FFTMAT_HAVE_AVX2_KERNELS
    if constexpr (kAvx2Kernels<Scalar, Element>) {
      if (two && !packed.real_bin(f)) {
        alignas(32) float acc[2][2 * R];
        complex_two_panels_avx2(packed.template panel<Element>(f, P1), packed.template panel<Element>(f, P2),
                                reinterpret_cast<const float*>(x + f * q), q, acc[0], acc[1]);
        store_panel(acc[0], rows(P1), y + P1 * R * bins + f, bins);
        store_panel(acc[1], rows(P2), y + P2 * R * bins + f, bins);
        continue;
      }
    }
#endif
    one_bin(f, P1);
    if (two) one_bin(f, P2);
  }
}

/// One token (T = 1), all bins of panels P1 and P2 (P1 == P2: of that one panel, once): afterwards
/// the output blocks of both panels (blocks P*R .. P*R + R - 1 below p) are complete. x is the
/// token's input spectrum (token-major), y its block-major output spectrum. On AVX2 the two panels
/// go through complex_two_panels_avx2 together: two streams in flight.
template <class Scalar>
void one_token_panels(const PackedSpectra<Scalar>& packed, Eigen::Index P1, Eigen::Index P2, Eigen::Index p,
                      Eigen::Index q, const std::complex<Scalar>* x, std::complex<Scalar>* y, Eigen::Index bins) {
  if (packed.bfloat16()) {
    one_token_panels_of<Eigen::bfloat16>(packed, P1, P2, p, q, x, y, bins);
  } else {
    one_token_panels_of<Scalar>(packed, P1, P2, p, q, x, y, bins);
  }
}

}  // namespace fftmat::detail
