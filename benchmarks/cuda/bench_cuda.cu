// GPU benchmarks: fftmat::cuda::BlockCirculant<float> against cuBLAS dense products in fp16
// (tensor cores, fp32 accumulation) and fp32, for the Llama-2-7B MLP shapes (docs/gpu.md).
//
// Timing is cudaEvent-based (manual time): one benchmark iteration enqueues `reps` products
// back-to-back on one stream between two events; the reported time is per product, so it includes
// the GPU-side gaps between launches but not host synchronisation. "cold" variants rotate through
// enough weight copies (dense matrices, or whole GPU block-circulant objects) that together they
// exceed 3x the L2 cache, so every product reads its weights from HBM, as in a real forward pass
// where each layer's weights are touched once. "warm" variants reuse one copy (L2-resident when it
// fits). Block-circulant results carry counters with the dense fp16/fp32 times measured in the
// same run and the speedups; "graph" variants replay the whole rotation captured in a CUDA graph,
// "bf16" variants stream bfloat16 spectra at T = 1, "tf32" and "bf16gemm" variants run the
// per-bin products of T > 1 on TF32 or bfloat16 tensor cores, and "gate_up" variants stack two
// 11008x4096 matrices (Llama's gate and up) into one GPU matrix, against one dense 22016x4096.
// Every row also carries host_us, the CPU's wall time to queue one product (for graph rows, one
// graph launch divided by the products in it): the host overhead that graphs would remove.
//
//   bench_cuda --benchmark_filter=11008x4096/b64 --benchmark_out=gpu.json --benchmark_out_format=json

#include <benchmark/benchmark.h>
#include <cublas_v2.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <thrust/device_vector.h>
#include <thrust/iterator/counting_iterator.h>
#include <thrust/transform.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include <fftmat/block_circulant.hpp>
#include <fftmat/cuda.hpp>
#include <fftmat/cuda/blas_handle.hpp>

namespace {

using Index = std::ptrdiff_t;

struct Shape {
  Index m, n;
};
const Shape kShapes[] = {{11008, 4096}, {4096, 11008}, {4096, 4096}};
const Index kBlocks[] = {32, 64, 128, 256};
const Index kTokens[] = {1, 16, 256};

/// Deterministic pseudo-random values in [-1, 1), converted on the device (Thrust).
template <class T>
struct HashValue {
  unsigned seed;
  __host__ __device__ T operator()(unsigned k) const {
    unsigned h = (k + seed) * 2654435761u;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    const float v = static_cast<float>(h & 0xFFFFFFu) / 8388608.0f - 1.0f;
    return static_cast<T>(v);
  }
};
template <>
struct HashValue<__half> {
  unsigned seed;
  __host__ __device__ __half operator()(unsigned k) const { return __float2half(HashValue<float>{seed}(k)); }
};

template <class T>
void fill(thrust::device_vector<T>& v, unsigned seed) {
  thrust::transform(thrust::counting_iterator<unsigned>(0), thrust::counting_iterator<unsigned>(static_cast<unsigned>(v.size())),
                    v.begin(), HashValue<T>{seed});
}

std::size_t l2_bytes() {
  int device = 0, l2 = 0;
  FFTMAT_CUDA_CHECK(cudaGetDevice(&device));
  FFTMAT_CUDA_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device));
  return static_cast<std::size_t>(l2);
}

/// Copies needed so that the rotated weights exceed 3x L2 (at least 2 when cold).
Index copies_for(std::size_t bytes_per_copy, bool cold, Index cap) {
  if (!cold) return 1;
  const std::size_t target = 3 * l2_bytes();
  const Index copies = static_cast<Index>((target + bytes_per_copy - 1) / bytes_per_copy);
  return std::min(cap, std::max<Index>(2, copies));
}

struct Stream {
  cudaStream_t stream = nullptr;
  Stream() { FFTMAT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking)); }
  ~Stream() { cudaStreamDestroy(stream); }
};

struct EventPair {
  cudaEvent_t start = nullptr, stop = nullptr;
  EventPair() {
    FFTMAT_CUDA_CHECK(cudaEventCreate(&start));
    FFTMAT_CUDA_CHECK(cudaEventCreate(&stop));
  }
  ~EventPair() {
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
  }
  /// Seconds per product for `reps` products enqueued by `enqueue(r)`.
  template <class F>
  double time(cudaStream_t stream, Index reps, F&& enqueue) {
    FFTMAT_CUDA_CHECK(cudaEventRecord(start, stream));
    for (Index r = 0; r < reps; ++r) enqueue(r);
    FFTMAT_CUDA_CHECK(cudaEventRecord(stop, stream));
    FFTMAT_CUDA_CHECK(cudaEventSynchronize(stop));
    float ms = 0;
    FFTMAT_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
    return 1e-3 * static_cast<double>(ms) / static_cast<double>(reps);
  }
};

