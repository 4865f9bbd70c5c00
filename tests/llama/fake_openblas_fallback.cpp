// Preloaded into test_blas_runtime: OpenBLAS as Debian 12's 0.3.21 behaves on a CPU model newer than
// its table. Without OPENBLAS_CORETYPE it reports its SSE3 Prescott core; with it, OpenBLAS itself
// answers, so the core that a correction asked for is the one reported.
#include <dlfcn.h>

#include <cstdlib>

extern "C" char* openblas_get_corename() {
  static char prescott[] = "Prescott";
  if (!std::getenv("OPENBLAS_CORETYPE")) return prescott;
  using Corename = char* (*)();
  static const auto real = reinterpret_cast<Corename>(dlsym(RTLD_NEXT, "openblas_get_corename"));
  return real ? real() : prescott;
}
