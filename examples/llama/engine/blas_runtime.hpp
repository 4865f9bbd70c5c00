#pragma once
// Which GEMM kernels OpenBLAS runs, and a correction when they are below what the CPU can do.
//
// OpenBLAS built with DYNAMIC_ARCH (Debian's) picks its kernels once, when it is loaded, from a
// table of CPU models. A model newer than the table gets its SSE3 "Prescott" kernels, silently,
// at a third of the speed of its AVX-512 ones (docs/llama.md, "GEMM kernels"). Its only switch is
// the environment variable OPENBLAS_CORETYPE, read at load time, so the correction re-executes the
// program once with it set. A value the user set is kept: then it only warns.

#include <optional>
#include <string>
#include <string_view>

namespace blas_runtime {

/// The instruction sets OpenBLAS's x86-64 GEMM kernels are written for, lowest first.
enum class Isa { sse, avx, avx2, avx512 };

std::string_view isa_name(Isa isa);

/// What this CPU can run (cpuid and the OS's register saving, through `__builtin_cpu_supports`).
Isa cpu_isa();

/// The instruction set of an OpenBLAS core's kernels (`openblas_get_corename()`, any case);
/// nullopt for a name this table does not know (a newer OpenBLAS, a non-x86 core).
std::optional<Isa> core_isa(std::string_view core);

/// The core whose kernels are the fastest that `isa` runs, as OPENBLAS_CORETYPE spells it.
std::string_view best_core(Isa isa);

/// What to do about the kernels OpenBLAS chose.
enum class Action {
  keep,    // the best this OpenBLAS has for the CPU, or a core this table does not know
  reexec,  // re-execute with OPENBLAS_CORETYPE = Verdict::core
  warn,    // below the CPU, but the user chose it, or a correction did not take
  fail,    // needs instructions the CPU lacks: the first GEMM would stop on an illegal instruction
};

struct Verdict {
  Action action;
  std::string core;     // for reexec: the OPENBLAS_CORETYPE to set; otherwise the core in use
  std::string message;  // for warn and fail: what is wrong and what to do, naming the values
};

/// The decision, from the state alone. `user_coretype` is OPENBLAS_CORETYPE as the user set it
/// (nullopt when unset); `corrected_from` is the core OpenBLAS chose before a correction of ours
/// (nullopt when this process is not one).
Verdict decide(std::string_view chosen_core, Isa cpu, const std::optional<std::string>& user_coretype,
               const std::optional<std::string>& corrected_from);

/// Checks this process's OpenBLAS against its CPU and acts on the verdict: re-executes `argv`
/// (main's) with OPENBLAS_CORETYPE set when the kernels fall short; returns true when they are the
/// best available or a warning went to stderr, false after printing the error when they cannot run.
/// Call it first thing in main(), before any thread starts.
bool use_best_kernels(char** argv);

/// The GEMM kernels in use, for reports, e.g. "OpenBLAS 0.3.21 SkylakeX (AVX-512)", with
/// ", corrected from Prescott" when use_best_kernels re-executed.
std::string gemm_kernels();

}  // namespace blas_runtime
