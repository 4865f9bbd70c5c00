#pragma once
// Per-bin complex products Y^[f] = C^[f] X^[f] of a block-circulant apply (docs/design.md, Mathematics) on
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
// part -- two integer instructions widen 16 values, where converting planar binary16 with F16C or
// planar bfloat16 by zero extension costs enough per column to make the one-token product
// compute-bound on cores with 128-bit FP pipes (docs/design.md, "bfloat16 spectra", has the
// measurements).
//
// Register blocking follows the GotoBLAS/BLIS micro-kernel idea (Goto & van de Geijn, ACM TOMS 34,
// 2008; Van Zee & van de Geijn, ACM TOMS 41, 2015): a panel of R rows stays in L1 while a tile of up
// to Kernels::kTokenTile tokens is accumulated in registers; the inputs are broadcast from the token-major
// input spectrum (bin f of block j of token t at t*ldx + f*q + j), where each token's q values of a
// bin are contiguous.
//
// Kernels are chosen at run time (fftmat/kernel_isa.hpp): float products run the AVX-512F or
// AVX2+FMA builds of one width-generic source (detail/simd_kernels.inl) where the CPU has them, and
// the portable kernels otherwise; double products always run the portable kernels. All compute the
// same sums (rounding may differ in the last bits); tests run every set the host supports against a
// dense reference.

#include "internal_header_check.hpp"

#include <fftmat/detail/block_layout.hpp>
#include <fftmat/detail/huge_page_array.hpp>
#include <fftmat/detail/panel.hpp>
#include <fftmat/detail/parallel.hpp>
#include <fftmat/kernel_isa.hpp>

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <complex>
#include <type_traits>
#include <vector>

