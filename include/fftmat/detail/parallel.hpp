#pragma once
// An OpenMP region with barriers, beside threading.hpp's parallel_for: it runs serially when OpenMP
// is absent or the work is too small to repay waking threads (fftmat::parallel_min_flops()). Each
// call gets its own team, so concurrent callers never share scratch.

#include "internal_header_check.hpp"

#include <Eigen/Core>

#include <algorithm>
#include <utility>

#include "../threading.hpp"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fftmat::detail {

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
