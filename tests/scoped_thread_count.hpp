#pragma once
// Sets the OpenMP team size of the library's parallel regions for one scope (no-op without OpenMP).

#ifdef _OPENMP
#include <omp.h>
#endif

namespace fftmat::test {

class ScopedThreadCount {
 public:
  explicit ScopedThreadCount(int threads) {
#ifdef _OPENMP
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
  }
  ScopedThreadCount(const ScopedThreadCount&) = delete;
  ScopedThreadCount& operator=(const ScopedThreadCount&) = delete;
  ~ScopedThreadCount() {
#ifdef _OPENMP
    omp_set_num_threads(previous_);
#endif
  }

 private:
#ifdef _OPENMP
  int previous_ = omp_get_max_threads();
#endif
};

}  // namespace fftmat::test
