#pragma once
// Circulant matrices: C(r, k) = c[(r - k) mod n] for the first column c (docs/design.md, Conventions).
// C x = irfft(rfft(c) .* rfft(x)); the spectrum of c is computed once at construction. A circulant
// is the block-circulant matrix with a single n x n block, so it shares that implementation.

#include <Eigen/Core>

#include "block_circulant.hpp"

namespace fftmat {

template <class Scalar>
class Circulant {
 public:
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  using Vector = typename BlockCirculant<Scalar>::Vector;
  using ConstMatrixRef = typename BlockCirculant<Scalar>::ConstMatrixRef;
  using MatrixRef = typename BlockCirculant<Scalar>::MatrixRef;

  /// From the first column (size n >= 1, finite values).
  explicit Circulant(const Eigen::Ref<const Vector>& first_column)
      : matrix_(checked_size(first_column), first_column.size(), first_column.size(), first_column) {}

  Index size() const noexcept { return matrix_.rows(); }
  const Vector& first_column() const noexcept { return matrix_.parameters(); }

  /// Y = C X for X of n x T (Y: n x T; may alias X).
  void apply(const ConstMatrixRef& X, MatrixRef Y) const { matrix_.apply(X, Y); }
  /// Y = C^T X.
  void apply_transpose(const ConstMatrixRef& X, MatrixRef Y) const { matrix_.apply_transpose(X, Y); }
  Matrix apply(const ConstMatrixRef& X) const { return matrix_.apply(X); }
  Matrix apply_transpose(const ConstMatrixRef& X) const { return matrix_.apply_transpose(X); }
  Matrix to_dense() const { return matrix_.to_dense(); }

  /// The same matrix as a 1x1-block BlockCirculant (for code written against that type).
  const BlockCirculant<Scalar>& as_block_circulant() const noexcept { return matrix_; }

 private:
  static Index checked_size(const Eigen::Ref<const Vector>& c) {
    detail::require(c.size() > 0, "a circulant needs a non-empty first column");
    return c.size();
  }
  BlockCirculant<Scalar> matrix_;
};

}  // namespace fftmat
