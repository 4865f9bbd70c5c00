#pragma once
// Batched real FFTs of vectors cut into blocks of length b (DESIGN.md section 2).
//
// A batch of T vectors of length `dim` (column-major, column stride `ld`) is cut into
// `blocks = ceil(dim / b)` blocks each; a short last block is zero-padded. Their half spectra are
// stored token-major: bin f of block j of token t lives at
//
//     t * token_stride + f * blocks + j,      bins = b/2 + 1,  token_stride >= bins * blocks,
//
// (SpectrumLayout::token_major), so for every bin f the `blocks x T` matrix of that bin is column-major with outer stride
// token_stride -- what a per-bin complex GEMM consumes -- while the FFT plans depend only on
// (b, blocks), not on T. That keeps the number of distinct plans small however many token counts a
// model sees. token_stride is rounded up so every token's spectrum starts SIMD-aligned, as FFTW's
// new-array execution requires of arrays used with a plan made on aligned arrays.
//
// SpectrumLayout::block_major instead puts the bins of one block next to each other,
//
//     t * token_stride + j * bins + f,
//
// which FFTW's c2r runs about twice as fast as the bin-strided token-major layout for small b
// (measured with FFTW 3.3.10 at b = 64, 172 blocks: unit-stride codelet input). The packed per-bin
// kernels (complex_kernels.hpp) write their output in this layout.

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <complex>
#include <type_traits>

#include "fftw.hpp"
#include "parallel.hpp"

namespace fftmat::detail {

using Index = Eigen::Index;

/// Rounds `count` up to a multiple of 16 elements (64 bytes for float: any SIMD width FFTW uses).
constexpr Index round_up_to_simd(Index count) noexcept { return (count + 15) / 16 * 16; }

enum class SpectrumLayout { token_major, block_major };

template <class Scalar>
class BlockFft {
 public:
  using Complex = std::complex<Scalar>;

  BlockFft() = default;
  BlockFft(Index dim, Index block_size, SpectrumLayout layout = SpectrumLayout::token_major)
      : dim_(dim),
        block_size_(block_size),
        blocks_((dim + block_size - 1) / block_size),
        layout_(layout),
        fft_(static_cast<int>(block_size), static_cast<int>(blocks_), static_cast<int>(block_size),
             layout == SpectrumLayout::token_major ? static_cast<int>(blocks_) : 1,
             layout == SpectrumLayout::token_major ? 1 : static_cast<int>(block_size / 2 + 1)) {}

  Index dim() const noexcept { return dim_; }
  Index blocks() const noexcept { return blocks_; }
  SpectrumLayout layout() const noexcept { return layout_; }
  Index bins() const noexcept { return block_size_ / 2 + 1; }
  /// Complex values between consecutive tokens in the token-major layout.
  Index token_stride() const noexcept { return round_up_to_simd(bins() * blocks_); }
  /// Real scratch per thread for staging one token (zero padding, type conversion).
  Index staging_stride() const noexcept { return round_up_to_simd(blocks_ * block_size_); }
  bool padded() const noexcept { return blocks_ * block_size_ != dim_; }

  /// Half spectra of the T columns of X (dim x T, column stride ld) into `spectrum`
  /// (T * token_stride() values, aligned). `staging`: staging_stride() values per thread, aligned.
  template <class InScalar>
  void forward(const InScalar* X, Index ld, Index T, Complex* spectrum, Scalar* staging) const {
    const bool stage = !std::is_same_v<InScalar, Scalar> || padded();
    const FftwPlan<Scalar>* aligned_plan = fft_.plan(true, Direction::forward);
    parallel_for(T, flops_per_token(), [&](Index t, int thread) {
      const InScalar* column = X + t * ld;
      const Scalar* source;
      if (stage) {
        Scalar* staged = staging + thread * staging_stride();
        std::transform(column, column + dim_, staged, [](InScalar v) { return static_cast<Scalar>(v); });
        std::fill(staged + dim_, staged + blocks_ * block_size_, Scalar(0));
        source = staged;
      } else {
        source = reinterpret_cast<const Scalar*>(column);  // InScalar == Scalar here
      }
      BatchedRealFft<Scalar>::forward(plan_for(source, aligned_plan, Direction::forward), source,
                                      spectrum + t * token_stride());
    });
  }

  /// Inverse of forward() without the 1/b normalisation, written to Y (dim x T, column stride ld).
  /// Destroys `spectrum`.
  void inverse(Complex* spectrum, Index T, Scalar* Y, Index ld, Scalar* staging) const {
    const FftwPlan<Scalar>* aligned_plan = fft_.plan(true, Direction::inverse);
    parallel_for(T, flops_per_token(), [&](Index t, int thread) {
      Scalar* column = Y + t * ld;
      Complex* token_spectrum = spectrum + t * token_stride();
      if (padded()) {
        Scalar* staged = staging + thread * staging_stride();
        BatchedRealFft<Scalar>::inverse(aligned_plan, token_spectrum, staged);
        std::copy(staged, staged + dim_, column);
      } else {
        BatchedRealFft<Scalar>::inverse(plan_for(column, aligned_plan, Direction::inverse), token_spectrum,
                                        column);
      }
    });
  }

  /// Rough flop count of one token's transforms (5 N log2 N / 2 per real FFT of size N).
  double flops_per_token() const noexcept {
    return 2.5 * double(blocks_ * block_size_) * std::max(1.0, std::log2(double(block_size_)));
  }

 private:
  const FftwPlan<Scalar>* plan_for(const Scalar* real, const FftwPlan<Scalar>* aligned_plan,
                                   Direction direction) const {
    return BatchedRealFft<Scalar>::is_aligned(real) ? aligned_plan : fft_.plan(false, direction);
  }

  Index dim_ = 0;
  Index block_size_ = 1;
  Index blocks_ = 0;
  SpectrumLayout layout_ = SpectrumLayout::token_major;
  BatchedRealFft<Scalar> fft_;
};

}  // namespace fftmat::detail
