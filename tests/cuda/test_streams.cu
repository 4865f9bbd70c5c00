// Streams, graph capture, per-stream resources, allocation failures and host threads.
#include <doctest/doctest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "helpers.cuh"

using test::Index;

namespace {

/// Keeps the GPU busy for `cycles` clock ticks (about cycles / 1.9e9 seconds on an H200).
__global__ void spin(long long cycles) {
  const long long start = clock64();
  while (clock64() - start < cycles) {
  }
}

/// One product's device data and its dense reference check.
struct Product {
  Product(const test::RandomMatrix<float>& M, Index T, unsigned seed, bool transpose = false)
      : M_(M), T_(T), transpose_(transpose), X(test::activations<float>(in_dim(), T, seed)), dX(test::upload(X)),
        dY(static_cast<std::size_t>(out_dim() * T)) {}
  Index in_dim() const { return transpose_ ? M_.dense.rows() : M_.dense.cols(); }
  Index out_dim() const { return transpose_ ? M_.dense.cols() : M_.dense.rows(); }
  void enqueue(const fftmat::cuda::BlockCirculant<float>& dA, cudaStream_t stream) {
    const float* x = thrust::raw_pointer_cast(dX.data());
    float* y = thrust::raw_pointer_cast(dY.data());
    if (transpose_) {
      dA.apply_transpose(x, y, T_, stream);
    } else {
      dA.apply(x, y, T_, stream);
    }
  }
  /// Relative error against the reference (the caller synchronises first).
  double error() const {
    const Eigen::MatrixXd Y = test::download(dY, out_dim(), T_);
    return transpose_ ? test::sampled_error(Y, Eigen::MatrixXd(M_.dense.transpose()), X)
                      : test::sampled_error(Y, M_.dense, X);
  }
  const test::RandomMatrix<float>& M_;
  Index T_;
  bool transpose_;
  test::Matrix<float> X;
  thrust::device_vector<float> dX, dY;
};

}  // namespace

TEST_CASE("calls on two streams neither wait for each other nor share scratch memory") {
  const test::RandomMatrix<float> M(1024, 512, 64, 11);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s1, s2;
  dA.prepare(64, s1.stream);  // all allocation first: a cudaMalloc could synchronise the device
  dA.prepare(64, s2.stream);
  Product first(M, 64, 12), second(M, 64, 13), first_t(M, 64, 14, true), second_t(M, 64, 15, true);
  cudaEvent_t second_done = nullptr;
  FFTMAT_CUDA_CHECK(cudaEventCreateWithFlags(&second_done, cudaEventDisableTiming));
  // Every kernel once first: with lazy module loading (the default) a kernel's first launch may
  // wait for the whole device (CUDA Programming Guide, "Lazy Loading").
  spin<<<1, 1, 0, s1.stream>>>(1);
  FFTMAT_CUDA_CHECK(cudaGetLastError());
  first.enqueue(dA, s1.stream);
  first_t.enqueue(dA, s1.stream);
  second.enqueue(dA, s2.stream);
  second_t.enqueue(dA, s2.stream);
  FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
  // Cleared, so the checks below see the timed products' outputs, not the warm-up's.
  for (Product* product : {&first, &first_t, &second, &second_t}) {
    thrust::fill(product->dY.begin(), product->dY.end(), std::nanf(""));
  }
  FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());

  spin<<<1, 1, 0, s1.stream>>>(1'000'000'000LL);  // about half a second ahead of s1's products
  FFTMAT_CUDA_CHECK(cudaGetLastError());
  first.enqueue(dA, s1.stream);
  first_t.enqueue(dA, s1.stream);
  second.enqueue(dA, s2.stream);
  second_t.enqueue(dA, s2.stream);
  FFTMAT_CUDA_CHECK(cudaEventRecord(second_done, s2.stream));
  FFTMAT_CUDA_CHECK(cudaEventSynchronize(second_done));
  // s2 finished while s1 is still behind the spin: no false dependency between the streams.
  CHECK(cudaStreamQuery(s1.stream) == cudaErrorNotReady);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s1.stream));
  CHECK(first.error() < test::tolerance<float>());
  CHECK(first_t.error() < test::tolerance<float>());
  CHECK(second.error() < test::tolerance<float>());
  CHECK(second_t.error() < test::tolerance<float>());
  FFTMAT_CUDA_CHECK(cudaEventDestroy(second_done));
  fftmat::cuda::release_stream_resources(s1.stream);
  fftmat::cuda::release_stream_resources(s2.stream);
}

