#pragma once
// Which instruction set the per-bin product kernels use, chosen at run time for the CPU the program
// meets (as ggml, simdjson and Highway do): a program compiled for generic x86-64 runs the AVX-512
// kernels on a CPU that has AVX-512F, the AVX2+FMA ones on a CPU that has those, the portable ones
// elsewhere. -march=native is never needed. The choice is made once, at the first product, and can
// be forced: by the environment variable FFTMAT_KERNELS (portable, avx2 or avx512), read then, or
// by set_kernel_isa() at any time. docs/design.md ("Kernels chosen at run time") says why the
// kernels are built this way.

#include <atomic>
#include <cstdlib>
#include <string>

#include "error.hpp"

namespace fftmat {

/// A set of product kernels. Only float products have vector kernels; double ones always run the
/// portable kernels, which the compiler vectorises for whatever the translation unit targets.
enum class KernelIsa {
  portable,  ///< plain C++ loops
  avx2,      ///< 256-bit AVX2 + FMA
  avx512,    ///< 512-bit AVX-512F
};

inline const char* to_string(KernelIsa isa) noexcept {
  switch (isa) {
    case KernelIsa::avx2: return "avx2";
    case KernelIsa::avx512: return "avx512";
    case KernelIsa::portable: break;
  }
  return "portable";
}

namespace detail {

// The x86-64 kernels are compiled with GCC/Clang target regions (detail/simd_avx2.hpp,
// detail/simd_avx512.hpp); other compilers and architectures have the portable kernels only.
#if (defined(__x86_64__) || defined(_M_X64)) && (defined(__GNUC__) || defined(__clang__))
#define FFTMAT_X86_KERNELS 1
#endif

/// Whether this CPU (and its operating system, which must save the wider registers) runs `isa`.
inline bool cpu_supports(KernelIsa isa) noexcept {
#ifdef FFTMAT_X86_KERNELS
  switch (isa) {
    case KernelIsa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx2") &&
                                   __builtin_cpu_supports("fma");
    case KernelIsa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case KernelIsa::portable: return true;
  }
  return false;
#else
  return isa == KernelIsa::portable;
#endif
}

/// The best kernels this CPU runs.
inline KernelIsa best_kernel_isa() noexcept {
  for (KernelIsa isa : {KernelIsa::avx512, KernelIsa::avx2}) {
    if (cpu_supports(isa)) return isa;
  }
  return KernelIsa::portable;
}

/// `name` as a KernelIsa; throws invalid_argument naming `source` for anything else.
inline KernelIsa parse_kernel_isa(const std::string& name, const char* source) {
  for (KernelIsa isa : {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512}) {
    if (name == to_string(isa)) return isa;
  }
  throw invalid_argument(std::string(source) + " is '" + name + "', expected portable, avx2 or avx512");
}

inline void require_supported(KernelIsa isa, const char* source) {
  require(cpu_supports(isa), source, " asks for the ", to_string(isa), " kernels, which this CPU (or build) ",
          "does not support; the best it runs is ", to_string(best_kernel_isa()));
}

/// The choice from FFTMAT_KERNELS, or the best this CPU runs.
inline KernelIsa initial_kernel_isa() {
  const char* forced = std::getenv("FFTMAT_KERNELS");
  if (forced == nullptr || *forced == '\0') return best_kernel_isa();
  const KernelIsa isa = parse_kernel_isa(forced, "FFTMAT_KERNELS");
  require_supported(isa, "FFTMAT_KERNELS");
  return isa;
}

/// The kernels in use: one process-wide choice, read with a relaxed load on every product.
inline std::atomic<KernelIsa>& kernel_isa_choice() {
  static std::atomic<KernelIsa> choice{initial_kernel_isa()};
  return choice;
}

}  // namespace detail

/// Whether this CPU and build run `isa`'s kernels.
inline bool kernel_isa_supported(KernelIsa isa) noexcept { return detail::cpu_supports(isa); }

/// The kernels float products use (the environment's FFTMAT_KERNELS, or the best this CPU runs,
/// unless set_kernel_isa chose). Throws fftmat::invalid_argument on the first call if FFTMAT_KERNELS
/// names an unknown or unsupported set.
inline KernelIsa kernel_isa() { return detail::kernel_isa_choice().load(std::memory_order_relaxed); }

/// Makes every later product use `isa`'s kernels (results differ only by rounding). Throws
/// fftmat::invalid_argument if this CPU does not run them. A product running meanwhile may use
/// either set, panel by panel.
inline void set_kernel_isa(KernelIsa isa) {
  detail::require_supported(isa, "set_kernel_isa");
  detail::kernel_isa_choice().store(isa, std::memory_order_relaxed);
}

}  // namespace fftmat
