// CPU microbenchmarks: block-circulant apply against dense GEMM/GEMV (Eigen and OpenBLAS), the
// stages of a block-circulant product on their own, projection and calibration throughput.
// Results and how to read them: docs/benchmarks.md; cost model: docs/cost_model.md.
//
// Names (filter with --benchmark_filter, a regex):
//   apply/<impl>/<m>x<n>/b<b>/T<T>      impl = bc (fftmat::BlockCirculant::apply), bcbf16 (the same
//                                       with SpectrumPrecision::bfloat16), bcref (the first
//                                       implementation: Eigen complex GEMM per bin, kept for p < 8)
//   apply/<impl>/<m>x<n>/T<T>           impl = eigen | blas (dense W, m x n row-major as in safetensors)
//   scale/<impl>/<n>x<n>/...            the square scaling series, same impls
//   stage/<rfft|product|irfft>/<m>x<n>/b<b>/T<T>   the three stages of one bc apply
//   stage/product_bf16/...              the product stage with SpectrumPrecision::bfloat16
//   project/frobenius/<m>x<n>/b<b>      fftmat::project_frobenius of a dense W
//   calib/accumulate/<m>x<n>/b<b>/T<T>  Calibrator::accumulate of T samples;  calib/fit/...
//   machine/stream_read                 memory read bandwidth (for the cost model's roofline)
//
// Every benchmark measures wall time (UseRealTime): the library and the BLAS use threads.
// Weights and inputs are rotated over enough copies (twice the last-level cache read from sysfs, at
// least 64 MiB; FFTMAT_BENCH_ROTATE_MB overrides) that no iteration finds the previous one's weights
// in cache -- in a real model dozens of other layers run between two calls of the same layer. The
// JSON context records the CPU model, the kernel set in use and the sizes.
//
// Counters (constant per run unless marked as a rate):
//   m, n, b, T, params (stored scalars), weight_bytes (bytes of weights one apply reads: 4mn for
//   dense fp32, the spectra for bc), dense_flops (2mnT, the dense-equivalent work),
//   GFLOPS (rate: dense-equivalent GFLOP/s), bytes_per_second (rate: weight bytes read per second).

#include <benchmark/benchmark.h>

#include <fftmat/fftmat.hpp>
// The stage benchmarks time the library's own detail:: stages (packed_products, one_token_share,
// eigen_bin_products), and the dense baselines get the huge-page advice the packed spectra get, so
// that both sides of a comparison read memory alike: internals, included after the public header.
#include <fftmat/detail/huge_page_array.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif
#ifdef FFTMAT_BENCH_CBLAS
#include <cblas.h>

#include "engine/blas_runtime.hpp"
#endif

namespace {

using Index = Eigen::Index;
using Matrix = Eigen::MatrixXf;
using RowMatrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

// ---- configuration --------------------------------------------------------------------------------

double env_double(const char* name, double fallback) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0' ? std::atof(v) : fallback;
}

int threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

/// The size of the largest (last-level) cache in bytes, from Linux's sysfs; 0 where unreadable.
double last_level_cache_bytes() {
  int best_level = 0;
  double bytes = 0.0;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index) + "/";
    std::ifstream level_file(dir + "level"), size_file(dir + "size");
    int level = 0;
    std::string size;  // e.g. "2048K", "480M"
    if (!(level_file >> level) || !(size_file >> size) || level < best_level) continue;
    const double unit = size.back() == 'K' ? 1024.0 : size.back() == 'M' ? 1024.0 * 1024.0 : 1.0;
    best_level = level;
    bytes = std::atof(size.c_str()) * unit;
  }
  return bytes;
}

/// Bytes that the copies of one benchmark's working set add up to: FFTMAT_BENCH_ROTATE_MB if set,
/// else twice the last-level cache and at least 64 MiB, so that no iteration finds the previous
/// one's data in any cache, however large.
double rotation_bytes() {
  static const double bytes = [] {
    const double forced_mb = env_double("FFTMAT_BENCH_ROTATE_MB", 0.0);
    if (forced_mb > 0.0) return forced_mb * 1024.0 * 1024.0;
    return std::max(64.0 * 1024.0 * 1024.0, 2.0 * last_level_cache_bytes());
  }();
  return bytes;
}

