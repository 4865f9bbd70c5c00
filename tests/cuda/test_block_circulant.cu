// GPU products against the CPU implementation and the dense definition.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <vector>

#include "../shapes.hpp"
#include "helpers.cuh"

using test::Index;
using fftmat::test::Shape;

namespace {

// The shapes of the CPU tests, then the largest fused block (512) and blocks above it (unfused
// T = 1 path: per-bin GEMV kernel + cuFFT C2R).
const std::vector<Shape> kShapes = [] {
  std::vector<Shape> shapes = fftmat::test::kCommonShapes;
  shapes.insert(shapes.end(), {{640, 256, 64}, {256, 640, 64}, {1024, 512, 128}, {512, 1536, 256}, {1024, 1024, 512},
                               {2048, 1024, 1024}, {1000, 3000, 1000}, {1320, 1056, 33}});
  return shapes;
}();
const std::vector<Index> kTokens = {1, 2, 3, 16, 33};

template <class Scalar>
void check_shape(const Shape& s, Index T, unsigned seed, cudaStream_t stream) {
  using Matrix = test::Matrix<Scalar>;
  const auto A = test::random_block_circulant<Scalar>(s.m, s.n, s.b, seed);
  const fftmat::cuda::BlockCirculant<Scalar> dA(A);
  CHECK(dA.rows() == s.m);
  CHECK(dA.cols() == s.n);
  CHECK(dA.block_size() == s.b);
  const Matrix dense = A.to_dense();

  const Matrix X = test::gaussian<Scalar>(s.n, T, seed + 1000);
  auto dX = test::upload(X);
  thrust::device_vector<Scalar> dY(static_cast<std::size_t>(s.m * T));
  dA.apply(thrust::raw_pointer_cast(dX.data()), thrust::raw_pointer_cast(dY.data()), T, stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
  const Matrix Y = test::download(dY, s.m, T);
  CHECK(test::relative_error(Y, A.apply(X)) < test::tolerance<Scalar>());
  CHECK(test::relative_error(Y, (dense.template cast<double>() * X.template cast<double>()).eval()) <
        10 * test::tolerance<Scalar>());

  const Matrix Xt = test::gaussian<Scalar>(s.m, T, seed + 2000);
  auto dXt = test::upload(Xt);
  thrust::device_vector<Scalar> dYt(static_cast<std::size_t>(s.n * T));
  dA.apply_transpose(thrust::raw_pointer_cast(dXt.data()), thrust::raw_pointer_cast(dYt.data()), T, stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
  const Matrix Yt = test::download(dYt, s.n, T);
  CHECK(test::relative_error(Yt, A.apply_transpose(Xt)) < test::tolerance<Scalar>());
  CHECK(test::relative_error(Yt, (dense.transpose().template cast<double>() * Xt.template cast<double>()).eval()) <
        10 * test::tolerance<Scalar>());
}

}  // namespace

TEST_CASE_TEMPLATE("GPU block-circulant products match the CPU and the dense product", Scalar, float, double) {
  unsigned seed = 1;
  for (const Shape& s : kShapes) {
    for (Index T : kTokens) {
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.b);
      CAPTURE(T);
      check_shape<Scalar>(s, T, seed++, nullptr);
    }
  }
}

TEST_CASE("GPU block-circulant on a Llama-2-7B MLP shape matches the CPU") {
  for (Index T : {Index(1), Index(5), Index(64)}) {
    for (const Shape& s : {Shape{11008, 4096, 64}, Shape{4096, 11008, 64}}) {
      CAPTURE(T);
      CAPTURE(s.m);
      const auto A = test::random_block_circulant<float>(s.m, s.n, s.b, 7);
      const fftmat::cuda::BlockCirculant<float> dA(A);
      const test::Matrix<float> X = test::gaussian<float>(s.n, T, 8);
      thrust::device_vector<float> dX = test::upload(X), dY;
      dA.apply(dX, dY, T);  // device_vector overload, resizes dY
      FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
      CHECK(test::relative_error(test::download(dY, s.m, T), A.apply(X)) < 1e-4);
      const test::Matrix<float> Xt = test::gaussian<float>(s.m, T, 9);
      thrust::device_vector<float> dXt = test::upload(Xt), dYt;
      dA.apply_transpose(dXt, dYt, T);
      FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
      CHECK(test::relative_error(test::download(dYt, s.n, T), A.apply_transpose(Xt)) < 1e-4);
    }
  }
}

TEST_CASE("GPU circulant matches the CPU circulant") {
  for (Index n : {Index(1), Index(2), Index(5), Index(64), Index(1000), Index(4096)}) {
    for (Index T : {Index(1), Index(3)}) {
      CAPTURE(n);
      CAPTURE(T);
      const test::Vector<float> c = test::gaussian<float>(n, 1, static_cast<unsigned>(n));
      const fftmat::Circulant<float> C(c);
      const fftmat::cuda::Circulant<float> dC(C);
      CHECK(dC.size() == n);
      const test::Matrix<float> X = test::gaussian<float>(n, T, 3);
      thrust::device_vector<float> dX = test::upload(X), dY, dYt;
      dC.apply(dX, dY, T);
      dC.apply_transpose(dX, dYt, T);
      FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
      CHECK(test::relative_error(test::download(dY, n, T), C.apply(X)) < 1e-5);
      CHECK(test::relative_error(test::download(dYt, n, T), C.apply_transpose(X)) < 1e-5);
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
  const test::Matrix<float> Y = test::download(dY, n, 1);
  for (Index r = 0; r < n; ++r) CHECK(Y(r, 0) == doctest::Approx(x[static_cast<std::size_t>((r + n - 1) % n)]));
}
