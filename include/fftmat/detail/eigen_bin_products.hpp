#pragma once
// The per-bin products Y^[f] = C^[f] X^[f] (or C^[f]^H X^[f] for the transpose) as Eigen complex
// GEMMs on the frequency-major spectra (docs/design.md, Mathematics): what matrices with fewer
// block rows than one packed panel, and every transpose, use.

#include "internal_header_check.hpp"

#include <Eigen/Core>

#include <complex>

#include "parallel.hpp"

namespace fftmat::detail {

/// For every bin f < bins: output bin f (out_blocks x T) = C^[f] (p x q, row-major at
/// spectra + f*p*q), or its conjugate transpose when `adjoint`, times input bin f (in_blocks x T).
/// Both activation spectra are token-major (bin f of block j of token t at t*stride + f*blocks + j).
template <class Scalar>
void eigen_bin_products(const std::complex<Scalar>* spectra, Eigen::Index p, Eigen::Index q, Eigen::Index bins,
                        bool adjoint, const std::complex<Scalar>* input, Eigen::Index in_stride,
                        std::complex<Scalar>* output, Eigen::Index out_stride, Eigen::Index T) {
  using Complex = std::complex<Scalar>;
  using BinMatrix = Eigen::Matrix<Complex, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using TokenMatrix = Eigen::Matrix<Complex, Eigen::Dynamic, Eigen::Dynamic>;
  using Stride = Eigen::OuterStride<>;
  const Eigen::Index in_blocks = adjoint ? p : q, out_blocks = adjoint ? q : p;
  parallel_for(bins, 8.0 * double(p * q * T), [&](Eigen::Index f, int) {
    Eigen::Map<const BinMatrix> C(spectra + f * p * q, p, q);
    Eigen::Map<const TokenMatrix, 0, Stride> X(input + f * in_blocks, in_blocks, T, Stride(in_stride));
    Eigen::Map<TokenMatrix, 0, Stride> Y(output + f * out_blocks, out_blocks, T, Stride(out_stride));
    if (adjoint) {
      Y.noalias() = C.adjoint() * X;
    } else {
      Y.noalias() = C * X;
    }
  });
}

}  // namespace fftmat::detail