/// How many copies of a working set of `bytes` to rotate over so that the copies together exceed
/// rotation_bytes() (so the working set of one iteration is evicted before it is used again).
std::size_t copies_for(double bytes) {
  const double copies = std::ceil(rotation_bytes() / std::max(bytes, 1.0));
  return static_cast<std::size_t>(std::clamp(copies, 1.0, 4096.0));
}

/// "model name" of /proc/cpuinfo (Linux), or "unknown".
std::string cpu_model() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  for (std::string line; std::getline(cpuinfo, line);) {
    if (line.rfind("model name", 0) == 0 && line.find(':') != std::string::npos) {
      return line.substr(line.find(':') + 2);
    }
  }
  return "unknown";
}

/// What every result depends on beyond the benchmark's name: the machine and the kernels.
void add_machine_context() {
  benchmark::AddCustomContext("cpu_model", cpu_model());
  std::string isas;
  for (const fftmat::KernelIsa isa : {fftmat::KernelIsa::portable, fftmat::KernelIsa::avx2, fftmat::KernelIsa::avx512}) {
    if (fftmat::kernel_isa_supported(isa)) isas += std::string(isas.empty() ? "" : ",") + fftmat::to_string(isa);
  }
  benchmark::AddCustomContext("kernel_isas_supported", isas);
  benchmark::AddCustomContext("kernel_isa", fftmat::to_string(fftmat::kernel_isa()));
  benchmark::AddCustomContext("threads", std::to_string(threads()));
  benchmark::AddCustomContext("last_level_cache_bytes", std::to_string(static_cast<long long>(last_level_cache_bytes())));
  benchmark::AddCustomContext("rotation_bytes", std::to_string(static_cast<long long>(rotation_bytes())));
}

/// Uniform values in [-scale, scale): a cheap generator, since the dense shapes have 45M entries
/// and the values do not affect any timing.
Matrix random_matrix(Index rows, Index cols, unsigned seed, float scale = 1.0f) {
  std::minstd_rand rng(seed + 1);
  Matrix M(rows, cols);
  const float to_unit = 2.0f / float(std::minstd_rand::max());
  for (Index k = 0; k < M.size(); ++k) M.data()[k] = scale * (float(rng()) * to_unit - 1.0f);
  return M;
}

fftmat::BlockCirculant<float> random_block_circulant(
    Index m, Index n, Index b, unsigned seed, fftmat::SpectrumPrecision precision = fftmat::SpectrumPrecision::full) {
  const Index params = (m / b) * (n / b) * b;
  const Matrix c = random_matrix(params, 1, seed, 1.0f / std::sqrt(float(n)));
  return fftmat::BlockCirculant<float>(m, n, b, c.col(0), fftmat::Padding::none, precision);
}

/// Bytes of the spectra a product reads: b/2+1 complex bins of p x q in float, or the m n / b
/// bfloat16 values of the packed panels.
double spectra_bytes(Index m, Index n, Index b, fftmat::SpectrumPrecision precision = fftmat::SpectrumPrecision::full) {
  if (precision == fftmat::SpectrumPrecision::bfloat16) return double(m / b) * double(n / b) * double(b) * 2.0;
  return double(b / 2 + 1) * double(m / b) * double(n / b) * 8.0;
}

void set_common_counters(benchmark::State& st, Index m, Index n, Index b, Index T, double params,
                         double weight_bytes, std::size_t copies) {
  const double flops = 2.0 * double(m) * double(n) * double(T);
  st.counters["m"] = double(m);
  st.counters["n"] = double(n);
  st.counters["b"] = double(b);
  st.counters["T"] = double(T);
  st.counters["params"] = params;
  st.counters["weight_bytes"] = weight_bytes;
  st.counters["dense_flops"] = flops;
  st.counters["copies"] = double(copies);
  st.counters["threads"] = double(threads());
  st.counters["GFLOPS"] = benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  st.SetBytesProcessed(static_cast<int64_t>(double(st.iterations()) * weight_bytes));
}

// ---- the stages of one block-circulant product -------------------------------------------------------

