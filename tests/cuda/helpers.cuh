#pragma once
// Test helpers: random block-circulant matrices with their independent float64 references
// (tests/reference.hpp: dense matrices built element by element), device round trips, streams.

#include <thrust/device_vector.h>
#include <thrust/host_vector.h>

#include <Eigen/Core>

#include <cstddef>
#include <vector>

#include <fftmat/block_circulant.hpp>
#include <fftmat/cuda.hpp>

#include "../reference.hpp"

namespace test {

using Index = std::ptrdiff_t;
using fftmat::test::relative_error;
using fftmat::test::tolerance;

template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

/// A random m x n block-circulant matrix in Scalar and its dense float64 reference, built from the
/// same parameters (rounded to Scalar first, so the reference is exactly the matrix multiplied).
template <class Scalar>
struct RandomMatrix {
  RandomMatrix(Index m, Index n, Index b, unsigned seed)
      : params(fftmat::test::gaussian_vector(m * n / b, seed).cast<Scalar>()),
        cpu(m, n, b, params),
        dense(fftmat::test::dense_block_circulant(m, n, b, params.template cast<double>())) {}
  Vector<Scalar> params;
  fftmat::BlockCirculant<Scalar> cpu;
  Eigen::MatrixXd dense;
};

/// Random activations in Scalar.
template <class Scalar>
Matrix<Scalar> activations(Index rows, Index tokens, unsigned seed) {
  return fftmat::test::gaussian(rows, tokens, seed).cast<Scalar>();
}

template <class Scalar>
thrust::device_vector<Scalar> upload(const Matrix<Scalar>& X) {
  return thrust::device_vector<Scalar>(X.data(), X.data() + X.size());
}

/// The device array as a float64 rows x cols matrix (a synchronous copy).
template <class Scalar>
Eigen::MatrixXd download(const thrust::device_vector<Scalar>& d, Index rows, Index cols) {
  REQUIRE(static_cast<Index>(d.size()) == rows * cols);
  thrust::host_vector<Scalar> h = d;
  Eigen::MatrixXd result(rows, cols);
  for (Index k = 0; k < result.size(); ++k) result.data()[k] = static_cast<double>(h[static_cast<std::size_t>(k)]);
  return result;
}

/// ||Y(:, columns) - (M X)(:, columns)||_F / ||(M X)(:, columns)||_F with M X in float64: large
/// products are checked on a sample of their columns (tokens), which keeps the reference cheap.
template <class Scalar>
double sampled_error(const Eigen::MatrixXd& Y, const Eigen::MatrixXd& M, const Matrix<Scalar>& X) {
  const Index T = X.cols();
  std::vector<Index> columns;
  const Index step = T <= 8 ? 1 : T / 8;
  for (Index t = 0; t < T; t += step) columns.push_back(t);
  if (columns.back() != T - 1) columns.push_back(T - 1);  // the last piece of a chunked product
  Eigen::MatrixXd actual(Y.rows(), static_cast<Index>(columns.size()));
  Eigen::MatrixXd x(X.rows(), static_cast<Index>(columns.size()));
  for (std::size_t k = 0; k < columns.size(); ++k) {
    actual.col(static_cast<Index>(k)) = Y.col(columns[k]);
    x.col(static_cast<Index>(k)) = X.col(columns[k]).template cast<double>();
  }
  return relative_error(actual, M * x);
}

/// RAII non-blocking stream for the tests.
struct Stream {
  cudaStream_t stream = nullptr;
  Stream() { FFTMAT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

}  // namespace test
