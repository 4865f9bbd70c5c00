#pragma once
// llama-bench style speed measurement: pp (prefill of N tokens into an empty cache) and tg (N
// decoded tokens, one at a time), repeated after a warm-up, as tokens/s mean and spread; plus the
// machine's memory bandwidth, the bound a decode that reads every weight once per token can reach.
// The "cores" column is the average number of cores the timed runs occupied (CPU time / wall
// time), which shows when other processes on a shared machine took part of it.

#include <chrono>
#include <ostream>
#include <vector>

#include "model.hpp"

namespace llama {

/// Wall seconds from `start` to now, on the monotonic clock.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

/// The mean of `samples` and their unbiased sample variance (sum of squared deviations / (n - 1));
/// both 0 for no samples, the variance 0 for one.
struct Moments {
  double mean = 0, variance = 0;
};
Moments moments(const std::vector<double>& samples);

struct BenchSettings {
  int prompt_tokens = 128;    // pp
  int generated_tokens = 32;  // tg
  int repetitions = 3;
  bool measure_bandwidth = true;
};

struct Bandwidth {
  double triad_gb_per_s;  // STREAM triad a = b + s c, counting 3 arrays of traffic (STREAM's convention)
  double read_gb_per_s;   // sum of one array: reads only, like a decode streaming its weights
};

/// Best of several passes over arrays much larger than the last-level cache, on all threads.
Bandwidth measure_memory_bandwidth();

struct Rate {
  double mean = 0, stddev = 0;  // tokens/s over the repetitions (sample standard deviation)
};
struct SpeedMeasurement {
  Rate prefill, decode;
};

/// Prefill and decode tokens/s of random tokens, llama-bench style (warm-up, then repetitions).
SpeedMeasurement measure_speed(Model& model, const BenchSettings& settings);

/// Runs the benchmark and prints a table and the decode's bytes/s to `out`.
void run_bench(Model& model, const BenchSettings& settings, std::ostream& out);

}  // namespace llama