/// The stages of one product A X (rfft, per-bin products, irfft), each on its own with explicit
/// buffers: the library's detail:: functions that BlockCirculant::apply runs, on a packed copy of
/// A's public spectra. Also the first implementation (Eigen complex GEMM per bin, bin-strided c2r),
/// which the library keeps for fewer than 8 block rows and for the transpose.
class Stages {
 public:
  Stages(const fftmat::BlockCirculant<float>& A, Index T, fftmat::SpectrumPrecision precision)
      : A_(&A),
        T_(T),
        in_(A.cols(), A.block_size()),
        out_(A.rows(), A.block_size(), fftmat::detail::SpectrumLayout::block_major),
        out_token_major_(A.rows(), A.block_size()) {
    packed_.pack(A.spectra(), A.block_size(), A.block_rows(), A.block_cols(),
                 precision == fftmat::SpectrumPrecision::bfloat16);
    input_.resize(static_cast<std::size_t>(T * in_.token_stride()));
    output_.resize(static_cast<std::size_t>(T * std::max(out_.token_stride(), out_token_major_.token_stride())));
    staging_.resize(static_cast<std::size_t>(std::max(in_.staging_stride(), out_.staging_stride()) *
                                             fftmat::max_threads()));
  }

  void forward(const float* X) { in_.forward(X, in_.dim(), T_, input_.data(), staging_.data()); }

  /// One token: each thread streams its share of the panels, as apply does. More: token chunks
  /// of apply's size, split over the threads.
  void product() {
    namespace detail = fftmat::detail;
    const Index p = A_->block_rows(), q = A_->block_cols();
    if (T_ == 1) {
      detail::parallel_region(detail::one_token_flops(packed_, q), [&](const detail::TeamMember& member) {
        detail::one_token_share(packed_, member, p, q, input_.data(), output_.data(), [](Index) {});
      });
      return;
    }
    const Index ldx = in_.token_stride(), ldy = out_.token_stride();
    const Index chunk = detail::token_chunk((ldx + ldy) * Index(sizeof(std::complex<float>)));
    const Index chunks = (T_ + chunk - 1) / chunk;
    fftmat::parallel_for(chunks, detail::one_token_flops(packed_, q) * double(chunk), [&](Index c, int) {
      const Index t0 = c * chunk;
      detail::packed_products(packed_, p, q, input_.data() + t0 * ldx, ldx, std::min(chunk, T_ - t0),
                              output_.data() + t0 * ldy, ldy);
    });
  }

  /// Destroys the output spectrum (c2r overwrites its input): restore_output() brings it back.
  void inverse(float* Y) { out_.inverse(output_.data(), T_, Y, out_.dim(), staging_.data()); }

  void reference_apply(const float* X, float* Y) {
    forward(X);
    fftmat::detail::eigen_bin_products(A_->spectra(), A_->block_rows(), A_->block_cols(), A_->bins(), false,
                                       input_.data(), in_.token_stride(), output_.data(),
                                       out_token_major_.token_stride(), T_);
    out_token_major_.inverse(output_.data(), T_, Y, out_token_major_.dim(), staging_.data());
  }

  /// Keeps a copy of the output spectrum, so that repeated inverse transforms time real spectra,
  /// not what a previous one left (possibly denormals).
  void save_output() {
    pristine_.resize(output_.size());
    std::copy(output_.data(), output_.data() + output_.size(), pristine_.data());
  }
  void restore_output() { std::copy(pristine_.data(), pristine_.data() + pristine_.size(), output_.data()); }

 private:
  const fftmat::BlockCirculant<float>* A_;
  Index T_;
  fftmat::detail::BlockFft<float> in_, out_, out_token_major_;
  fftmat::detail::PackedSpectra<float> packed_;
  fftmat::detail::AlignedBuffer<std::complex<float>> input_, output_, pristine_;
  fftmat::detail::AlignedBuffer<float> staging_;
};

// ---- block-circulant apply -------------------------------------------------------------------------

enum class BcImpl { packed, bf16, reference };

