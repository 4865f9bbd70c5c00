#pragma once
// The references that need Eigen's solvers -- the low-rank baseline's (docs/calibration.md,
// "Low-rank baseline") and the block-circulant least-squares fit -- apart from reference.hpp: these
// solvers do not compile under nvcc, which the CUDA tests use reference.hpp through.

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <Eigen/SVD>

#include "reference.hpp"

namespace fftmat::test {

/// The rank-r minimiser of ||(B - L) H^(1/2)||_F^2 (H symmetric positive definite) by a route
/// independent of fftmat::low_rank.hpp's: the symmetric square root of H from its eigendecomposition
/// (not a Cholesky factor) and a one-sided Jacobi SVD (not divide and conquer), in long double. Any
/// square root gives the same minimiser: two differ by an orthogonal factor, which the truncated SVD
/// commutes with (docs/calibration.md, "Low-rank baseline").
inline Eigen::MatrixXd whitened_truncation(const Eigen::MatrixXd& B, const Eigen::MatrixXd& H, Index rank) {
  using LongMatrix = Eigen::Matrix<long double, Eigen::Dynamic, Eigen::Dynamic>;
  const Eigen::SelfAdjointEigenSolver<LongMatrix> eigen(H.cast<long double>());
  const LongMatrix& Q = eigen.eigenvectors();
  const auto roots = eigen.eigenvalues().array().sqrt().matrix();
  const LongMatrix root = Q * roots.asDiagonal() * Q.transpose();
  const LongMatrix inverse_root = Q * roots.cwiseInverse().asDiagonal() * Q.transpose();
  const Eigen::JacobiSVD<LongMatrix> svd(B.cast<long double>() * root, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const LongMatrix truncated = svd.matrixU().leftCols(rank) * svd.singularValues().head(rank).asDiagonal() *
                               svd.matrixV().leftCols(rank).transpose();
  return (truncated * inverse_root).cast<double>();
}

/// The undamped least-squares fit min ||A X - Y||_F over all p*q*b parameters of an m x n
/// block-circulant A (m = Y.rows(), n = X.rows()), by dense normal equations in double:
/// (A x)[i*b + r] depends on c_ij[d] through x[j*b + (r - d) mod b], with x zero-padded to q*b.
/// The parameters are laid out as dense_block_circulant reads them.
inline Eigen::VectorXd block_circulant_least_squares(const Eigen::MatrixXd& X, const Eigen::MatrixXd& Y, Index b) {
  const Index m = Y.rows(), n = X.rows(), p = (m + b - 1) / b, q = (n + b - 1) / b, P = p * q * b;
  Eigen::MatrixXd normal = Eigen::MatrixXd::Zero(P, P);
  Eigen::VectorXd rhs = Eigen::VectorXd::Zero(P);
  for (Index s = 0; s < X.cols(); ++s) {
    Eigen::MatrixXd design = Eigen::MatrixXd::Zero(m, P);
    for (Index row = 0; row < m; ++row)
      for (Index j = 0; j < q; ++j)
        for (Index d = 0; d < b; ++d) {
          const Index i = row / b, r = row % b, col = j * b + ((r - d) % b + b) % b;
          if (col < n) design(row, (i * q + j) * b + d) = X(col, s);
        }
    normal += design.transpose() * design;
    rhs += design.transpose() * Y.col(s);
  }
  return normal.ldlt().solve(rhs);
}

/// G + lambda I with lambda = damping * trace(G) / n: the damping of both fftmat calibrators.
inline Eigen::MatrixXd damped(const Eigen::MatrixXd& gram, double damping) {
  Eigen::MatrixXd H = gram;
  H.diagonal().array() += damping * gram.trace() / double(gram.rows());
  return H;
}

}  // namespace fftmat::test
