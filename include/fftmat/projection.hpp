#pragma once
// The Frobenius-nearest block-circulant matrix to a dense W (docs/design.md, Mathematics).
//
// Block-circulant matrices form a linear subspace; its orthogonal projection averages each
// block's wrapped diagonals:  c_ij[d] = (1/b) sum_k W_ij[(k + d) mod b, k].
// (The circulant case is Chan's "optimal preconditioner", T. Chan, SIAM J. Sci. Stat. Comput. 9,
// 1988.) On an unstructured matrix this keeps about 1/b of the energy.

#include <Eigen/Core>

#include <algorithm>
#include <type_traits>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "block_circulant.hpp"
#include "detail/block_layout.hpp"
#include "detail/parallel.hpp"

namespace fftmat {
namespace detail {

/// float for float and the 16-bit types, double for double.
template <class InScalar>
using projection_scalar_t = std::conditional_t<std::is_same_v<InScalar, double>, double, float>;

/// Wrapped-diagonal sums of a column-major m x n matrix (column stride ld) into p*q*b parameters
/// (zero-initialised by the caller), then scaled by 1/b.
template <class Scalar>
void project_column_major(const Scalar* W, Index ld, Index m, Index n, Index b, Scalar* params) {
  const Index p = (m + b - 1) / b, q = (n + b - 1) / b;
  parallel_for(p, 2.0 * double(b * n), [&](Index i, int) {
    const Index rows_here = std::min(b, m - i * b);  // short last block row when zero-padding
    for (Index col = 0; col < n; ++col) {
      const Index j = col / b, k = col % b;
      const Scalar* w = W + col * ld + i * b;  // rows i*b .. i*b + rows_here - 1 of this column
      Scalar* c = params + parameter_index(i, j, Index(0), q, b);
      // d = (r - k) mod b: rows r >= k give d = r - k, rows r < k wrap to d = r - k + b.
      for (Index r = k; r < rows_here; ++r) c[r - k] += w[r];
      const Index wrapped = std::min(k, rows_here);
      for (Index r = 0; r < wrapped; ++r) c[r - k + b] += w[r];
    }
    const Scalar scale = Scalar(1) / static_cast<Scalar>(b);
    const Index row_begin = parameter_index(i, Index(0), Index(0), q, b), row_end = row_begin + q * b;
    for (Index t = row_begin; t < row_end; ++t) params[t] *= scale;
  });
}

}  // namespace detail

/// The block-circulant matrix nearest to W in Frobenius norm. W may be any Eigen dense expression
/// (float, double, Eigen::half, Eigen::bfloat16; row- or column-major); the result is
/// BlockCirculant<double> for double input and BlockCirculant<float> otherwise. With
/// Padding::zero, W is treated as zero-padded to the next multiple of b.
template <class Derived>
BlockCirculant<detail::projection_scalar_t<typename Derived::Scalar>> project_frobenius(
    const Eigen::MatrixBase<Derived>& W, Eigen::Index block_size, Padding padding = Padding::none) {
  using Scalar = detail::projection_scalar_t<typename Derived::Scalar>;
  using Index = Eigen::Index;
  const Index m = W.rows(), n = W.cols(), b = block_size;
  BlockCirculant<Scalar>::validate_shape(m, n, b, padding);
  const Index p = (m + b - 1) / b, q = (n + b - 1) / b;
  typename BlockCirculant<Scalar>::Vector params = BlockCirculant<Scalar>::Vector::Zero(p * q * b);

  if constexpr (Derived::IsRowMajor) {
    // Row-major W is the column-major n x m matrix W^T: project W^T, then transpose back. Block
    // (i, j) of W is the transpose of block (j, i) of W^T, and a circulant's transpose has the
    // reversed first column c[(-d) mod b].
    using RowMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Eigen::Ref<const RowMajor, 0, Eigen::OuterStride<>> Wr(W.template cast<Scalar>());
    typename BlockCirculant<Scalar>::Vector transposed = BlockCirculant<Scalar>::Vector::Zero(p * q * b);
    detail::project_column_major<Scalar>(Wr.data(), Wr.outerStride(), n, m, b, transposed.data());
    for (Index i = 0; i < p; ++i)
      for (Index j = 0; j < q; ++j)
        for (Index d = 0; d < b; ++d)
          params[detail::parameter_index(i, j, d, q, b)] = transposed[detail::parameter_index(j, i, (b - d) % b, p, b)];
  } else {
    using ColMajor = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
    const Eigen::Ref<const ColMajor, 0, Eigen::OuterStride<>> Wc(W.template cast<Scalar>());
    detail::project_column_major<Scalar>(Wc.data(), Wc.outerStride(), m, n, b, params.data());
  }
  return BlockCirculant<Scalar>(m, n, b, params, padding);
}

}  // namespace fftmat