namespace fftmat::detail {
/// A multiple of every kernel set's token tile (6 and 12 tokens).
inline constexpr Eigen::Index kTokenTileMultiple = 12;

/// Tokens per chunk of the packed product: a multiple of kTokenTileMultiple whose spectra
/// (`bytes_per_token` each) fill about half of a typical 1 MiB L2.
inline Eigen::Index token_chunk(Eigen::Index bytes_per_token) noexcept {
  const Eigen::Index budget = Eigen::Index(512) << 10;
  const Eigen::Index tiles =
      std::max<Eigen::Index>(1, budget / std::max<Eigen::Index>(1, bytes_per_token * kTokenTileMultiple));
  return tiles * kTokenTileMultiple;
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
      real_[std::size_t(f)] = is_real_bin(f, block_size);
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

  bool bfloat16() const noexcept { return bf16_.size() != 0; }
  Index panels() const noexcept { return panels_; }
  Index bins() const noexcept { return bins_; }
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
  std::size_t bytes() const noexcept {
    return bfloat16() ? bf16_.size() * sizeof(Eigen::bfloat16) : data_.size() * sizeof(Scalar);
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

// ---- kernels ---------------------------------------------------------------------------------------
// A kernel set is a struct with kTokenTile and three static functions (detail/simd_kernels.inl has
// the vector ones): complex_tile<Tn> and real_tile<Tn> compute, for one panel (R rows) and Tn <=
// kTokenTile tokens, acc[t*2R .. t*2R + R) = real parts and acc[t*2R + R .. t*2R + 2R) = imaginary
// parts of sum_j C(r, j) x(j, t), x(j, t) the interleaved complex at x + t*ldx + 2*j (ldx in
// scalars); complex_two_panels does one token of one complex bin for two panels.

/// A stored panel value as Scalar (bfloat16 widens through float, exactly).
template <class Scalar, class Element>
inline Scalar widen(Element value) {
  if constexpr (std::is_same_v<Element, Eigen::bfloat16>) {
    return static_cast<Scalar>(static_cast<float>(value));
  } else {
    return value;
  }
}

/// Plain loops over the R rows that compilers vectorise: double products, and float ones where
/// the CPU has no vector kernels (or fftmat::set_kernel_isa(KernelIsa::portable) asks).
template <class Scalar>
struct PortableKernels {
  using Index = Eigen::Index;
  static constexpr Index kTokenTile = 6;

  template <int Tn, class Element>
  static void complex_tile(const Element* C, Index q, const Scalar* x, Index ldx, Scalar* acc) {
    constexpr Index R = kPanelRows;
    std::fill(acc, acc + Tn * 2 * R, Scalar(0));
    Scalar cr[R], ci[R];
    for (Index j = 0; j < q; ++j) {
      complex_column(C, j, cr, ci);
      for (int t = 0; t < Tn; ++t) {
        const Scalar xr = x[t * ldx + 2 * j], xi = x[t * ldx + 2 * j + 1];
        Scalar* yr = acc + t * 2 * R;
        Scalar* yi = yr + R;
        for (Index r = 0; r < R; ++r) {
          yr[r] += cr[r] * xr - ci[r] * xi;
          yi[r] += cr[r] * xi + ci[r] * xr;
        }
      }
    }
  }

  template <int Tn, class Element>
  static void real_tile(const Element* C, Index q, const Scalar* x, Index ldx, Scalar* acc) {
    constexpr Index R = kPanelRows;
    std::fill(acc, acc + Tn * 2 * R, Scalar(0));
    Scalar c[R];
    for (Index j = 0; j < q; ++j) {
      for (Index r = 0; r < R; ++r) c[r] = widen<Scalar>(C[j * R + r]);
      for (int t = 0; t < Tn; ++t) {
        const Scalar xr = x[t * ldx + 2 * j];
        Scalar* yr = acc + t * 2 * R;
        for (Index r = 0; r < R; ++r) yr[r] += c[r] * xr;
      }
    }
  }

  template <class Element>
  static void complex_two_panels(const Element* C1, const Element* C2, const Scalar* x, Index q, Scalar* acc1,
                                 Scalar* acc2) {
    complex_tile<1>(C1, q, x, 0, acc1);
    complex_tile<1>(C2, q, x, 0, acc2);
  }

 private:
  /// Column j of a complex panel as R real and R imaginary parts, for either layout.
  template <class Element>
  static void complex_column(const Element* C, Index j, Scalar* cr, Scalar* ci) {
    constexpr Index R = kPanelRows;
    const Element* column = C + j * 2 * R;
    for (Index r = 0; r < R; ++r) {
      if constexpr (std::is_same_v<Element, Eigen::bfloat16>) {
        cr[r] = widen<Scalar>(column[2 * r]);
        ci[r] = widen<Scalar>(column[2 * r + 1]);
      } else {
        cr[r] = column[r];
        ci[r] = column[R + r];
      }
    }
  }
};

}  // namespace fftmat::detail

#include <fftmat/detail/simd_avx512.hpp>  // and simd_avx2.hpp: the vector kernel sets

namespace fftmat::detail {

/// Calls body(kernels, Element{}) with the kernel set in use (fftmat::kernel_isa(); float only)
/// and the panels' element type (Scalar, or Eigen::bfloat16 when the panels are bfloat16).
template <class Scalar, class Body>
void with_kernels(const PackedSpectra<Scalar>& packed, const Body& body) {
  const auto with_element = [&](auto kernels) {
    if (packed.bfloat16()) {
      body(kernels, Eigen::bfloat16{});
    } else {
      body(kernels, Scalar{});
    }
  };
#ifdef FFTMAT_X86_KERNELS
  if constexpr (std::is_same_v<Scalar, float>) {
    switch (kernel_isa()) {
      case KernelIsa::avx512: return with_element(avx512::Kernels{});
      case KernelIsa::avx2: return with_element(avx2::Kernels{});
      case KernelIsa::portable: break;
    }
  }
#endif
  with_element(PortableKernels<Scalar>{});
}

/// Kernels::complex_tile<tn> or real_tile<tn> for a run-time tn in 1 .. Kernels::kTokenTile.
template <class Kernels, int Tn = 1, class Element, class Scalar>
void tile(Eigen::Index tn, bool real, const Element* C, Eigen::Index q, const Scalar* x, Eigen::Index ldx,
          Scalar* acc) {
  if constexpr (Tn < Kernels::kTokenTile) {
    if (tn > Tn) return tile<Kernels, Tn + 1>(tn, real, C, q, x, ldx, acc);
  }
  if (real) {
    Kernels::template real_tile<Tn>(C, q, x, ldx, acc);
  } else {
    Kernels::template complex_tile<Tn>(C, q, x, ldx, acc);
  }
}

/// Writes the sums of one panel (acc: R real parts, then R imaginary parts) to the rows y[0],
/// y[ld], ... of a block-major output spectrum.
template <class Scalar>
inline void store_panel(const Scalar* acc, Eigen::Index rows, std::complex<Scalar>* y, Eigen::Index ld) {
  for (Eigen::Index r = 0; r < rows; ++r) y[r * ld] = std::complex<Scalar>(acc[r], acc[kPanelRows + r]);
}

/// panel_product with a given kernel set and panel element type.
template <class Kernels, class Element, class Scalar>
void panel_product_with(const PackedSpectra<Scalar>& packed, Eigen::Index f, Eigen::Index P, Eigen::Index q,
                        const std::complex<Scalar>* x, Eigen::Index ldx, Eigen::Index T, std::complex<Scalar>* y,
                        Eigen::Index ldy, Eigen::Index ldy_row, Eigen::Index rows) {
  static_assert(kTokenTileMultiple % Kernels::kTokenTile == 0, "token chunks are whole tiles");
  alignas(64) Scalar acc[Kernels::kTokenTile * 2 * kPanelRows];
  const Element* C = packed.template panel<Element>(f, P);
  const bool real = packed.real_bin(f);
  const Scalar* xs = reinterpret_cast<const Scalar*>(x);
  const Eigen::Index ldxs = 2 * ldx;
  for (Eigen::Index t0 = 0; t0 < T; t0 += Kernels::kTokenTile) {
    const Eigen::Index tn = std::min(Kernels::kTokenTile, T - t0);
    tile<Kernels>(tn, real, C, q, xs + t0 * ldxs, ldxs, acc);
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
  with_kernels(packed, [&](auto kernels, auto element) {
    panel_product_with<decltype(kernels), decltype(element)>(packed, f, P, q, x, ldx, T, y, ldy, ldy_row, rows);
  });
}

/// Y^[f] = C^[f] X^[f] for every bin f and all p rows, for T tokens on the calling thread: the
/// input spectrum token-major (x, token stride ldx), the output block-major (y, token stride ldy).
/// Panel by panel, so each panel stays in L1 across the token tiles of all its bins' products.
template <class Scalar>
void packed_products(const PackedSpectra<Scalar>& packed, Eigen::Index p, Eigen::Index q,
                     const std::complex<Scalar>* x, Eigen::Index ldx, Eigen::Index T, std::complex<Scalar>* y,
                     Eigen::Index ldy) {
  const Eigen::Index bins = packed.bins();
  with_kernels(packed, [&](auto kernels, auto element) {
    for (Eigen::Index P = 0; P < packed.panels(); ++P) {
      const Eigen::Index row0 = P * kPanelRows, rows = std::min(kPanelRows, p - row0);
      for (Eigen::Index f = 0; f < bins; ++f) {
        panel_product_with<decltype(kernels), decltype(element)>(packed, f, P, q, x + f * q, ldx, T,
                                                                 y + row0 * bins + f, ldy, bins, rows);
      }
    }
  });
}

/// One token (T = 1), all bins of panels P1 and P2 (P1 == P2: of that one panel, once): afterwards
/// the output blocks of both panels (blocks P*R .. P*R + R - 1 below p) are complete. x is the
/// token's input spectrum (token-major), y its block-major output spectrum. The complex bins of two
/// panels go through Kernels::complex_two_panels together: two streams in flight.
template <class Scalar>
void one_token_panels(const PackedSpectra<Scalar>& packed, Eigen::Index P1, Eigen::Index P2, Eigen::Index p,
                      Eigen::Index q, const std::complex<Scalar>* x, std::complex<Scalar>* y, Eigen::Index bins) {
  constexpr Eigen::Index R = kPanelRows;
  const auto rows = [&](Eigen::Index P) { return std::min(R, p - P * R); };
  with_kernels(packed, [&](auto kernels, auto element) {
    using Kernels = decltype(kernels);
    using Element = decltype(element);
    const auto one_bin = [&](Eigen::Index f, Eigen::Index P) {
      panel_product_with<Kernels, Element>(packed, f, P, q, x + f * q, 0, 1, y + P * R * bins + f, 0, bins, rows(P));
    };
    const bool two = P2 != P1;
    for (Eigen::Index f = 0; f < bins; ++f) {
      if (two && !packed.real_bin(f)) {
        alignas(64) Scalar acc[2][2 * R];
        Kernels::complex_two_panels(packed.template panel<Element>(f, P1), packed.template panel<Element>(f, P2),
                                    reinterpret_cast<const Scalar*>(x + f * q), q, acc[0], acc[1]);
        store_panel(acc[0], rows(P1), y + P1 * R * bins + f, bins);
        store_panel(acc[1], rows(P2), y + P2 * R * bins + f, bins);
        continue;
      }
      one_bin(f, P1);
      if (two) one_bin(f, P2);
    }
  });
}

/// Dense-equivalent flops of a one-token product (what decides whether a team is woken).
template <class Scalar>
double one_token_flops(const PackedSpectra<Scalar>& packed, Eigen::Index q) noexcept {
  return 8.0 * double(kPanelRows * q * packed.panels() * packed.bins());
}

/// One token on a team: `member`'s contiguous share of the panels, streamed as two halves side by
/// side (panel first + k with panel first + k + half; each half one contiguous stretch of the
/// panel-major spectra, so two sequential streams, and one broadcast of the input serves both),
/// calling panel_done(P) as soon as all bins of panel P are in y. x: the token's input spectrum
/// (token-major), y: its output spectrum (block-major).
template <class Scalar, class PanelDone>
void one_token_share(const PackedSpectra<Scalar>& packed, const TeamMember& member, Eigen::Index p, Eigen::Index q,
                     const std::complex<Scalar>* x, std::complex<Scalar>* y, const PanelDone& panel_done) {
  const auto [first, end] = member.share(packed.panels());
  const Eigen::Index half = (end - first + 1) / 2;
  for (Eigen::Index P1 = first; P1 < first + half; ++P1) {
    const Eigen::Index P2 = P1 + half < end ? P1 + half : P1;  // an odd share's last panel goes alone
    one_token_panels(packed, P1, P2, p, q, x, y, packed.bins());
    panel_done(P1);
    if (P2 != P1) panel_done(P2);
  }
}

}  // namespace fftmat::detail
