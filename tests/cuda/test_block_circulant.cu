// GPU products against the independent dense float64 reference (tests/reference.hpp).
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

#include "../shapes.hpp"
#include "helpers.cuh"

using test::Index;
using fftmat::test::Shape;

namespace {

// The shapes of the CPU tests, then the largest block of the one-launch one-token kernel (512)
// and blocks above it (one-token pieces through cuFFT and the per-bin GEMV kernel).
const std::vector<Shape> kShapes = [] {
  std::vector<Shape> shapes = fftmat::test::kCommonShapes;
  shapes.insert(shapes.end(), {{640, 256, 64}, {256, 640, 64}, {1024, 512, 128}, {512, 1536, 256}, {1024, 1024, 512},
                               {2048, 1024, 1024}, {1000, 3000, 1000}, {1320, 1056, 33}});
  return shapes;
}();
// 300 runs as pieces of 256 + 32 + 8 + 4 tokens (the default chunk is 256).
const std::vector<Index> kTokens = {1, 2, 3, 16, 33, 300};

/// Both products of `M` for T tokens on `stream`, against the dense reference; returns the larger
/// of the two relative errors.
template <class Scalar>
double check_products(const test::RandomMatrix<Scalar>& M, Index T, unsigned seed, cudaStream_t stream,
                    double tolerance,
                    fftmat::cuda::ProductPrecision precision = fftmat::cuda::ProductPrecision::full) {
  const Index m = M.dense.rows(), n = M.dense.cols();
  const fftmat::cuda::BlockCirculant<Scalar> dA(M.cpu, precision);
  CHECK(dA.rows() == m);
  CHECK(dA.cols() == n);
  const test::Matrix<Scalar> X = test::activations<Scalar>(n, T, seed);
  const auto dX = test::upload(X);
  thrust::device_vector<Scalar> dY(static_cast<std::size_t>(m * T));
  dA.apply(thrust::raw_pointer_cast(dX.data()), thrust::raw_pointer_cast(dY.data()), T, stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
  const double error = test::sampled_error(test::download(dY, m, T), M.dense, X);
  CHECK(error < tolerance);

  const test::Matrix<Scalar> Xt = test::activations<Scalar>(m, T, seed + 1);
  const auto dXt = test::upload(Xt);
  thrust::device_vector<Scalar> dYt(static_cast<std::size_t>(n * T));
  dA.apply_transpose(thrust::raw_pointer_cast(dXt.data()), thrust::raw_pointer_cast(dYt.data()), T, stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
  const double transposed_error =
      test::sampled_error(test::download(dYt, n, T), Eigen::MatrixXd(M.dense.transpose()), Xt);
  CHECK(transposed_error < tolerance);
  return std::max(error, transposed_error);
}

}  // namespace

TEST_CASE_TEMPLATE("GPU block-circulant products match the dense reference", Scalar, float, double) {
  unsigned seed = 1;
  for (const Shape& s : kShapes) {
    const test::RandomMatrix<Scalar> M(s.m, s.n, s.b, seed++);
    for (Index T : kTokens) {
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.b);
      CAPTURE(T);
      check_products(M, T, seed++, nullptr, test::tolerance<Scalar>());
    }
  }
}

TEST_CASE("GPU block-circulant at Llama-2-7B MLP shapes up to T = 4096 matches the dense reference") {
  for (const Shape& s : {Shape{11008, 4096, 64}, Shape{4096, 11008, 64}}) {
    const test::RandomMatrix<float> M(s.m, s.n, s.b, 7);
    for (Index T : {Index(1), Index(5), Index(64), Index(256), Index(4096)}) {
      CAPTURE(s.m);
      CAPTURE(T);
      test::Stream stream;
      const double error = check_products(M, T, 8, stream.stream, test::tolerance<float>());
      MESSAGE("fp32 path, ", s.m, "x", s.n, " T = ", T, ": relative error against float64 ", error);
      fftmat::cuda::release_stream_resources(stream.stream);
    }
  }
}

TEST_CASE("TF32 per-bin products stay within TF32's accuracy of the dense reference") {
  // Spectra and activation spectra enter the products rounded to 10 mantissa bits (unit roundoff
  // 2^-11 each); the rounding errors of different terms are independent, so the relative error
  // of the products stays of the order of 2 * 2^-11 ~ 1e-3. 4e-3 leaves room for the FFTs.
  const double tf32_tolerance = 4e-3;
  for (const Shape& s : {Shape{640, 256, 64}, Shape{11008, 4096, 64}, Shape{4096, 11008, 64}}) {
    const test::RandomMatrix<float> M(s.m, s.n, s.b, 33);
    for (Index T : {Index(2), Index(256)}) {
      CAPTURE(s.m);
      CAPTURE(T);
      const double error = check_products(M, T, 34, nullptr, tf32_tolerance, fftmat::cuda::ProductPrecision::tf32);
      MESSAGE("TF32 products, ", s.m, "x", s.n, " T = ", T, ": relative error against float64 ", error);
    }
  }
}

TEST_CASE("bfloat16 per-bin products stay within bfloat16's accuracy of the dense reference") {
  // Both operands rounded to 8 significant bits (unit roundoff 2^-8 each, independent between
  // terms): the relative error stays of the order of sqrt(2) * 2^-8 ~ 6e-3; 2e-2 leaves room.
  // CUBLAS_COMPUTE_32F_FAST_16BF permits bfloat16 (or TF32) tensor cores without requiring them,
  // so the error is reported, not bounded below: about 3e-3 means bfloat16 ran, 3e-4 TF32, 1e-6
  // full fp32.
  for (const Shape& s : {Shape{640, 256, 64}, Shape{4096, 11008, 64}}) {
    const test::RandomMatrix<float> M(s.m, s.n, s.b, 38);
    const fftmat::cuda::BlockCirculant<float> dA(M.cpu, fftmat::cuda::ProductPrecision::bfloat16);
    for (Index T : {Index(2), Index(256)}) {
      CAPTURE(s.m);
      CAPTURE(T);
      const test::Matrix<float> X = test::activations<float>(s.n, T, 39);
      thrust::device_vector<float> dX = test::upload(X), dY;
      dA.apply(dX, dY, T);
      const double error = test::sampled_error(test::download(dY, s.m, T), M.dense, X);
      CHECK(error < 2e-2);
      MESSAGE("bfloat16 products, ", s.m, "x", s.n, " T = ", T, ": relative error against float64 ", error);
    }
  }
}

TEST_CASE("stacked rows: one GPU matrix of gate and up gives both products") {
  // Llama-2-7B's gate and up (11008 x 4096 each, b = 64) and a small pair; T = 1 is the one-launch
  // kernel, 3 adds a two-token piece, 300 is chunked.
  for (const Shape& s : {Shape{640, 256, 64}, Shape{11008, 4096, 64}}) {
    const test::RandomMatrix<float> gate(s.m, s.n, s.b, 40), up(s.m, s.n, s.b, 41);
    const fftmat::cuda::BlockCirculant<float> gate_up({&gate.cpu, &up.cpu});
    CHECK(gate_up.rows() == 2 * s.m);
    CHECK(gate_up.cols() == s.n);
    Eigen::MatrixXd dense(2 * s.m, s.n);
    dense << gate.dense, up.dense;
    for (Index T : {Index(1), Index(3), Index(300)}) {
      CAPTURE(s.m);
      CAPTURE(T);
      const test::Matrix<float> X = test::activations<float>(s.n, T, 42);
      thrust::device_vector<float> dX = test::upload(X), dY;
      gate_up.apply(dX, dY, T);
      CHECK(test::sampled_error(test::download(dY, 2 * s.m, T), dense, X) < test::tolerance<float>());
      // The transpose of the stack: gate^T x_1 + up^T x_2.
      const test::Matrix<float> Xt = test::activations<float>(2 * s.m, T, 43);
      thrust::device_vector<float> dXt = test::upload(Xt), dYt;
      gate_up.apply_transpose(dXt, dYt, T);
      CHECK(test::sampled_error(test::download(dYt, s.n, T), Eigen::MatrixXd(dense.transpose()), Xt) <
            test::tolerance<float>());
    }
  }
}

TEST_CASE("bfloat16 spectra: one-token products match the dense reference to bfloat16 accuracy") {
  // Each stored spectrum value is off by at most 2^-8 relative (8 significant bits), the errors of
  // different terms are independent: the relative error of a product stays well below 5e-3, the
  // CPU tests' bound, and the rounding must be visible (above 1e-4) for the copy to be in use.
  for (const Shape& s : {Shape{640, 256, 64}, Shape{4096, 11008, 64}}) {
    CAPTURE(s.m);
    const test::Vector<float> params = fftmat::test::gaussian_vector(s.m * s.n / s.b, 35).cast<float>();
    const fftmat::BlockCirculant<float> A(s.m, s.n, s.b, params, fftmat::Padding::none,
                                          fftmat::SpectrumPrecision::bfloat16);
    REQUIRE(A.spectrum_precision() == fftmat::SpectrumPrecision::bfloat16);
    const Eigen::MatrixXd dense = fftmat::test::dense_block_circulant(s.m, s.n, s.b, params.cast<double>());
    const fftmat::cuda::BlockCirculant<float> dA(A);
    const test::Matrix<float> X = test::activations<float>(s.n, 1, 36);
    thrust::device_vector<float> dX = test::upload(X), dY;
    dA.apply(dX, dY, 1);
    const double error = test::sampled_error(test::download(dY, s.m, 1), dense, X);
    CHECK(error < 5e-3);
    CHECK(error > 1e-4);
    // The transpose keeps full precision, as on the CPU.
    const test::Matrix<float> Xt = test::activations<float>(s.m, 1, 37);
    thrust::device_vector<float> dXt = test::upload(Xt), dYt;
    dA.apply_transpose(dXt, dYt, 1);
    CHECK(test::sampled_error(test::download(dYt, s.n, 1), Eigen::MatrixXd(dense.transpose()), Xt) <
          test::tolerance<float>());
  }
}

TEST_CASE("the one-token kernel fits 48 KB of shared memory: static within its reserve, a plan near the cap") {
  using fftmat::cuda::detail::one_token_product;
  using Float2 = fftmat::cuda::detail::Types<float>::Complex;
  using Double2 = fftmat::cuda::detail::Types<double>::Complex;
  const std::vector<const void*> kernels = {
      reinterpret_cast<const void*>(&one_token_product<false, float, Float2, Float2>),
      reinterpret_cast<const void*>(&one_token_product<false, float, __nv_bfloat162, Float2>),
      reinterpret_cast<const void*>(&one_token_product<true, float, Float2, Float2>),
      reinterpret_cast<const void*>(&one_token_product<false, double, Double2, Double2>),
      reinterpret_cast<const void*>(&one_token_product<true, double, Double2, Double2>)};
  for (const void* kernel : kernels) {
    cudaFuncAttributes attributes{};
    FFTMAT_CUDA_CHECK(cudaFuncGetAttributes(&attributes, kernel));
    CHECK(attributes.sharedSizeBytes <= fftmat::cuda::detail::kOneTokenStaticSharedBytes);
    CHECK(static_cast<std::size_t>(attributes.maxDynamicSharedSizeBytes) >=
          fftmat::cuda::detail::kOneTokenDynamicSharedBytes);
  }
  // 2900 input blocks at b = 64: the input's bin and one staged row take 46.9 KB of dynamic shared
  // memory, one output block per tile; still one launch (no cuFFT plan made).
  const test::RandomMatrix<float> M(128, 2900 * 64, 64, 38);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  const test::Matrix<float> X = test::activations<float>(M.dense.cols(), 1, 39);
  const auto dX = test::upload(X);
  thrust::device_vector<float> dY(128);
  dA.apply(thrust::raw_pointer_cast(dX.data()), thrust::raw_pointer_cast(dY.data()), 1, s.stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(test::sampled_error(test::download(dY, 128, 1), M.dense, X) < test::tolerance<float>());
  CHECK(fftmat::cuda::stream_resources(s.stream).plans == 0);
  CHECK(fftmat::cuda::stream_resources(s.stream).counters > 0);
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("a small chunk cuts products into many pieces, with the same results") {
  const test::RandomMatrix<float> M(640, 384, 64, 31);
  struct Chunk {  // the default chunk again however the test ends
    Chunk() { fftmat::cuda::set_chunk_tokens(4); }
    ~Chunk() { fftmat::cuda::set_chunk_tokens(256); }
  } chunk;
  test::Stream stream;
  for (Index T : {Index(1), Index(4), Index(7), Index(33)}) {  // 33 = 8 chunks of 4, then 1
    CAPTURE(T);
    check_products(M, T, 32, stream.stream, test::tolerance<float>());
  }
  fftmat::cuda::release_stream_resources(stream.stream);
}

TEST_CASE("GPU circulant matches the dense circulant") {
  for (Index n : {Index(1), Index(2), Index(5), Index(64), Index(1000), Index(4096)}) {
    for (Index T : {Index(1), Index(3)}) {
      CAPTURE(n);
      CAPTURE(T);
      const test::Vector<float> c = fftmat::test::gaussian_vector(n, static_cast<unsigned>(n)).cast<float>();
      // C(r, k) = c[(r - k) mod n]: the one-block block-circulant of the reference.
      const Eigen::MatrixXd dense = fftmat::test::dense_block_circulant(n, n, n, c.cast<double>());
      const fftmat::cuda::Circulant<float> dC{fftmat::Circulant<float>(c)};
      CHECK(dC.size() == n);
      const test::Matrix<float> X = test::activations<float>(n, T, 3);
      thrust::device_vector<float> dX = test::upload(X), dY, dYt;
      dC.apply(dX, dY, T);
      dC.apply_transpose(dX, dYt, T);
      FFTMAT_CUDA_CHECK(cudaStreamSynchronize(nullptr));
      CHECK(test::sampled_error(test::download(dY, n, T), dense, X) < test::tolerance<float>());
      CHECK(test::sampled_error(test::download(dYt, n, T), Eigen::MatrixXd(dense.transpose()), X) <
            test::tolerance<float>());
    }
  }
}

TEST_CASE("the GPU keeps the first-column convention: a shift matrix moves x down by one") {
  // c = e_1: C(r, k) = c[(r - k) mod n] = 1 where r = k + 1, so (C x)[r] = x[r - 1].
  const Index n = 8;
  test::Vector<float> c = test::Vector<float>::Zero(n);
  c[1] = 1.0f;
  const fftmat::cuda::Circulant<float> dC{fftmat::Circulant<float>(c)};
  std::vector<float> x(n);
  for (Index k = 0; k < n; ++k) x[static_cast<std::size_t>(k)] = static_cast<float>(k + 1);
  thrust::device_vector<float> dX(x.begin(), x.end()), dY;
  dC.apply(dX, dY, 1);
  const Eigen::MatrixXd Y = test::download(dY, n, 1);
  for (Index r = 0; r < n; ++r) CHECK(Y(r, 0) == doctest::Approx(x[static_cast<std::size_t>((r + n - 1) % n)]));
}