enum class Precision { fp16, fp32 };

/// Dense y = W x with W row-major out x in (as in safetensors), i.e. column-major n x m: op T.
class Dense {
 public:
  Dense(Index m, Index n, Index T, Precision precision, bool cold, cudaStream_t stream)
      : m_(m), n_(n), T_(T), precision_(precision), blas_(stream) {
    const std::size_t elements = static_cast<std::size_t>(m * n);
    const std::size_t bytes = elements * (precision == Precision::fp16 ? 2 : 4);
    copies_ = copies_for(bytes, cold, 64);
    for (Index c = 0; c < copies_; ++c) {
      if (precision == Precision::fp16) {
        w16_.emplace_back(elements);
        fill(w16_.back(), static_cast<unsigned>(c));
      } else {
        w32_.emplace_back(elements);
        fill(w32_.back(), static_cast<unsigned>(c));
      }
    }
    if (precision == Precision::fp16) {
      x16_.resize(static_cast<std::size_t>(n * T));
      y16_.resize(static_cast<std::size_t>(m * T));
      fill(x16_, 99u);
    } else {
      x32_.resize(static_cast<std::size_t>(n * T));
      y32_.resize(static_cast<std::size_t>(m * T));
      fill(x32_, 99u);
    }
    FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
  }
  Index copies() const { return copies_; }

  /// One product on the stream given at construction.
  void enqueue(Index r) {
    const int m = static_cast<int>(m_), n = static_cast<int>(n_), T = static_cast<int>(T_);
    const float one = 1.0f, zero = 0.0f;
    const std::size_t c = static_cast<std::size_t>(r % copies_);
    if (precision_ == Precision::fp16) {
      FFTMAT_CUBLAS_CHECK(cublasGemmEx(blas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, m, T, n, &one,
                                       thrust::raw_pointer_cast(w16_[c].data()), CUDA_R_16F, n,
                                       thrust::raw_pointer_cast(x16_.data()), CUDA_R_16F, n, &zero,
                                       thrust::raw_pointer_cast(y16_.data()), CUDA_R_16F, m, CUBLAS_COMPUTE_32F,
                                       CUBLAS_GEMM_DEFAULT));
    } else if (T == 1) {
      FFTMAT_CUBLAS_CHECK(cublasSgemv(blas_.get(), CUBLAS_OP_T, n, m, &one, thrust::raw_pointer_cast(w32_[c].data()),
                                      n, thrust::raw_pointer_cast(x32_.data()), 1, &zero,
                                      thrust::raw_pointer_cast(y32_.data()), 1));
    } else {
      FFTMAT_CUBLAS_CHECK(cublasSgemm(blas_.get(), CUBLAS_OP_T, CUBLAS_OP_N, m, T, n, &one,
                                      thrust::raw_pointer_cast(w32_[c].data()), n, thrust::raw_pointer_cast(x32_.data()),
                                      n, &zero, thrust::raw_pointer_cast(y32_.data()), m));
    }
  }

 private:
  Index m_, n_, T_;
  Precision precision_;
  // The library's own handle type, so that the baseline's cuBLAS calls run with the same stream
  // binding and caller-owned workspace as the block-circulant products they are compared with.
  fftmat::cuda::detail::BlasHandle blas_;
  Index copies_ = 1;
  std::vector<thrust::device_vector<__half>> w16_;
  std::vector<thrust::device_vector<float>> w32_;
  thrust::device_vector<__half> x16_, y16_;
  thrust::device_vector<float> x32_, y32_;
};

Index reps_for(Index copies) { return std::max<Index>(copies, 20); }

/// Host seconds per product: the CPU's wall time for `launch()` (which queues `reps` products and
/// does not wait for them) divided by reps; the stream is drained afterwards, outside the timing.
template <class F>
double host_seconds(cudaStream_t stream, Index reps, F&& launch) {
  const auto start = std::chrono::steady_clock::now();
  launch();
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start;
  FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
  return elapsed.count() / static_cast<double>(reps);
}

/// The median of seven calls of `seconds` (a quick, outlier-proof figure for the counters).
template <class F>
double median_of_7(F&& seconds) {
  std::vector<double> samples;
  for (int k = 0; k < 7; ++k) samples.push_back(seconds());
  std::nth_element(samples.begin(), samples.begin() + 3, samples.end());
  return samples[3];
}

