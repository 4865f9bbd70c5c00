#pragma once
// A minimal OpenMP loop helper: runs serially when OpenMP is absent or the loop is too small to
// repay waking threads. Each call gets its own team, so concurrent callers never share scratch.

#include <Eigen/Core>

#include <cmath>

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

/// Below this many flops a loop runs on the calling thread (a fork/join costs a few microseconds).
inline constexpr double kParallelFlopThreshold = 2e5;

/// Calls body(i, thread) for i in [0, count), thread in [0, max_threads()).
template <class Body>
void parallel_for(Eigen::Index count, double flops_per_item, Body&& body) {
#ifdef _OPENMP
  const bool worth_it = count > 1 && flops_per_item * double(count) > kParallelFlopThreshold && max_threads() > 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (worth_it)
  for (Eigen::Index i = 0; i < count; ++i) body(i, omp_get_thread_num());
#else
  (void)flops_per_item;
  for (Eigen::Index i = 0; i < count; ++i) body(i, 0);
#endif
}

}  // namespace fftmat::detail
