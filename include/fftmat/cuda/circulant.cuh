#pragma once
// fftmat::cuda::Circulant: a circulant matrix on the GPU (nvcc only). As on the CPU it is the
// block-circulant matrix with a single n x n block, so it shares that implementation: C x =
// irfft(rfft(c) .* rfft(x)) becomes a per-bin 1x1 product. Sizes above kOneTokenMaxBlock (512)
// take the three-launch path (cuFFT R2C, per-bin kernel or cuBLAS, cuFFT C2R) for every piece.

#include <thrust/device_vector.h>

#include "../circulant.hpp"
#include "block_circulant.cuh"

namespace fftmat::cuda {

template <class Scalar>
class Circulant {
 public:
  using Index = std::ptrdiff_t;

  /// Uploads the spectrum of `C` to the current device.
  explicit Circulant(const fftmat::Circulant<Scalar>& C) : matrix_(C.as_block_circulant()) {}

  Index size() const { return matrix_.rows(); }
  int device() const { return matrix_.device(); }

  /// Y = C X for X, Y of size() x T (column-major device arrays; may alias). Asynchronous.
  void apply(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream = nullptr) const {
    matrix_.apply(X, Y, T, stream);
  }
  /// Y = C^T X.
  void apply_transpose(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream = nullptr) const {
    matrix_.apply_transpose(X, Y, T, stream);
  }
  void apply(const thrust::device_vector<Scalar>& X, thrust::device_vector<Scalar>& Y, Index T,
             cudaStream_t stream = nullptr) const {
    matrix_.apply(X, Y, T, stream);
  }
  void apply_transpose(const thrust::device_vector<Scalar>& X, thrust::device_vector<Scalar>& Y, Index T,
                       cudaStream_t stream = nullptr) const {
    matrix_.apply_transpose(X, Y, T, stream);
  }

  /// Makes what products of up to `max_tokens` tokens on `stream` need (BlockCirculant::prepare).
  void prepare(Index max_tokens, cudaStream_t stream = nullptr) const { matrix_.prepare(max_tokens, stream); }

  /// The same matrix as a one-block BlockCirculant.
  const BlockCirculant<Scalar>& as_block_circulant() const noexcept { return matrix_; }

 private:
  BlockCirculant<Scalar> matrix_;
};

}  // namespace fftmat::cuda
