#pragma once
// When fftmat's loops go parallel: below a flop count a loop runs on the calling thread, because
// waking an OpenMP team costs more than the work. One process-wide threshold, and the loop that
// applies it, which a program with OpenMP loops of its own can use too (examples/llama does), so
// that one setting governs its loops and fftmat's alike.

#include <cstddef>
#include <cstdlib>

#ifdef _OPENMP
#include <omp.h>
#endif

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

/// Threads a parallel_for may use: OpenMP's team size (1 inside a parallel region or without
/// OpenMP), so scratch sized by it has a slot for every thread parallel_for runs.
inline int max_threads() noexcept {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls body(i, thread) for i in [0, count), thread in [0, max_threads()): on an OpenMP team of its
/// own when the work, flops_per_item * count, exceeds parallel_min_flops(), else on this thread.
template <class Body>
void parallel_for(std::ptrdiff_t count, double flops_per_item, Body&& body) {
#ifdef _OPENMP
  const bool worth_it = count > 1 && flops_per_item * double(count) > parallel_min_flops() && max_threads() > 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (worth_it)
  for (std::ptrdiff_t i = 0; i < count; ++i) body(i, omp_get_thread_num());
#else
  (void)flops_per_item;
  for (std::ptrdiff_t i = 0; i < count; ++i) body(i, 0);
#endif
}

}  // namespace fftmat