void bc_apply(benchmark::State& st, Index m, Index n, Index b, Index T, BcImpl impl) {
  const bool reference = impl == BcImpl::reference;
  const auto precision = impl == BcImpl::bf16 ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  const fftmat::BlockCirculant<float> A = random_block_circulant(m, n, b, 1, precision);
  const double footprint = spectra_bytes(m, n, b, precision) + 4.0 * double((m + n) * T);
  const std::size_t copies = copies_for(footprint);
  std::vector<fftmat::BlockCirculant<float>> As(copies, A);
  std::vector<Matrix> Xs, Ys;
  std::vector<Stages> stages;
  for (std::size_t k = 0; k < copies; ++k) {
    Xs.push_back(random_matrix(n, T, unsigned(100 + k)));
    Ys.emplace_back(m, T);
    As[k].apply(Xs[k], Ys[k]);  // first call with this T: plans, workspace
    if (reference) {
      stages.emplace_back(As[k], T, precision);
      stages.back().reference_apply(Xs[k].data(), Ys[k].data());
    }
  }
  std::size_t k = 0;
  for (auto _ : st) {
    if (reference) {
      stages[k].reference_apply(Xs[k].data(), Ys[k].data());
    } else {
      As[k].apply(Xs[k], Ys[k]);
    }
    benchmark::DoNotOptimize(Ys[k].data());
    benchmark::ClobberMemory();
    k = k + 1 == copies ? 0 : k + 1;
  }
  set_common_counters(st, m, n, b, T, double(A.parameter_count()), spectra_bytes(m, n, b, precision), copies);
}

// ---- dense baselines (W is m x n row-major, the safetensors layout) ---------------------------------

struct DenseSet {
  std::vector<RowMatrix> W;
  std::vector<Matrix> X, Y;
  std::size_t copies;
  DenseSet(Index m, Index n, Index T) {
    copies = copies_for(4.0 * double(m * n + (m + n) * T));
    for (std::size_t k = 0; k < copies; ++k) {
      // Huge pages for the dense weights too, as fftmat gives its packed spectra: both sides stream
      // their weights with the same TLB reach.
      RowMatrix Wk(m, n);
      fftmat::detail::advise_huge_pages(Wk.data(), sizeof(float) * std::size_t(Wk.size()));
      Wk = random_matrix(m, n, unsigned(7 + k), 1.0f / std::sqrt(float(n)));  // col->row copy, first touch
      W.push_back(std::move(Wk));
      X.push_back(random_matrix(n, T, unsigned(100 + k)));
      Y.emplace_back(m, T);
    }
  }
};

void dense_eigen(benchmark::State& st, Index m, Index n, Index T) {
  DenseSet d(m, n, T);
  std::size_t k = 0;
  for (auto _ : st) {
    if (T == 1) {
      d.Y[k].col(0).noalias() = d.W[k] * d.X[k].col(0);  // Eigen GEMV (single-threaded in Eigen)
    } else {
      d.Y[k].noalias() = d.W[k] * d.X[k];  // Eigen GEMM (OpenMP-parallel when built with it)
    }
    benchmark::DoNotOptimize(d.Y[k].data());
    benchmark::ClobberMemory();
    k = k + 1 == d.copies ? 0 : k + 1;
  }
  set_common_counters(st, m, n, 0, T, double(m * n), 4.0 * double(m * n), d.copies);
}

#ifdef FFTMAT_BENCH_CBLAS
void dense_blas(benchmark::State& st, Index m, Index n, Index T) {
  DenseSet d(m, n, T);
  const int M = int(m), N = int(n), TT = int(T);
  std::size_t k = 0;
  for (auto _ : st) {
    if (T == 1) {
      cblas_sgemv(CblasRowMajor, CblasNoTrans, M, N, 1.0f, d.W[k].data(), N, d.X[k].data(), 1, 0.0f,
                  d.Y[k].data(), 1);
    } else {
      // Y (m x T, col-major) = W X with W row-major m x n, i.e. the col-major n x m matrix W^T.
      cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, M, TT, N, 1.0f, d.W[k].data(), N, d.X[k].data(), N,
                  0.0f, d.Y[k].data(), M);
    }
    benchmark::DoNotOptimize(d.Y[k].data());
    benchmark::ClobberMemory();
    k = k + 1 == d.copies ? 0 : k + 1;
  }
  set_common_counters(st, m, n, 0, T, double(m * n), 4.0 * double(m * n), d.copies);
}
#endif

// ---- stages of one block-circulant apply -----------------------------------------------------------

enum class Stage { rfft, product, product_bf16, irfft };