/// Median-free quick measurement of a dense baseline for the speedup counters (cached per key).
double dense_seconds(Index m, Index n, Index T, Precision precision, bool cold) {
  static std::map<std::tuple<Index, Index, Index, int, bool>, double> cache;
  const auto key = std::make_tuple(m, n, T, static_cast<int>(precision), cold);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  Stream stream;
  Dense dense(m, n, T, precision, cold, stream.stream);
  EventPair events;
  const Index reps = reps_for(dense.copies());
  const auto enqueue = [&](Index r) { dense.enqueue(r); };
  events.time(stream.stream, reps, enqueue);  // warm-up
  return cache[key] = median_of_7([&] { return events.time(stream.stream, reps, enqueue); });
}

void run_dense(benchmark::State& state, Index m, Index n, Index T, Precision precision, bool cold) {
  Stream stream;
  Dense dense(m, n, T, precision, cold, stream.stream);
  EventPair events;
  const Index reps = reps_for(dense.copies());
  const auto enqueue = [&](Index r) { dense.enqueue(r); };
  events.time(stream.stream, reps, enqueue);
  for (auto _ : state) state.SetIterationTime(events.time(stream.stream, reps, enqueue));
  state.counters["host_us"] = 1e6 * median_of_7([&] {
    return host_seconds(stream.stream, reps, [&] {
      for (Index r = 0; r < reps; ++r) enqueue(r);
    });
  });
  state.counters["copies"] = static_cast<double>(dense.copies());
  state.counters["weight_bytes"] = static_cast<double>(m * n * (precision == Precision::fp16 ? 2 : 4));
}

/// `stacked` m x n matrices stacked by rows into one GPU matrix (1: a single matrix).
void run_block_circulant(benchmark::State& state, Index m, Index n, Index b, Index T, bool cold, bool graph,
                         fftmat::cuda::ProductPrecision precision, fftmat::SpectrumPrecision spectrum,
                         Index stacked = 1) {
  const Index p = m / b, q = n / b, bins = b / 2 + 1;
  const std::size_t spectra_bytes = static_cast<std::size_t>(stacked * bins * p * q) * 8;
  std::vector<fftmat::BlockCirculant<float>> parts;
  parts.reserve(static_cast<std::size_t>(stacked));
  std::vector<const fftmat::BlockCirculant<float>*> part_pointers;
  std::vector<float> params(static_cast<std::size_t>(m * n / b));
  for (Index part = 0; part < stacked; ++part) {
    for (std::size_t k = 0; k < params.size(); ++k) {
      params[k] = HashValue<float>{7u + static_cast<unsigned>(part)}(static_cast<unsigned>(k));
    }
    const Eigen::Map<const Eigen::VectorXf> parameters(params.data(), static_cast<Index>(params.size()));
    parts.emplace_back(m, n, b, parameters, fftmat::Padding::none, spectrum);
  }
  for (const auto& part : parts) part_pointers.push_back(&part);
  const Index copies = copies_for(spectra_bytes, cold, 256);
  std::vector<std::unique_ptr<fftmat::cuda::BlockCirculant<float>>> objects;
  for (Index c = 0; c < copies; ++c) {
    objects.push_back(stacked == 1 ? std::make_unique<fftmat::cuda::BlockCirculant<float>>(parts[0], precision)
                                   : std::make_unique<fftmat::cuda::BlockCirculant<float>>(
                                         std::initializer_list<const fftmat::BlockCirculant<float>*>{
                                             part_pointers[0], part_pointers[1]},
                                         precision));
  }
  thrust::device_vector<float> X(static_cast<std::size_t>(n * T)), Y(static_cast<std::size_t>(stacked * m * T));
  fill(X, 5u);
  Stream stream;
  EventPair events;
  const Index reps = reps_for(copies);
  const float* x = thrust::raw_pointer_cast(X.data());
  float* y = thrust::raw_pointer_cast(Y.data());
  auto enqueue = [&](Index r) { objects[static_cast<std::size_t>(r % copies)]->apply(x, y, T, stream.stream); };
  events.time(stream.stream, reps, enqueue);  // first calls: plans and workspace

  cudaGraphExec_t exec = nullptr;
  if (graph) {
    cudaGraph_t g = nullptr;
    FFTMAT_CUDA_CHECK(cudaStreamBeginCapture(stream.stream, cudaStreamCaptureModeThreadLocal));
    for (Index r = 0; r < reps; ++r) enqueue(r);
    FFTMAT_CUDA_CHECK(cudaStreamEndCapture(stream.stream, &g));
    FFTMAT_CUDA_CHECK(cudaGraphInstantiate(&exec, g, 0));
    FFTMAT_CUDA_CHECK(cudaGraphDestroy(g));
    FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, stream.stream));  // warm-up
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream.stream));
  }
  // Seconds per product of this row's variant: the graph holds all `reps` products, so one launch
  // of it is timed and divided; the eager variant enqueues them one by one.
  const auto measure = [&] {
    if (!graph) return events.time(stream.stream, reps, enqueue);
    const double seconds =
        events.time(stream.stream, 1, [&](Index) { FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, stream.stream)); });
    return seconds / static_cast<double>(reps);
  };
  for (auto _ : state) state.SetIterationTime(measure());
  const double dense16 = dense_seconds(stacked * m, n, T, Precision::fp16, cold);
  const double dense32 = dense_seconds(stacked * m, n, T, Precision::fp32, cold);
  // Own time for the counters: a fresh median of the same variant (the state's own time is only
  // known to the reporter).
  const double own = median_of_7(measure);
  // The host's share of a call: queueing one product eagerly, or a graph launch divided by the
  // products it holds.
  const double host = median_of_7([&] {
    return host_seconds(stream.stream, reps, [&] {
      if (graph) {
        FFTMAT_CUDA_CHECK(cudaGraphLaunch(exec, stream.stream));
      } else {
        for (Index r = 0; r < reps; ++r) enqueue(r);
      }
    });
  });
  if (exec != nullptr) cudaGraphExecDestroy(exec);
  state.counters["host_us"] = 1e6 * host;
  state.counters["copies"] = static_cast<double>(copies);
  state.counters["spectra_bytes"] = static_cast<double>(spectra_bytes);
  state.counters["dense_fp16_us"] = 1e6 * dense16;
  state.counters["dense_fp32_us"] = 1e6 * dense32;
  state.counters["bc_us"] = 1e6 * own;
  state.counters["speedup_vs_fp16"] = dense16 / own;
  state.counters["speedup_vs_fp32"] = dense32 / own;
}

