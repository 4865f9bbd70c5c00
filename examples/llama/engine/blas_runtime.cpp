#include "blas_runtime.hpp"

#include <cblas.h>
#include <strings.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <utility>

namespace blas_runtime {
namespace {

// Set (to the core OpenBLAS chose first) in the environment of the re-executed process: it tells
// our OPENBLAS_CORETYPE from the user's and stops a second re-execution.
constexpr const char* corrected_from_variable = "FFTMAT_OPENBLAS_CORRECTED_FROM";

// OpenBLAS's x86-64 core names (driver/others/dynamic.c, `corename`) by the instruction set their
// GEMM kernels use.
constexpr std::pair<std::string_view, Isa> core_table[] = {
    {"Katmai", Isa::sse},      {"Coppermine", Isa::sse},   {"Northwood", Isa::sse},    {"Prescott", Isa::sse},
    {"Banias", Isa::sse},      {"Atom", Isa::sse},         {"Core2", Isa::sse},        {"Penryn", Isa::sse},
    {"Dunnington", Isa::sse},  {"Nehalem", Isa::sse},      {"Athlon", Isa::sse},       {"Opteron", Isa::sse},
    {"Opteron_SSE3", Isa::sse}, {"Barcelona", Isa::sse},   {"Nano", Isa::sse},         {"Bobcat", Isa::sse},
    {"Sandybridge", Isa::avx}, {"Bulldozer", Isa::avx},    {"Piledriver", Isa::avx},   {"Steamroller", Isa::avx},
    {"Haswell", Isa::avx2},    {"Excavator", Isa::avx2},   {"Zen", Isa::avx2},         {"SkylakeX", Isa::avx512},
    {"Cooperlake", Isa::avx512}, {"SapphireRapids", Isa::avx512},
};

bool same_name(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

std::optional<std::string> environment(const char* name) {
  const char* value = std::getenv(name);
  return value ? std::optional<std::string>(value) : std::nullopt;
}

/// "OpenBLAS 0.3.21" from openblas_get_config() ("OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH ...").
std::string openblas_version() {
  std::istringstream config(openblas_get_config());
  std::string name, version;
  config >> name >> version;
  return name + " " + version;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::sse: return "SSE";
    case Isa::avx: return "AVX";
    case Isa::avx2: return "AVX2";
    case Isa::avx512: return "AVX-512";
  }
  return "?";
}

Isa cpu_isa() {
#if defined(__x86_64__) || defined(__i386__)
  // SkylakeX's kernels use the AVX-512 subsets every AVX-512 CPU since Skylake-SP has.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512cd"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::avx2;
  if (__builtin_cpu_supports("avx")) return Isa::avx;
#endif
  return Isa::sse;  // elsewhere core_isa knows no core name, so nothing is corrected
}

std::optional<Isa> core_isa(std::string_view core) {
  for (const auto& [name, isa] : core_table)
    if (same_name(name, core)) return isa;
  return std::nullopt;
}

std::string_view best_core(Isa isa) {
  switch (isa) {
    case Isa::sse: return "Prescott";
    case Isa::avx: return "Sandybridge";
    case Isa::avx2: return "Haswell";
    case Isa::avx512: return "SkylakeX";
  }
  return "Prescott";
}

Verdict decide(std::string_view chosen_core, Isa cpu, const std::optional<std::string>& user_coretype,
               const std::optional<std::string>& corrected_from) {
  const std::string core(chosen_core);
  const std::optional<Isa> chosen = core_isa(chosen_core);
  if (!chosen || *chosen == cpu) return {Action::keep, core, ""};
  std::ostringstream message;
  message << "OpenBLAS runs its " << core << " kernels (" << isa_name(*chosen) << ") on a CPU with "
          << isa_name(cpu);
  if (*chosen > cpu) {
    message << ": the first GEMM would stop on an illegal instruction; ";
    if (user_coretype)
      message << "unset OPENBLAS_CORETYPE=" << *user_coretype << " or set it to " << best_core(cpu);
    else
      message << "set OPENBLAS_CORETYPE=" << best_core(cpu);
    return {Action::fail, core, message.str()};
  }
  if (corrected_from) {
    message << ", first " << *corrected_from << ", then, with OPENBLAS_CORETYPE=" << best_core(cpu)
            << ", still " << core << ": this OpenBLAS cannot switch kernels (built without DYNAMIC_ARCH?); GEMMs run "
            << "slower than the CPU allows";
    return {Action::warn, core, message.str()};
  }
  if (user_coretype) {
    message << ", as OPENBLAS_CORETYPE=" << *user_coretype << " asks: GEMMs run several times slower than with "
            << "OPENBLAS_CORETYPE=" << best_core(cpu) << " (or unset, which fftmat corrects)";
    return {Action::warn, core, message.str()};
  }
  return {Action::reexec, std::string(best_core(cpu)), ""};
}

bool use_best_kernels(char** argv) {
  const std::optional<std::string> corrected_from = environment(corrected_from_variable);
  const std::optional<std::string> user_coretype =
      corrected_from ? std::nullopt : environment("OPENBLAS_CORETYPE");
  const std::string chosen = openblas_get_corename();
  const Verdict verdict = decide(chosen, cpu_isa(), user_coretype, corrected_from);
  switch (verdict.action) {
    case Action::keep: return true;
    case Action::warn: std::cerr << "warning: " << verdict.message << '\n'; return true;
    case Action::fail: std::cerr << "error: " << verdict.message << '\n'; return false;
    case Action::reexec: break;
  }
  // OpenBLAS reads OPENBLAS_CORETYPE only when it is loaded: the same program, started again.
  setenv("OPENBLAS_CORETYPE", verdict.core.c_str(), 1);
  setenv(corrected_from_variable, chosen.c_str(), 1);
  execv("/proc/self/exe", argv);
  const int error = errno;  // execv returns only when it failed
  unsetenv("OPENBLAS_CORETYPE");
  unsetenv(corrected_from_variable);
  std::cerr << "warning: OpenBLAS runs its " << chosen << " kernels on a CPU with " << isa_name(cpu_isa())
            << "; restarting with OPENBLAS_CORETYPE=" << verdict.core << " failed (" << std::strerror(error)
            << "): GEMMs run slower than the CPU allows\n";
  return true;
}

std::string gemm_kernels() {
  const std::string core = openblas_get_corename();
  const std::optional<Isa> isa = core_isa(core);
  std::string text = openblas_version() + " " + core + " (" + (isa ? std::string(isa_name(*isa)) : "unknown ISA") + ")";
  if (const auto corrected_from = environment(corrected_from_variable))
    text += ", corrected from " + *corrected_from;
  else if (const auto user_coretype = environment("OPENBLAS_CORETYPE"))
    text += ", OPENBLAS_CORETYPE=" + *user_coretype;
  return text;
}

}  // namespace blas_runtime
