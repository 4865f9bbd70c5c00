#pragma once
// Where a block-circulant matrix keeps its numbers (docs/design.md, Conventions): the index of a
// first-column parameter c_ij[d], and which half-spectrum bins of a real block are real. Plain
// constexpr functions without dependencies, so that the CUDA kernels (cuda/kernels.cuh) use the
// same definitions as the CPU code.

#include "internal_header_check.hpp"

#ifdef __CUDACC__
#define FFTMAT_HOST_DEVICE __host__ __device__
#else
#define FFTMAT_HOST_DEVICE
#endif

namespace fftmat::detail {

/// Where c_ij[d] lives among the p*q*b parameters of a matrix with q block columns and block size b.
template <class Int>
FFTMAT_HOST_DEVICE constexpr Int parameter_index(Int i, Int j, Int d, Int q, Int b) noexcept {
  return (i * q + j) * b + d;
}

/// Whether half-spectrum bin f (0 <= f <= b/2) of a real block of length b is real: the DC bin and,
/// for even b, the Nyquist bin. Every other bin also stands for its conjugate mirror f' = b - f of
/// the full spectrum, which counts it twice in Parseval's sum and in the inverse DFT.
template <class Int>
FFTMAT_HOST_DEVICE constexpr bool is_real_bin(Int f, Int b) noexcept {
  return f == 0 || 2 * f == b;
}

}  // namespace fftmat::detail
