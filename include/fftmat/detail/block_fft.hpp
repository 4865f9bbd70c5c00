#pragma once
// Batched real FFTs of vectors cut into blocks of length b (docs/design.md, Architecture).
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
// which FFTW's c2r runs faster than the bin-strided token-major layout for small b: its codelets
// read unit-stride input (docs/benchmarks.md has the times). The packed per-bin kernels
// (complex_kernels.hpp) write their output in this layout.

#include "internal_header_check.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <complex>
#include <limits>
#include <type_traits>

#include "../error.hpp"
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
      : dim_(dim), block_size_(block_size), blocks_(dim / block_size + (dim % block_size != 0)), layout_(layout) {
    // FFTW's advanced interface takes int sizes, counts and strides (fftw3.h): every value
    // batch() narrows must fit.
    constexpr long long kLimit = std::numeric_limits<int>::max();
    checked_product({block_size_}, kLimit, "BlockFft: block size");
    checked_product({blocks_}, kLimit, "BlockFft: block count");
    fft_ = batch(blocks_);
  }

  Index dim() const noexcept { return dim_; }
  Index blocks() const noexcept { return blocks_; }
  Index bins() const noexcept { return block_size_ / 2 + 1; }
  /// Complex values between consecutive tokens in the token-major layout.
  Index token_stride() const noexcept { return round_up_to_simd(bins() * blocks_); }
  /// Real scratch per thread for staging one token (zero padding, type conversion).
  Index staging_stride() const noexcept { return round_up_to_simd(blocks_ * block_size_); }

  /// Half spectra of the T columns of X (dim x T, column stride ld) into `spectrum`
  /// (T * token_stride() values, aligned). `staging`: staging_stride() values per thread, aligned.
  template <class InScalar>
  void forward(const InScalar* X, Index ld, Index T, Complex* spectrum, Scalar* staging) const {
    const FftwPlan<Scalar>* aligned_plan = fft_.plan(true, Direction::forward);
    parallel_for(T, flops_per_token(), [&](Index t, int thread) {
      forward_range(fft_, aligned_plan, X + t * ld, 0, blocks_, spectrum + t * token_stride(),
                    staging + thread * staging_stride());
    });
  }

  /// Inverse of forward() without the 1/b normalisation, written to Y (dim x T, column stride ld).
  /// Destroys `spectrum`.
  void inverse(Complex* spectrum, Index T, Scalar* Y, Index ld, Scalar* staging) const {
    const FftwPlan<Scalar>* aligned_plan = fft_.plan(true, Direction::inverse);
    parallel_for(T, flops_per_token(), [&](Index t, int thread) {
      inverse_range(fft_, aligned_plan, spectrum + t * token_stride(), 0, blocks_, Y + t * ld,
                    staging + thread * staging_stride());
    });
  }

  /// Block ranges of one token (forward_blocks, inverse_blocks) start at multiples of this many
  /// blocks, so the complex side keeps the 64-byte alignment the plans were made with.
  static constexpr Index kRangeGranule = 8;

  /// forward() of blocks [first, first + count) of one vector x (dim values) into its spectrum
  /// (token_stride() values): lets the threads of a team share one token's transforms.
  /// `staging`: staging_stride() values, aligned.
  void forward_blocks(const Scalar* x, Index first, Index count, Complex* token_spectrum, Scalar* staging) const {
    const BatchedRealFft<Scalar> fft = batch(count);
    forward_range(fft, fft.plan(true, Direction::forward), x, first, count, token_spectrum, staging);
  }

  /// The inverse transform of `count` consecutive blocks of one token, looked up once (the plan
  /// cache takes a lock) for every range of that length a product transforms.
  struct RangePlan {
    Index count;
    BatchedRealFft<Scalar> fft;
    const FftwPlan<Scalar>* aligned;
  };
  RangePlan inverse_range_plan(Index count) const {
    const BatchedRealFft<Scalar> fft = batch(count);
    return {count, fft, fft.plan(true, Direction::inverse)};
  }

  /// inverse() of blocks [first, first + plan.count) of one token's spectrum into y (dim values).
  /// Only a y that is not SIMD-aligned looks up a plan here (the FFTW_UNALIGNED one).
  void inverse_blocks(const RangePlan& plan, Complex* token_spectrum, Index first, Scalar* y, Scalar* staging) const {
    inverse_range(plan.fft, plan.aligned, token_spectrum, first, plan.count, y, staging);
  }

  /// Rough flop count of one token's transforms (5 N log2 N / 2 per real FFT of size N).
  double flops_per_token() const noexcept {
    return 2.5 * double(blocks_ * block_size_) * std::max(1.0, std::log2(double(block_size_)));
  }

 private:
  /// The plan layout for `count` consecutive blocks of one token.
  BatchedRealFft<Scalar> batch(Index count) const {
    const bool token_major = layout_ == SpectrumLayout::token_major;
    return BatchedRealFft<Scalar>(static_cast<int>(block_size_), static_cast<int>(count),
                                  static_cast<int>(block_size_), token_major ? static_cast<int>(blocks_) : 1,
                                  token_major ? 1 : static_cast<int>(bins()));
  }
  /// Where block `first` of a token's spectrum begins.
  Index spectrum_offset(Index first) const noexcept {
    assert(first % kRangeGranule == 0);
    return layout_ == SpectrumLayout::token_major ? first : first * bins();
  }
  /// The plan of `fft` for this real array: `aligned_plan`, or the FFTW_UNALIGNED plan of the layout.
  static const FftwPlan<Scalar>* plan_for(const BatchedRealFft<Scalar>& fft, const Scalar* real,
                                          const FftwPlan<Scalar>* aligned_plan, Direction direction) {
    return BatchedRealFft<Scalar>::is_aligned(real) ? aligned_plan : fft.plan(false, direction);
  }

  /// Blocks [first, first + count) of x into a token's spectrum; staged (zero padding, type
  /// conversion) when the range is not whole Scalar blocks of x.
  template <class InScalar>
  void forward_range(const BatchedRealFft<Scalar>& fft, const FftwPlan<Scalar>* aligned_plan, const InScalar* x,
                     Index first, Index count, Complex* token_spectrum, Scalar* staging) const {
    const Index begin = first * block_size_, end = std::min(dim_, (first + count) * block_size_);
    const Scalar* source;
    if (!std::is_same_v<InScalar, Scalar> || end - begin < count * block_size_) {
      std::transform(x + begin, x + end, staging, [](InScalar v) { return static_cast<Scalar>(v); });
      std::fill(staging + (end - begin), staging + count * block_size_, Scalar(0));
      source = staging;
    } else {
      source = reinterpret_cast<const Scalar*>(x + begin);  // InScalar == Scalar here
    }
    BatchedRealFft<Scalar>::forward(plan_for(fft, source, aligned_plan, Direction::forward), source,
                                    token_spectrum + spectrum_offset(first));
  }

  /// Blocks [first, first + count) of a token's spectrum back into y (dim values), through
  /// `staging` when the last block is cut short by the dimension.
  void inverse_range(const BatchedRealFft<Scalar>& fft, const FftwPlan<Scalar>* aligned_plan,
                     Complex* token_spectrum, Index first, Index count, Scalar* y, Scalar* staging) const {
    const Index begin = first * block_size_, end = std::min(dim_, (first + count) * block_size_);
    Complex* spectrum = token_spectrum + spectrum_offset(first);
    if (end - begin < count * block_size_) {
      BatchedRealFft<Scalar>::inverse(aligned_plan, spectrum, staging);
      std::copy(staging, staging + (end - begin), y + begin);
    } else {
      BatchedRealFft<Scalar>::inverse(plan_for(fft, y + begin, aligned_plan, Direction::inverse), spectrum, y + begin);
    }
  }

  Index dim_ = 0;
  Index block_size_ = 1;
  Index blocks_ = 0;
  SpectrumLayout layout_ = SpectrumLayout::token_major;
  BatchedRealFft<Scalar> fft_;
};

}  // namespace fftmat::detail
