#pragma once
// The example's OpenMP loop: like fftmat's own loops it runs on the calling thread when the work is
// too small to repay waking the team, with the same threshold (fftmat::parallel_min_flops(), which
// FFTMAT_PARALLEL_MIN_FLOPS sets for both), so one setting governs the dense and the
// block-circulant half of the model alike.

#include <fftmat/threading.hpp>

#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace llama {

/// Threads a parallel loop may use: OpenMP's team size (1 inside a parallel region or without
/// OpenMP), so scratch sized by it has a slot for every thread parallel_for runs.
inline int max_threads() noexcept {
#ifdef _OPENMP
  return omp_in_parallel() ? 1 : omp_get_max_threads();
#else
  return 1;
#endif
}

/// Calls body(i, thread) for i in [0, count), thread in [0, max_threads()): on the OpenMP team when
/// the work, flops_per_item * count, exceeds fftmat::parallel_min_flops(), else on this thread.
template <class Body>
void parallel_for(std::int64_t count, double flops_per_item, Body&& body) {
#ifdef _OPENMP
  const bool worth_it =
      count > 1 && flops_per_item * double(count) > fftmat::parallel_min_flops() && max_threads() > 1;
#pragma omp parallel for schedule(static) num_threads(max_threads()) if (worth_it)
  for (std::int64_t i = 0; i < count; ++i) body(i, omp_get_thread_num());
#else
  (void)flops_per_item;
  for (std::int64_t i = 0; i < count; ++i) body(i, 0);
#endif
}

}  // namespace llama
