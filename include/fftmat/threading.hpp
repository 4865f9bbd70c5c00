#pragma once
// When fftmat's loops go parallel: below a flop count a loop runs on the calling thread, because
// waking an OpenMP team costs more than the work. One process-wide threshold, which a program with
// OpenMP loops of its own can apply to them too (examples/llama does).

#include <cstdlib>

namespace fftmat {

/// The default of parallel_min_flops(): a fork/join costs a few microseconds on an idle machine,
/// and 1e6 flops (about 50 us of one core) repay it.
inline constexpr double kDefaultParallelMinFlops = 1e6;

/// Below this many flops a loop runs on the calling thread: the environment variable
/// FFTMAT_PARALLEL_MIN_FLOPS (a number >= 0, read once, at the first call), else
/// kDefaultParallelMinFlops. When the cores are oversubscribed a woken team thread may wait a whole
/// scheduler time slice before it runs, and a higher threshold is the remedy (docs/benchmarks.md).
inline double parallel_min_flops() noexcept {
  static const double threshold = [] {
    const char* v = std::getenv("FFTMAT_PARALLEL_MIN_FLOPS");
    char* end = nullptr;
    const double parsed = v != nullptr ? std::strtod(v, &end) : 0.0;
    return v != nullptr && end != v && parsed >= 0 ? parsed : kDefaultParallelMinFlops;
  }();
  return threshold;
}

}  // namespace fftmat
