#pragma once
// The block half spectra of a batch of input vectors, computed once and consumed by several
// block-circulant matrices with the same column space -- Llama's gate and up projections read the
// same MLP input, so its FFT is done once for both.

#include <Eigen/Core>

#include <complex>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "detail/fftw.hpp"
#include "error.hpp"

namespace fftmat {

template <class Scalar>
class BlockCirculant;

/// Token-major block spectra of an n x T input (layout in detail/block_fft.hpp). Filled by
/// BlockCirculant::transform_input and read by BlockCirculant::apply_transformed.
template <class Scalar>
class InputSpectrum {
 public:
  using Index = Eigen::Index;
  InputSpectrum() = default;

  Index dim() const noexcept { return dim_; }
  Index block_size() const noexcept { return block_size_; }
  Index tokens() const noexcept { return tokens_; }

 private:
  friend class BlockCirculant<Scalar>;
  Index dim_ = 0;
  Index block_size_ = 0;
  Index tokens_ = 0;
  detail::AlignedBuffer<std::complex<Scalar>> values_;
};

}  // namespace fftmat
