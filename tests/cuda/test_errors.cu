// Argument errors of the GPU types.
#include <doctest/doctest.h>

#include "helpers.cuh"

TEST_CASE("GPU argument errors throw fftmat::invalid_argument with a message") {
  const auto A = test::random_block_circulant<float>(64, 32, 16, 21);
  const fftmat::cuda::BlockCirculant<float> dA(A);
  thrust::device_vector<float> dX(32 * 2, 1.0f), dY(64 * 2);
  float* x = thrust::raw_pointer_cast(dX.data());
  float* y = thrust::raw_pointer_cast(dY.data());
  CHECK_THROWS_AS(dA.apply(x, y, 0), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply(x, y, -3), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply(nullptr, y, 1), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply_transpose(x, nullptr, 1), fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(dA.apply(dX, dY, 3), doctest::Contains("expected 32x3"), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply_transpose(dX, dY, 2), fftmat::invalid_argument);  // needs 64*2 inputs
  CHECK_THROWS_AS(dA.apply(x, y, std::ptrdiff_t(1) << 40), fftmat::invalid_argument);
  // Errors are fftmat::error, as on the CPU.
  CHECK_THROWS_AS(dA.apply(x, y, 0), fftmat::error);
}

TEST_CASE("zero-padded matrices are rejected on the GPU with a clear message") {
  const test::Vector<float> params = test::gaussian<float>(2 * 2 * 16, 1, 22);
  const fftmat::BlockCirculant<float> padded(20, 30, 16, params, fftmat::Padding::zero);
  CHECK_THROWS_WITH_AS(fftmat::cuda::BlockCirculant<float>{padded}, doctest::Contains("zero-padded"),
                       fftmat::invalid_argument);
}
