#pragma once
// Minimal OpenMP helpers (a loop, and a region with barriers): they run serially when OpenMP is
// absent or the work is too small to repay waking threads (fftmat::parallel_min_flops(),
// threading.hpp). Each call gets its own team, so concurrent callers never share scratch.

#include "internal_header_check.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <utility>

#include "../threading.hpp"

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

/// Calls body(i, thread) for i in [0, count), thread in [0, max_threads()).
template <class Body>
void parallel_for(Eigen::Index count, double flops_per_item, Body&& body) {
#ifdef _OPENMP
  const bool worth_it = count > 1 && flops_per_item * double(count) > parallel_min_flops() && max_threads() > 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (worth_it)
  for (Eigen::Index i = 0; i < count; ++i) body(i, omp_get_thread_num());
#else
  (void)flops_per_item;
  for (Eigen::Index i = 0; i < count; ++i) body(i, 0);
#endif
}

/// One thread of a parallel_region: its number and the team's size.
struct TeamMember {
  int thread = 0;
  int threads = 1;

  /// Waits for the whole team. A no-op for a team of one, so that a region run serially inside a
  /// caller's own OpenMP region never binds to (and deadlocks) the caller's team.
  void barrier() const {
#ifdef _OPENMP
    if (threads > 1) {
#pragma omp barrier
    }
#endif
  }

  /// This thread's share [begin, end) of `count` items split into contiguous ranges that start at
  /// multiples of `granule` (all but the last share are whole granules).
  std::pair<Eigen::Index, Eigen::Index> share(Eigen::Index count, Eigen::Index granule = 1) const {
    const Eigen::Index granules = (count + granule - 1) / granule;
    const Eigen::Index begin = granules * thread / threads * granule, end = granules * (thread + 1) / threads * granule;
    return {std::min(begin, count), std::min(end, count)};
  }
};

/// Calls body(member) once on each thread of one team (serially, as a team of one, when `flops` is
/// below the threshold or OpenMP is absent). For work in phases separated by member.barrier().
template <class Body>
void parallel_region(double flops, Body&& body) {
#ifdef _OPENMP
  const int threads = flops > parallel_min_flops() ? max_threads() : 1;
  if (threads > 1) {
#pragma omp parallel num_threads(threads)
    body(TeamMember{omp_get_thread_num(), omp_get_num_threads()});
    return;
  }
#else
  (void)flops;
#endif
  body(TeamMember{});
}

}  // namespace fftmat::detail
