// Streams, aliasing, graph capture and plan caching.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include "helpers.cuh"

using test::Index;

namespace {

/// RAII non-blocking stream for the tests.
struct Stream {
  cudaStream_t stream = nullptr;
  Stream() { FFTMAT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
};

}  // namespace

TEST_CASE("calls on different streams without host synchronisation are ordered by the object") {
  const Index m = 640, n = 384, b = 64;
  const auto A = test::random_block_circulant<float>(m, n, b, 11);
  const fftmat::cuda::BlockCirculant<float> dA(A);
  Stream s1, s2, s3;
  // Alternate token counts and streams so that consecutive calls share the workspace.
  const Index tokens[] = {1, 7, 1, 32, 2, 1, 7};
  cudaStream_t streams[] = {s1.stream, s2.stream, s3.stream, s1.stream, s2.stream, s3.stream, nullptr};
  std::vector<thrust::device_vector<float>> inputs, outputs;
  std::vector<test::Matrix<float>> expected;
  for (int call = 0; call < 7; ++call) {
    const test::Matrix<float> X = test::gaussian<float>(n, tokens[call], 100 + call);
    inputs.push_back(test::upload(X));
    outputs.emplace_back(static_cast<std::size_t>(m * tokens[call]));
    expected.push_back(A.apply(X));
  }
  for (int call = 0; call < 7; ++call) {
    dA.apply(thrust::raw_pointer_cast(inputs[call].data()), thrust::raw_pointer_cast(outputs[call].data()),
             tokens[call], streams[call]);
  }
  FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
  for (int call = 0; call < 7; ++call) {
    CAPTURE(call);
    CHECK(test::relative_error(test::download(outputs[call], m, tokens[call]), expected[call]) < 2e-5);
  }
  CHECK(dA.cached_plans() == 1 + 2 + 2 + 2);  // T=1 fused: forward only; T = 7, 32, 2: a pair each
}

TEST_CASE("in-place products (X and Y the same buffer) on a square matrix") {
  const Index n = 512, b = 32;
  const auto A = test::random_block_circulant<float>(n, n, b, 12);
  const fftmat::cuda::BlockCirculant<float> dA(A);
  Stream s;
  for (Index T : {Index(1), Index(9)}) {
    CAPTURE(T);
    const test::Matrix<float> X = test::gaussian<float>(n, T, 13);
    thrust::device_vector<float> d = test::upload(X);
    dA.apply(thrust::raw_pointer_cast(d.data()), thrust::raw_pointer_cast(d.data()), T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(test::relative_error(test::download(d, n, T), A.apply(X)) < 2e-5);
    thrust::device_vector<float> e = test::upload(X);
    dA.apply_transpose(e, e, T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(test::relative_error(test::download(e, n, T), A.apply_transpose(X)) < 2e-5);
  }
}

TEST_CASE("products can be captured into a CUDA graph after a first call with the same T") {
  const Index m = 1024, n = 256, b = 64;
  const auto A = test::random_block_circulant<float>(m, n, b, 14);
  const fftmat::cuda::BlockCirculant<float> dA(A);
  Stream s;
  for (Index T : {Index(1), Index(8)}) {
    CAPTURE(T);
    const test::Matrix<float> X = test::gaussian<float>(n, T, 15);
    thrust::device_vector<float> dX = test::upload(X);
    thrust::device_vector<float> dY(static_cast<std::size_t>(m * T)), dZ(static_cast<std::size_t>(n * T));
    float* x = thrust::raw_pointer_cast(dX.data());
    float* y = thrust::raw_pointer_cast(dY.data());
    float* z = thrust::raw_pointer_cast(dZ.data());
    dA.apply(x, y, T, s.stream);  // creates plans and workspace outside the capture
    dA.apply_transpose(y, z, T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    thrust::fill(dY.begin(), dY.end(), 0.0f);
    thrust::fill(dZ.begin(), dZ.end(), 0.0f);

    cudaGraph_t graph = nullptr;
    FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal));
    dA.apply(x, y, T, s.stream);
    dA.apply_transpose(y, z, T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamEndCapture(s.stream, &graph));
    cudaGraphExec_t exec = nullptr;
    FFTMAT_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, s.stream));
    FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, s.stream));  // replays are idempotent
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    const test::Matrix<float> Y = A.apply(X);
    CHECK(test::relative_error(test::download(dY, m, T), Y) < 2e-5);
    CHECK(test::relative_error(test::download(dZ, n, T), A.apply_transpose(Y)) < 2e-5);
    FFTMAT_CUDA_CHECK(cudaGraphExecDestroy(exec));
    FFTMAT_CUDA_CHECK(cudaGraphDestroy(graph));
  }
}

TEST_CASE("a first call with a new T inside a stream capture is a clear error, not a broken graph") {
  const auto A = test::random_block_circulant<float>(128, 128, 16, 16);
  const fftmat::cuda::BlockCirculant<float> dA(A);
  Stream s;
  thrust::device_vector<float> dX(128 * 5, 1.0f), dY(128 * 5);
  FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal));
  CHECK_THROWS_AS(dA.apply(thrust::raw_pointer_cast(dX.data()), thrust::raw_pointer_cast(dY.data()), 5, s.stream),
                  fftmat::invalid_argument);
  cudaGraph_t graph = nullptr;
  CHECK(cudaStreamEndCapture(s.stream, &graph) == cudaSuccess);
  if (graph != nullptr) cudaGraphDestroy(graph);
}

TEST_CASE("clear_plan_cache frees the plans and later calls recreate them") {
  const auto A = test::random_block_circulant<float>(256, 128, 32, 17);
  fftmat::cuda::BlockCirculant<float> dA(A);
  const test::Matrix<float> X = test::gaussian<float>(128, 4, 18);
  thrust::device_vector<float> dX = test::upload(X), dY;
  dA.apply(dX, dY, 4);
  CHECK(dA.cached_plans() == 2);
  dA.clear_plan_cache();
  CHECK(dA.cached_plans() == 0);
  dA.apply(dX, dY, 4);
  FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
  CHECK(test::relative_error(test::download(dY, 256, 4), A.apply(X)) < 2e-5);
  // Moving keeps the uploaded spectra usable.
  fftmat::cuda::BlockCirculant<float> moved(std::move(dA));
  moved.apply(dX, dY, 4);
  FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
  CHECK(test::relative_error(test::download(dY, 256, 4), A.apply(X)) < 2e-5);
  CHECK_THROWS_AS(dA.rows(), fftmat::invalid_argument);  // NOLINT(bugprone-use-after-move): intended
}