void bc_stage(benchmark::State& st, Stage stage, Index m, Index n, Index b, Index T) {
  const auto precision =
      stage == Stage::product_bf16 ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  const fftmat::BlockCirculant<float> A = random_block_circulant(m, n, b, 1, precision);
  const double footprint = spectra_bytes(m, n, b, precision) + 4.0 * double((m + n) * T) +
                           8.0 * double((m / b + n / b) * (b / 2 + 1) * T);
  const std::size_t copies = copies_for(footprint);
  std::vector<Matrix> Xs, Ys;
  std::vector<Stages> stages;
  for (std::size_t k = 0; k < copies; ++k) {
    Xs.push_back(random_matrix(n, T, unsigned(100 + k)));
    Ys.emplace_back(m, T);
    stages.emplace_back(A, T, precision);
    stages[k].forward(Xs[k].data());
    stages[k].product();
    stages[k].save_output();
    stages[k].inverse(Ys[k].data());
    stages[k].restore_output();
  }
  std::size_t k = 0;
  for (auto _ : st) {
    switch (stage) {
      case Stage::rfft: stages[k].forward(Xs[k].data()); break;
      case Stage::product:
      case Stage::product_bf16: stages[k].product(); break;
      case Stage::irfft:
        stages[k].inverse(Ys[k].data());
        st.PauseTiming();  // c2r destroyed the spectrum: put the real one back, untimed
        stages[k].restore_output();
        st.ResumeTiming();
        break;
    }
    benchmark::ClobberMemory();
    k = k + 1 == copies ? 0 : k + 1;
  }
  set_common_counters(st, m, n, b, T, double(A.parameter_count()), spectra_bytes(m, n, b, precision), copies);
  const double log2b = std::max(1.0, std::log2(double(b)));
  const double fft_flops = 2.5 * double(b) * log2b;
  double stage_flops = 0;
  switch (stage) {
    case Stage::rfft: stage_flops = fft_flops * double(n / b * T); break;
    case Stage::product:
    case Stage::product_bf16: stage_flops = 8.0 * double(b / 2 + 1) * double(m / b) * double(n / b) * double(T); break;
    case Stage::irfft: stage_flops = fft_flops * double(m / b * T); break;
  }
  st.counters["stage_flops"] = stage_flops;
  st.counters["stage_GFLOPS"] = benchmark::Counter(stage_flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// ---- projection and calibration --------------------------------------------------------------------

void project_frobenius(benchmark::State& st, Index m, Index n, Index b) {
  const RowMatrix W = random_matrix(m, n, 3);  // row-major, as loaded from safetensors
  for (auto _ : st) {
    auto A = fftmat::project_frobenius(W, b);
    benchmark::DoNotOptimize(A.spectra());
  }
  set_common_counters(st, m, n, b, 0, double(m * n / b), 4.0 * double(m * n), 1);
  st.counters.erase("GFLOPS");
}

void calib_accumulate(benchmark::State& st, Index m, Index n, Index b, Index T) {
  const Matrix X = random_matrix(n, T, 4), Y = random_matrix(m, T, 5);
  fftmat::Calibrator<float> cal(m, n, b);
  for (auto _ : st) cal.accumulate(X, Y);
  set_common_counters(st, m, n, b, T, double(m * n / b), 0, 1);
  st.counters.erase("GFLOPS");
  st.counters["samples_per_second"] = benchmark::Counter(double(T), benchmark::Counter::kIsIterationInvariantRate);
}

void calib_fit(benchmark::State& st, Index m, Index n, Index b) {
  const Index T = 2 * n / b + 16;  // enough samples for well-posed per-bin solves
  fftmat::Calibrator<float> cal(m, n, b);
  cal.accumulate(random_matrix(n, T, 4), random_matrix(m, T, 5));
  for (auto _ : st) {
    auto A = cal.fit(1e-2);
    benchmark::DoNotOptimize(A.spectra());
  }
  set_common_counters(st, m, n, b, T, double(m * n / b), 0, 1);
  st.counters.erase("GFLOPS");
}

// ---- machine ---------------------------------------------------------------------------------------

void stream_read(benchmark::State& st) {
  const std::size_t count = std::size_t(256) << 20 >> 2;  // 256 MiB of floats
  std::vector<float> a(count, 1.0f);
  for (auto _ : st) {
    float total = 0;
#pragma omp parallel for reduction(+ : total) schedule(static)
    for (std::ptrdiff_t i = 0; i < std::ptrdiff_t(count); ++i) total += a[std::size_t(i)];
    benchmark::DoNotOptimize(total);
  }
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * count * 4));
  st.counters["threads"] = double(threads());
}