std::string shape_name(Index m, Index n) { return std::to_string(m) + "x" + std::to_string(n); }

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("bench_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  for (const Shape& s : kShapes) {
    for (Index T : kTokens) {
      for (bool cold : {true, false}) {
        const std::string suffix = "/T" + std::to_string(T) + (cold ? "/cold" : "/warm");
        for (Precision precision : {Precision::fp16, Precision::fp32}) {
          const std::string name = std::string("dense_") + (precision == Precision::fp16 ? "fp16/" : "fp32/") +
                                   shape_name(s.m, s.n) + suffix;
          benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
            run_dense(state, s.m, s.n, T, precision, cold);
          })->UseManualTime()->Unit(benchmark::kMicrosecond);
        }
        for (Index b : kBlocks) {
          using fftmat::SpectrumPrecision;
          using fftmat::cuda::ProductPrecision;
          // graph and bf16: T = 1 only (launch latency and the bytes streamed matter in decode);
          // tf32 and bf16gemm: T > 1 only (they change the per-bin products of the prefill path
          // alone); gate_up: the 11008x4096 shape, stacked twice.
          for (const auto& [prefix, graph, precision, spectrum, stacked] :
               {std::make_tuple("block_circulant/", false, ProductPrecision::full, SpectrumPrecision::full, 1),
                std::make_tuple("block_circulant_graph/", true, ProductPrecision::full, SpectrumPrecision::full, 1),
                std::make_tuple("block_circulant_bf16/", false, ProductPrecision::full, SpectrumPrecision::bfloat16, 1),
                std::make_tuple("block_circulant_tf32/", false, ProductPrecision::tf32, SpectrumPrecision::full, 1),
                std::make_tuple("block_circulant_bf16gemm/", false, ProductPrecision::bfloat16,
                                SpectrumPrecision::full, 1),
                std::make_tuple("block_circulant_gate_up/", false, ProductPrecision::full, SpectrumPrecision::full,
                                2)}) {
            const bool decode_only = graph || spectrum == SpectrumPrecision::bfloat16;
            if ((decode_only && T != 1) || (precision != ProductPrecision::full && T == 1)) continue;
            if (stacked > 1 && (s.m != 11008 || s.n != 4096)) continue;
            const std::string name = prefix + shape_name(s.m, s.n) + (stacked > 1 ? "x2" : "") + "/b" +
                                     std::to_string(b) + suffix;
            const bool with_graph = graph;
            const ProductPrecision product_precision = precision;
            const SpectrumPrecision spectrum_precision = spectrum;
            const Index parts = stacked;
            benchmark::RegisterBenchmark(name.c_str(), [=](benchmark::State& state) {
              run_block_circulant(state, s.m, s.n, b, T, cold, with_graph, product_precision, spectrum_precision,
                                  parts);
            })->UseManualTime()->Unit(benchmark::kMicrosecond);
          }
        }
      }
    }
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  fftmat::cuda::release_all_stream_resources();  // while the CUDA runtime is certainly still up
  return 0;
}
