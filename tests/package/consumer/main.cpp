#include <fftmat/fftmat.hpp>

#include <cstdio>

// Multiplies with a block-circulant matrix and checks the result against the dense product.
int main() {
  const Eigen::Index m = 64, n = 32, b = 8;
  const Eigen::MatrixXd W = Eigen::MatrixXd::Random(m, n);
  const fftmat::BlockCirculant<double> A = fftmat::project_frobenius(W, b);
  const Eigen::MatrixXd X = Eigen::MatrixXd::Random(n, 3);
  const double error = (A.apply(X) - A.to_dense() * X).norm() / (A.to_dense() * X).norm();
  std::printf("consumer: relative error %.3g\n", error);
  return error < 1e-12 ? 0 : 1;
}
