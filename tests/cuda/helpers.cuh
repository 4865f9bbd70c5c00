#pragma once
// Test helpers: random block-circulant matrices and activations, device round trips, errors.

#include <thrust/device_vector.h>
#include <thrust/host_vector.h>

#include <Eigen/Core>

#include <cmath>
#include <random>
#include <vector>

#include <fftmat/block_circulant.hpp>
#include <fftmat/cuda.hpp>

namespace test {

using Index = std::ptrdiff_t;

template <class Scalar>
using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
template <class Scalar>
using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;

template <class Scalar>
Matrix<Scalar> gaussian(Index rows, Index cols, unsigned seed) {
  std::mt19937 generator(seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  Matrix<Scalar> result(rows, cols);
  for (Index k = 0; k < result.size(); ++k) result.data()[k] = static_cast<Scalar>(normal(generator));
  return result;
}

template <class Scalar>
fftmat::BlockCirculant<Scalar> random_block_circulant(Index m, Index n, Index b, unsigned seed) {
  const Matrix<Scalar> params = gaussian<Scalar>(m * n / b, 1, seed);
  return fftmat::BlockCirculant<Scalar>(m, n, b, Vector<Scalar>(params));
}

template <class Scalar>
thrust::device_vector<Scalar> upload(const Matrix<Scalar>& X) {
  return thrust::device_vector<Scalar>(X.data(), X.data() + X.size());
}

template <class Scalar>
Matrix<Scalar> download(const thrust::device_vector<Scalar>& d, Index rows, Index cols) {
  REQUIRE(static_cast<Index>(d.size()) == rows * cols);
  thrust::host_vector<Scalar> h = d;  // synchronous copy
  Matrix<Scalar> result(rows, cols);
  for (Index k = 0; k < result.size(); ++k) result.data()[k] = h[static_cast<std::size_t>(k)];
  return result;
}

/// ||a - b||_F / ||b||_F in double (0 when both are 0).
template <class A, class B>
double relative_error(const A& a, const B& b) {
  const double norm = b.template cast<double>().norm();
  const double diff = (a.template cast<double>() - b.template cast<double>()).norm();
  return norm == 0.0 ? diff : diff / norm;
}

template <class Scalar>
double tolerance() {
  return std::is_same_v<Scalar, float> ? 2e-5 : 1e-12;
}

}  // namespace test
