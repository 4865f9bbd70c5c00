#include "bench.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <fftmat/threading.hpp>

#include "blas_runtime.hpp"
#include "error.hpp"

namespace llama {
namespace {

using Clock = std::chrono::steady_clock;

struct Statistics {
  double mean, stddev;
};

Statistics statistics(const std::vector<double>& samples) {
  const Moments m = moments(samples);
  return {m.mean, std::sqrt(m.variance)};
}

/// Random token ids (as llama-bench uses), the same for every run.
std::vector<int> random_tokens(int count, int vocab_size) {
  std::mt19937 generator(1234);
  std::uniform_int_distribution<int> id(0, vocab_size - 1);
  std::vector<int> tokens(static_cast<std::size_t>(count));
  for (int& token : tokens) token = id(generator);
  return tokens;
}

/// Wall seconds of one timed run, and the cores it occupied on average (process CPU time / wall
/// time): on a shared machine that tells a slow kernel from a starved one.
struct Timing {
  double seconds;
  double cores;
};

template <class Run>
Timing time_run(Run&& run) {
  const std::clock_t cpu_start = std::clock();
  const auto start = Clock::now();
  run();
  const double seconds = seconds_since(start);
  const double cpu_seconds = double(std::clock() - cpu_start) / CLOCKS_PER_SEC;
  return {seconds, cpu_seconds / seconds};
}

/// A prefill of `tokens` into an empty cache.
Timing time_prefill(Model& model, const std::vector<int>& tokens) {
  KvCache cache = model.make_cache(static_cast<int>(tokens.size()));
  std::vector<float> logits(static_cast<std::size_t>(model.config().vocab_size));
  return time_run([&] { model.forward(tokens.data(), static_cast<int>(tokens.size()), cache, Logits::last, logits.data()); });
}

/// Decoding `tokens` one at a time from an empty cache, each step producing logits.
Timing time_decode(Model& model, const std::vector<int>& tokens) {
  KvCache cache = model.make_cache(static_cast<int>(tokens.size()));
  std::vector<float> logits(static_cast<std::size_t>(model.config().vocab_size));
  return time_run([&] {
    for (const int& token : tokens) model.forward(&token, 1, cache, Logits::last, logits.data());
  });
}

struct Series {
  std::vector<double> tokens_per_second, cores;
};

void print_row(std::ostream& out, const std::string& test, const Series& series) {
  const Statistics rate = statistics(series.tokens_per_second), cores = statistics(series.cores);
  char line[128];
  std::snprintf(line, sizeof line, "| %-8s | %10.3f ± %-8.3f | %5.2f |", test.c_str(), rate.mean, rate.stddev, cores.mean);
  out << line << '\n';
}

}  // namespace

Bandwidth measure_memory_bandwidth() {
  // 3 x 128 MiB: far beyond any last-level cache, small beside the model.
  const std::size_t n = std::size_t{32} << 20;
  std::vector<float> a(n), b(n), c(n);
  const Eigen::Index chunks = 64;
  const std::size_t chunk = n / chunks;
  auto parallel_chunks = [&](auto&& body) {
    fftmat::parallel_for(chunks, 1e9, [&](Eigen::Index k, int) {
      body(static_cast<std::size_t>(k) * chunk, static_cast<std::size_t>(k + 1) * chunk);
    });
  };
  parallel_chunks([&](std::size_t lo, std::size_t hi) {  // first touch on the threads that use it
    for (std::size_t i = lo; i < hi; ++i) a[i] = 0.0f, b[i] = 1.0f, c[i] = 2.0f;
  });
  Bandwidth best{0.0, 0.0};
  std::vector<double> sums(static_cast<std::size_t>(chunks));
  for (int pass = 0; pass < 5; ++pass) {
    auto start = Clock::now();
    parallel_chunks([&](std::size_t lo, std::size_t hi) {
      for (std::size_t i = lo; i < hi; ++i) a[i] = b[i] + 3.0f * c[i];
    });
    best.triad_gb_per_s = std::max(best.triad_gb_per_s, 3.0 * sizeof(float) * double(n) / seconds_since(start) / 1e9);
    start = Clock::now();
    fftmat::parallel_for(chunks, 1e9, [&](Eigen::Index k, int) {
      // Eigen's vectorised reduction: a scalar loop would be bound by the add latency, not memory.
      sums[static_cast<std::size_t>(k)] = Eigen::Map<const Eigen::VectorXf>(a.data() + k * Eigen::Index(chunk), Eigen::Index(chunk)).sum();
    });
    best.read_gb_per_s = std::max(best.read_gb_per_s, sizeof(float) * double(n) / seconds_since(start) / 1e9);
  }
  // Consume the sums so the reads cannot be optimised away.
  if (std::accumulate(sums.begin(), sums.end(), 0.0) < 0.0) std::fputs("", stderr);
  return best;
}

namespace {

/// A warm-up (pages in the memory-mapped weights, starts the thread pools, plans FFTs), then
/// `repetitions` timed prefills and decodes of random tokens.
void measure_series(Model& model, const BenchSettings& settings, Series& prefill, Series& decode) {
  check(settings.prompt_tokens >= 1 && settings.generated_tokens >= 1 && settings.repetitions >= 1,
        "bench needs positive token counts and repetitions");
  const std::vector<int> prompt = random_tokens(settings.prompt_tokens, model.config().vocab_size);
  const std::vector<int> generated = random_tokens(settings.generated_tokens, model.config().vocab_size);
  time_prefill(model, prompt);
  time_decode(model, std::vector<int>(generated.begin(), generated.begin() + std::min(2, settings.generated_tokens)));
  for (int r = 0; r < settings.repetitions; ++r) {
    const Timing timing = time_prefill(model, prompt);
    prefill.tokens_per_second.push_back(settings.prompt_tokens / timing.seconds);
    prefill.cores.push_back(timing.cores);
  }
  for (int r = 0; r < settings.repetitions; ++r) {
    const Timing timing = time_decode(model, generated);
    decode.tokens_per_second.push_back(settings.generated_tokens / timing.seconds);
    decode.cores.push_back(timing.cores);
  }
}

}  // namespace

Moments moments(const std::vector<double>& samples) {
  Moments result;
  if (samples.empty()) return result;
  const double n = double(samples.size());
  result.mean = std::accumulate(samples.begin(), samples.end(), 0.0) / n;
  if (samples.size() > 1) {
    double squares = 0.0;
    for (const double s : samples) squares += (s - result.mean) * (s - result.mean);
    result.variance = squares / (n - 1);
  }
  return result;
}

SpeedMeasurement measure_speed(Model& model, const BenchSettings& settings) {
  Series prefill, decode;
  measure_series(model, settings, prefill, decode);
  const Statistics p = statistics(prefill.tokens_per_second), d = statistics(decode.tokens_per_second);
  return {{p.mean, p.stddev}, {d.mean, d.stddev}};
}

void run_bench(Model& model, const BenchSettings& settings, std::ostream& out) {
  const LlamaConfig& c = model.config();
  const double parameter_gb = double(model.parameter_bytes_per_token()) / 1e9;
  out << "model: " << model.checkpoint->directory().string() << " (" << c.num_hidden_layers << " layers, hidden "
      << c.hidden_size << ", " << dtype_name(model.embedding.dtype) << ", " << parameter_gb
      << " GB of parameters read per token), threads: " << fftmat::max_threads() << '\n'
      << "GEMM kernels: " << blas_runtime::gemm_kernels() << '\n';

  Series prefill, decode;
  measure_series(model, settings, prefill, decode);
  out << "| test     |              t/s      | cores |\n| -------- | --------------------: | ----: |\n";
  print_row(out, "pp" + std::to_string(settings.prompt_tokens), prefill);
  print_row(out, "tg" + std::to_string(settings.generated_tokens), decode);

  const double decode_rate = statistics(decode.tokens_per_second).mean;
  char line[256];
  std::snprintf(line, sizeof line, "decode reads %.3f GB of parameters per token: %.2f GB/s at %.3f tokens/s\n",
                parameter_gb, parameter_gb * decode_rate, decode_rate);
  out << line;
  if (settings.measure_bandwidth) {
    const Bandwidth bandwidth = measure_memory_bandwidth();
    std::snprintf(line, sizeof line,
                  "memory bandwidth (%d threads): triad %.2f GB/s, read-only %.2f GB/s; decode reaches %.0f%% of the "
                  "read bandwidth (bound: %.3f tokens/s)\n",
                  fftmat::max_threads(), bandwidth.triad_gb_per_s, bandwidth.read_gb_per_s,
                  100.0 * parameter_gb * decode_rate / bandwidth.read_gb_per_s, bandwidth.read_gb_per_s / parameter_gb);
    out << line;
  }
}

}  // namespace llama