// ---- registration ----------------------------------------------------------------------------------

std::string shape_name(Index m, Index n) { return std::to_string(m) + "x" + std::to_string(n); }

template <class F>
void reg(const std::string& name, F&& f, double min_time = 0.2) {
  benchmark::RegisterBenchmark(name.c_str(), std::forward<F>(f))
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond)
      ->MinTime(min_time);
}

void register_all() {
  const std::vector<Index> blocks = {16, 32, 64, 128, 256, 512};
  const std::vector<Index> tokens = {1, 16, 256};
  struct Shape { Index m, n; const char* group; };
  std::vector<Shape> shapes = {{11008, 4096, "apply"}, {4096, 11008, "apply"}, {4096, 4096, "apply"}};
  for (Index n = 256; n <= 16384; n *= 2) shapes.push_back({n, n, "scale"});

  reg("machine/stream_read", stream_read);
  for (const Shape& s : shapes) {
    const std::string g = s.group, shape = shape_name(s.m, s.n);
    for (Index T : tokens) {
      const std::string t = "/T" + std::to_string(T);
      for (Index b : blocks) {
        if (s.m % b != 0 || s.n % b != 0) continue;
        const std::string suffix = shape + "/b" + std::to_string(b) + t;
        reg(g + "/bc/" + suffix, [=](benchmark::State& st) { bc_apply(st, s.m, s.n, b, T, BcImpl::packed); });
        reg(g + "/bcbf16/" + suffix, [=](benchmark::State& st) { bc_apply(st, s.m, s.n, b, T, BcImpl::bf16); });
        reg(g + "/bcref/" + suffix, [=](benchmark::State& st) { bc_apply(st, s.m, s.n, b, T, BcImpl::reference); });
      }
      reg(g + "/eigen/" + shape + t, [=](benchmark::State& st) { dense_eigen(st, s.m, s.n, T); });
#ifdef FFTMAT_BENCH_CBLAS
      reg(g + "/blas/" + shape + t, [=](benchmark::State& st) { dense_blas(st, s.m, s.n, T); });
#endif
    }
  }
  // Stages: the Llama shapes, every b and T.
  for (std::size_t i = 0; i < 3; ++i) {
    const Shape s = shapes[i];
    for (Index T : tokens)
      for (Index b : blocks) {
        if (s.m % b != 0 || s.n % b != 0) continue;
        const std::string suffix = "/" + shape_name(s.m, s.n) + "/b" + std::to_string(b) + "/T" + std::to_string(T);
        reg("stage/rfft" + suffix, [=](benchmark::State& st) { bc_stage(st, Stage::rfft, s.m, s.n, b, T); });
        reg("stage/product" + suffix, [=](benchmark::State& st) { bc_stage(st, Stage::product, s.m, s.n, b, T); });
        reg("stage/product_bf16" + suffix,
            [=](benchmark::State& st) { bc_stage(st, Stage::product_bf16, s.m, s.n, b, T); });
        reg("stage/irfft" + suffix, [=](benchmark::State& st) { bc_stage(st, Stage::irfft, s.m, s.n, b, T); });
      }
  }
  for (Index b : blocks) {
    if (11008 % b != 0) continue;
    reg("project/frobenius/11008x4096/b" + std::to_string(b), [=](benchmark::State& st) { project_frobenius(st, 11008, 4096, b); });
    reg("calib/accumulate/11008x4096/b" + std::to_string(b) + "/T256",
        [=](benchmark::State& st) { calib_accumulate(st, 11008, 4096, b, 256); });
    reg("calib/fit/11008x4096/b" + std::to_string(b), [=](benchmark::State& st) { calib_fit(st, 11008, 4096, b); });
  }
}

}  // namespace

int main(int argc, char** argv) {
#ifdef FFTMAT_BENCH_CBLAS
  if (!blas_runtime::use_best_kernels(argv)) return 1;  // may restart the program once, so first
  openblas_set_num_threads(threads());  // the same thread count as OpenMP (OMP_NUM_THREADS)
#endif
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  register_all();
  add_machine_context();
#ifdef FFTMAT_BENCH_CBLAS
  benchmark::AddCustomContext("gemm_kernels", blas_runtime::gemm_kernels());
#endif
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
