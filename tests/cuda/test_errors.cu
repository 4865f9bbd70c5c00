// Argument errors of the GPU types.
#include <doctest/doctest.h>

#include "helpers.cuh"

TEST_CASE("GPU argument errors throw fftmat::invalid_argument with a message") {
  const test::RandomMatrix<float> M(64, 32, 16, 21);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  thrust::device_vector<float> dX(32 * 2, 1.0f), dY(64 * 2);
  float* x = thrust::raw_pointer_cast(dX.data());
  float* y = thrust::raw_pointer_cast(dY.data());
  CHECK_THROWS_WITH_AS(dA.apply(x, y, 0), doctest::Contains("got 0"), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply(x, y, -3), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply(nullptr, y, 1), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply_transpose(x, nullptr, 1), fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(dA.apply(dX, dY, 3), doctest::Contains("expected 32x3"), fftmat::invalid_argument);
  CHECK_THROWS_AS(dA.apply_transpose(dX, dY, 2), fftmat::invalid_argument);  // needs 64*2 inputs
  CHECK_THROWS_AS(dA.prepare(0), fftmat::invalid_argument);
  // Errors are fftmat::error, as on the CPU.
  CHECK_THROWS_AS(dA.apply(x, y, 0), fftmat::error);
}

TEST_CASE("a chunk that is not a power of two in [1, 65536] is rejected, naming the value") {
  CHECK_THROWS_WITH_AS(fftmat::cuda::set_chunk_tokens(0), doctest::Contains("got 0"), fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(fftmat::cuda::set_chunk_tokens(48), doctest::Contains("got 48"), fftmat::invalid_argument);
  CHECK_THROWS_AS(fftmat::cuda::set_chunk_tokens(1 << 17), fftmat::invalid_argument);
  CHECK(fftmat::cuda::chunk_tokens() == 256);  // unchanged by the rejected values
}

TEST_CASE("TF32 and bfloat16 products are refused for double matrices, before anything is uploaded") {
  const test::RandomMatrix<double> M(64, 32, 16, 23);
  CHECK_THROWS_WITH_AS(fftmat::cuda::BlockCirculant<double>(M.cpu, fftmat::cuda::ProductPrecision::tf32),
                       doctest::Contains("tf32"), fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(fftmat::cuda::BlockCirculant<double>(M.cpu, fftmat::cuda::ProductPrecision::bfloat16),
                       doctest::Contains("bfloat16"), fftmat::invalid_argument);
}

TEST_CASE("stacking refuses matrices that do not share columns, block size and spectrum precision") {
  // 8 block rows: fewer, and the CPU matrix ignores SpectrumPrecision::bfloat16.
  const test::RandomMatrix<float> A(128, 32, 16, 24), wider(128, 48, 16, 25), other_block(128, 32, 8, 26);
  const test::Vector<float> params = fftmat::test::gaussian_vector(128 * 32 / 16, 27).cast<float>();
  const fftmat::BlockCirculant<float> rounded(128, 32, 16, params, fftmat::Padding::none,
                                              fftmat::SpectrumPrecision::bfloat16);
  REQUIRE(rounded.spectrum_precision() == fftmat::SpectrumPrecision::bfloat16);
  using GpuMatrix = fftmat::cuda::BlockCirculant<float>;
  CHECK_THROWS_WITH_AS(GpuMatrix({&A.cpu, &wider.cpu}), doctest::Contains("128x48 with b = 16"),
                       fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(GpuMatrix({&A.cpu, &other_block.cpu}), doctest::Contains("128x32 with b = 8"),
                       fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(GpuMatrix({&A.cpu, &rounded}), doctest::Contains("spectrum precision"),
                       fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(GpuMatrix({&A.cpu, nullptr}), doctest::Contains("null matrix"), fftmat::invalid_argument);
  CHECK_THROWS_WITH_AS(GpuMatrix(std::initializer_list<const fftmat::BlockCirculant<float>*>{}),
                       doctest::Contains("no matrices"), fftmat::invalid_argument);
}

TEST_CASE("zero-padded matrices are rejected on the GPU with a clear message") {
  const test::Vector<float> params = fftmat::test::gaussian_vector(2 * 2 * 16, 22).cast<float>();
  const fftmat::BlockCirculant<float> padded(20, 30, 16, params, fftmat::Padding::zero);
  CHECK_THROWS_WITH_AS(fftmat::cuda::BlockCirculant<float>{padded}, doctest::Contains("zero-padded"),
                       fftmat::invalid_argument);
}