TEST_CASE("two matrices queued on one stream share its workspace in stream order") {
  const test::RandomMatrix<float> M1(640, 384, 64, 41), M2(384, 640, 32, 42);
  const fftmat::cuda::BlockCirculant<float> d1(M1.cpu), d2(M2.cpu);
  test::Stream s;
  d1.prepare(16, s.stream);
  d2.prepare(16, s.stream);
  Product a(M1, 16, 43), b(M2, 16, 44), c(M1, 3, 45, true), d(M2, 1, 46);
  spin<<<1, 1, 0, s.stream>>>(200'000'000LL);
  FFTMAT_CUDA_CHECK(cudaGetLastError());
  a.enqueue(d1, s.stream);
  b.enqueue(d2, s.stream);
  c.enqueue(d1, s.stream);
  d.enqueue(d2, s.stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(a.error() < test::tolerance<float>());
  CHECK(b.error() < test::tolerance<float>());
  CHECK(c.error() < test::tolerance<float>());
  CHECK(d.error() < test::tolerance<float>());
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("in-place products (X and Y the same buffer) on a square matrix, chunked too") {
  const Index n = 512, b = 32;
  const test::RandomMatrix<float> M(n, n, b, 12);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  for (Index T : {Index(1), Index(5), Index(300)}) {
    CAPTURE(T);
    const test::Matrix<float> X = test::activations<float>(n, T, 13);
    thrust::device_vector<float> d = test::upload(X);
    dA.apply(thrust::raw_pointer_cast(d.data()), thrust::raw_pointer_cast(d.data()), T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(test::sampled_error(test::download(d, n, T), M.dense, X) < test::tolerance<float>());
    thrust::device_vector<float> e = test::upload(X);
    dA.apply_transpose(e, e, T, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(test::sampled_error(test::download(e, n, T), Eigen::MatrixXd(M.dense.transpose()), X) <
          test::tolerance<float>());
  }
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("products can be captured into a CUDA graph after prepare()") {
  const test::RandomMatrix<float> M(1024, 256, 64, 14);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  dA.prepare(300, s.stream);
  const auto before = fftmat::cuda::stream_resources(s.stream);
  for (Index T : {Index(1), Index(8), Index(300)}) {
    CAPTURE(T);
    Product forward(M, T, 15), transposed(M, T, 16, true);
    cudaGraph_t graph = nullptr;
    FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeGlobal));
    forward.enqueue(dA, s.stream);
    transposed.enqueue(dA, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamEndCapture(s.stream, &graph));
    cudaGraphExec_t exec = nullptr;
    FFTMAT_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));
    FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, s.stream));
    FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, s.stream));  // replays are idempotent
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(forward.error() < test::tolerance<float>());
    CHECK(transposed.error() < test::tolerance<float>());
    FFTMAT_CUDA_CHECK(cudaGraphExecDestroy(exec));
    FFTMAT_CUDA_CHECK(cudaGraphDestroy(graph));
  }
  // prepare() made everything: the captured calls allocated nothing.
  const auto after = fftmat::cuda::stream_resources(s.stream);
  CHECK(after.workspace_bytes == before.workspace_bytes);
  CHECK(after.plans == before.plans);
  CHECK(after.counters == before.counters);
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("a graph captured at T = 1 replays correctly after a call at T = 64 grew the workspace") {
  const test::RandomMatrix<float> M(4096, 1024, 64, 51);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  Product decode(M, 1, 52), prefill(M, 64, 53);
  decode.enqueue(dA, s.stream);  // the first call on the stream, outside the capture
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  cudaGraph_t graph = nullptr;
  FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeGlobal));
  decode.enqueue(dA, s.stream);
  FFTMAT_CUDA_CHECK(cudaStreamEndCapture(s.stream, &graph));
  cudaGraphExec_t exec = nullptr;
  FFTMAT_CUDA_CHECK(cudaGraphInstantiate(&exec, graph, 0));

  prefill.enqueue(dA, s.stream);  // grows the workspace the graph's kernels point into
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(fftmat::cuda::stream_resources(s.stream).retired_bytes > 0);  // the old arrays are kept
  thrust::fill(decode.dY.begin(), decode.dY.end(), 0.0f);
  FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, s.stream));
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(decode.error() < test::tolerance<float>());
  CHECK(prefill.error() < test::tolerance<float>());
  FFTMAT_CUDA_CHECK(cudaGraphExecDestroy(exec));
  FFTMAT_CUDA_CHECK(cudaGraphDestroy(graph));
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("a call inside a capture that would allocate is a clear error, not a broken graph") {
  const test::RandomMatrix<float> M(128, 128, 16, 16);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  thrust::device_vector<float> dX(128 * 5, 1.0f), dY(128 * 5);
  const float* x = thrust::raw_pointer_cast(dX.data());
  float* y = thrust::raw_pointer_cast(dY.data());
  for (bool stream_known : {false, true}) {
    CAPTURE(stream_known);
    if (stream_known) dA.apply(x, y, 1, s.stream);  // the stream's context exists, T = 5 plans do not
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(s.stream, cudaStreamCaptureModeThreadLocal));
    CHECK_THROWS_WITH_AS(dA.apply(x, y, 5, s.stream), doctest::Contains("before the stream capture begins"),
                         fftmat::invalid_argument);
    CHECK_THROWS_AS(dA.apply_transpose(x, y, 5, s.stream), fftmat::invalid_argument);
    CHECK_THROWS_AS(dA.prepare(5, s.stream), fftmat::invalid_argument);
    cudaGraph_t graph = nullptr;
    CHECK(cudaStreamEndCapture(s.stream, &graph) == cudaSuccess);  // nothing was queued
    if (graph != nullptr) FFTMAT_CUDA_CHECK(cudaGraphDestroy(graph));
  }
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("plans per stream stay bounded whatever token counts come, and serve every T") {
  const test::RandomMatrix<float> M(640, 256, 64, 17);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  for (Index T = 1; T <= 40; ++T) {
    Product product(M, T, static_cast<unsigned>(100 + T));
    product.enqueue(dA, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(product.error() < test::tolerance<float>());
  }
  Product big(M, 1000, 18);
  big.enqueue(dA, s.stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(big.error() < test::tolerance<float>());
  const auto resources = fftmat::cuda::stream_resources(s.stream);
  // Pieces of 2, 4, ..., 256 tokens: a forward and an inverse plan each; one-token pieces are one
  // launch without cuFFT, using arrival counters instead.
  CHECK(resources.plans == 8 + 8);
  CHECK(resources.counters > 0);
  // Two arrays, each one 256-token chunk of spectra: bins * max(p, q) * 256 complex floats.
  CHECK(resources.workspace_bytes == 2 * std::size_t(33 * 10 * 256 * 8));
  fftmat::cuda::release_stream_resources(s.stream);
  CHECK(fftmat::cuda::stream_resources(s.stream).plans == 0);
}

TEST_CASE("streams are told apart by id: a new stream that reuses a destroyed one's handle gets fresh resources") {
  const test::RandomMatrix<float> M(512, 256, 32, 19);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  for (int round = 0; round < 4; ++round) {
    CAPTURE(round);
    test::Stream s;
    CHECK(fftmat::cuda::stream_resources(s.stream).plans == 0);
    Product product(M, 8, static_cast<unsigned>(60 + round));
    product.enqueue(dA, s.stream);
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
    CHECK(product.error() < test::tolerance<float>());
    // The stream is destroyed without releasing its resources: they stay, keyed by its id.
  }
}

TEST_CASE("a failed allocation leaves the object and its stream usable") {
  const test::RandomMatrix<float> M(4096, 4096, 64, 20);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream s;
  Product decode(M, 1, 21), prefill(M, 256, 22);
  decode.enqueue(dA, s.stream);  // the stream's context, with a one-token workspace
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  const auto before = fftmat::cuda::stream_resources(s.stream);

  // Take (nearly) all free device memory, largest pieces first.
  std::vector<void*> hog;
  for (std::size_t piece = std::size_t(1) << 32; piece >= (std::size_t(1) << 20);) {
    void* p = nullptr;
    if (cudaMalloc(&p, piece) == cudaSuccess) {
      hog.push_back(p);
    } else {
      static_cast<void>(cudaGetLastError());
      piece /= 2;
    }
  }
  // 256 tokens need 2 x 33 * 64 * 256 * 8 bytes = 8.6 MB of workspace, which is not there.
  CHECK_THROWS_AS(prefill.enqueue(dA, s.stream), fftmat::cuda_error);
  const auto after = fftmat::cuda::stream_resources(s.stream);
  CHECK(after.workspace_bytes == before.workspace_bytes);
  decode.enqueue(dA, s.stream);  // the old workspace still serves
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(decode.error() < test::tolerance<float>());

  for (void* p : hog) FFTMAT_CUDA_CHECK(cudaFree(p));
  prefill.enqueue(dA, s.stream);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(s.stream));
  CHECK(prefill.error() < test::tolerance<float>());
  fftmat::cuda::release_stream_resources(s.stream);
}

TEST_CASE("concurrent host threads on one object, on shared and separate streams") {
  const test::RandomMatrix<float> M(1024, 512, 64, 23);
  const fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  test::Stream shared, own1, own2;
  const cudaStream_t streams[] = {shared.stream, shared.stream, own1.stream, own2.stream};
  const Index tokens[] = {1, 17, 64, 3};
  std::vector<std::string> failures(4);
  std::vector<double> errors(4, 0.0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k) {
    threads.emplace_back([&, k] {
      try {
        for (int call = 0; call < 6; ++call) {
          Product product(M, tokens[k], static_cast<unsigned>(200 + 10 * k + call), call % 2 == 1);
          product.enqueue(dA, streams[k]);
          FFTMAT_CUDA_CHECK(cudaStreamSynchronize(streams[k]));
          errors[static_cast<std::size_t>(k)] = std::max(errors[static_cast<std::size_t>(k)], product.error());
        }
      } catch (const std::exception& e) {
        failures[static_cast<std::size_t>(k)] = e.what();
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int k = 0; k < 4; ++k) {
    CAPTURE(k);
    CHECK(failures[static_cast<std::size_t>(k)].empty());
    CHECK(errors[static_cast<std::size_t>(k)] < test::tolerance<float>());
  }
  for (cudaStream_t stream : {shared.stream, own1.stream, own2.stream}) fftmat::cuda::release_stream_resources(stream);
}

TEST_CASE("moving keeps the uploaded spectra usable") {
  const test::RandomMatrix<float> M(256, 128, 32, 24);
  fftmat::cuda::BlockCirculant<float> dA(M.cpu);
  fftmat::cuda::BlockCirculant<float> moved(std::move(dA));
  Product product(M, 4, 25);
  product.enqueue(moved, nullptr);
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(nullptr));
  CHECK(product.error() < test::tolerance<float>());
  CHECK_THROWS_AS(dA.rows(), fftmat::invalid_argument);  // NOLINT(bugprone-use-after-move): intended
}
