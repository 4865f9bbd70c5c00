#pragma once
// A minimal OpenMP loop helper: runs serially when OpenMP is absent or the loop is too small to
// repay waking threads. Each call gets its own team, so concurrent callers never share scratch.

#include <Eigen/Core>

#include <cmath>
#include <cstdlib>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fftmat::detail {

/// Threads a parallel_for may use (the OpenMP team size, 1 without OpenMP).
inline int max_threads() noexcept {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/// Below this many flops a loop runs on the calling thread (environment variable
/// FFTMAT_PARALLEL_MIN_FLOPS overrides it, read once). A fork/join costs a few microseconds on an
/// idle machine, so 1e6 flops (~50 us of one core) repays it. When the cores are oversubscribed a
/// woken team thread may wait a whole scheduler time slice before it runs: on the 2-core reference
/// machine under a load average of 6-10 every parallel region cost ~5 ms, and a higher threshold
/// (e.g. 3e7) is the remedy there (docs/benchmarks.md).
inline constexpr double kParallelFlopThreshold = 1e6;  ///< the default (examples/llama uses it too)

inline double parallel_flop_threshold() noexcept {
  static const double threshold = [] {
    const char* v = std::getenv("FFTMAT_PARALLEL_MIN_FLOPS");
    char* end = nullptr;
    const double parsed = v != nullptr ? std::strtod(v, &end) : 0.0;
    return v != nullptr && end != v && parsed >= 0 ? parsed : kParallelFlopThreshold;
  }();
  return threshold;
}

/// Calls body(i, thread) for i in [0, count), thread in [0, max_threads()).
template <class Body>
void parallel_for(Eigen::Index count, double flops_per_item, Body&& body) {
#ifdef _OPENMP
  const bool worth_it = count > 1 && flops_per_item * double(count) > parallel_flop_threshold() && max_threads() > 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (worth_it)
  for (Eigen::Index i = 0; i < count; ++i) body(i, omp_get_thread_num());
#else
  (void)flops_per_item;
  for (Eigen::Index i = 0; i < count; ++i) body(i, 0);
#endif
}

}  // namespace fftmat::detail
