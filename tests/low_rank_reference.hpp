#pragma once
// The low-rank baseline's reference (docs/calibration.md, "Low-rank baseline"), apart from
// reference.hpp: its eigen- and singular-value solvers do not compile under nvcc, which the CUDA
// tests use reference.hpp through.

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

/// G + lambda I with lambda = damping * trace(G) / n: the damping of both fftmat calibrators.
inline Eigen::MatrixXd damped(const Eigen::MatrixXd& gram, double damping) {
  Eigen::MatrixXd H = gram;
  H.diagonal().array() += damping * gram.trace() / double(gram.rows());
  return H;
}

}  // namespace fftmat::test
