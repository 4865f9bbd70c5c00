#pragma once
// Independent references for the tests: dense matrices built element by element from the
// definitions in docs/design.md (Conventions), never from the library's own to_dense().

#include <Eigen/Core>

#include <cmath>
#include <limits>
#include <random>

namespace fftmat::test {

using Index = Eigen::Index;

/// A(i*b + r, j*b + k) = c_ij[(r - k) mod b], c_ij[d] = params[((i*q) + j)*b + d], cropped to m x n
/// (so it also covers zero-padded matrices: p = ceil(m/b), q = ceil(n/b)).
inline Eigen::MatrixXd dense_block_circulant(Index m, Index n, Index b, const Eigen::VectorXd& params) {
  const Index q = (n + b - 1) / b;
  Eigen::MatrixXd A(m, n);
  for (Index row = 0; row < m; ++row)
    for (Index col = 0; col < n; ++col) {
      const Index i = row / b, r = row % b, j = col / b, k = col % b;
      const Index d = ((r - k) % b + b) % b;
      A(row, col) = params[(i * q + j) * b + d];
    }
  return A;
}

/// The Frobenius projection written out from its definition (docs/design.md, Mathematics):
/// c_ij[d] = (1/b) sum_k W[i*b + (k + d) mod b, j*b + k], with W zero outside its m x n extent.
inline Eigen::VectorXd wrapped_diagonal_averages(const Eigen::MatrixXd& W, Index b) {
  const Index p = (W.rows() + b - 1) / b, q = (W.cols() + b - 1) / b;
  Eigen::VectorXd params = Eigen::VectorXd::Zero(p * q * b);
  for (Index i = 0; i < p; ++i)
    for (Index j = 0; j < q; ++j)
      for (Index d = 0; d < b; ++d) {
        double sum = 0;
        for (Index k = 0; k < b; ++k) {
          const Index row = i * b + (k + d) % b, col = j * b + k;
          if (row < W.rows() && col < W.cols()) sum += W(row, col);
        }
        params[(i * q + j) * b + d] = sum / double(b);
      }
  return params;
}

/// Reproducible standard-normal matrix.
inline Eigen::MatrixXd gaussian(Index rows, Index cols, unsigned seed) {
  std::mt19937_64 engine(seed);
  std::normal_distribution<double> normal;
  Eigen::MatrixXd M(rows, cols);
  for (Index c = 0; c < cols; ++c)
    for (Index r = 0; r < rows; ++r) M(r, c) = normal(engine);
  return M;
}

/// Inputs with correlated coordinates and decaying scales, as real activations have: x = L z with
/// a random mixing matrix L whose k-th column is scaled by decay^k.
inline Eigen::MatrixXd correlated_inputs(Index n, Index T, unsigned seed, double decay = 0.9,
                                         unsigned mixing_seed = 1234) {
  Eigen::MatrixXd L = gaussian(n, n, mixing_seed);
  for (Index k = 0; k < n; ++k) L.col(k) *= std::pow(decay, double(k));
  return L * gaussian(n, T, seed);
}

inline Eigen::VectorXd gaussian_vector(Index size, unsigned seed) { return gaussian(size, 1, seed); }

inline double relative_error(const Eigen::MatrixXd& actual, const Eigen::MatrixXd& expected) {
  const double scale = expected.norm();
  return (actual - expected).norm() / (scale > 0 ? scale : 1.0);
}

/// Tolerance for a relative error of a product computed in Scalar through FFTs.
template <class Scalar>
constexpr double tolerance() {
  return std::is_same_v<Scalar, float> ? 2e-5 : 1e-12;
}

}  // namespace fftmat::test
