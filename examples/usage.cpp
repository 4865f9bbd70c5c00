// The README's usage example: fit a block-circulant matrix to a dense weight and use it.
#include <fftmat/fftmat.hpp>

#include <iostream>

int main() {
  const Eigen::Index rows = 1024, cols = 512, block = 64, tokens = 256;
  const Eigen::MatrixXf W = Eigen::MatrixXf::Random(rows, cols);  // a dense layer, y = W x
  const Eigen::MatrixXf X = Eigen::MatrixXf::Random(cols, tokens);  // activations, cols x tokens

  // Nearest block-circulant matrix in Frobenius norm: rows*cols/block parameters.
  const fftmat::BlockCirculant<float> A = fftmat::project_frobenius(W, block);

  // Loss-aware fit on activation samples: matches W's outputs on inputs like X.
  fftmat::Calibrator<float> calibrator(rows, cols, block);
  calibrator.accumulate(X, W * X);  // any number of batches
  const fftmat::BlockCirculant<float> B = calibrator.fit(/*damping=*/1e-2);

  Eigen::MatrixXf Y(rows, tokens);
  B.apply(X, Y);  // Y = B X: FFTs + one small complex GEMM per frequency bin
  std::cout << "parameters: " << A.parameter_count() << " instead of " << rows * cols << "\n"
            << "relative output error on X, Frobenius: " << (A.apply(X) - W * X).norm() / (W * X).norm() << "\n"
            << "relative output error on X, calibrated: " << (Y - W * X).norm() / (W * X).norm() << "\n";
  return 0;
}
