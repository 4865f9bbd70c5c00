// blas_runtime: the verdict on OpenBLAS's kernel choice against hand-written cases, and the real
// check run in this process (main() runs it first, as fftmat-llama does). ctest runs this binary
// twice: as it is, and with fake_openblas_fallback preloaded, which makes OpenBLAS report the
// Prescott fall-back of an OpenBLAS that does not know the CPU (FFTMAT_TEST_EXPECT_CORRECTED_FROM
// then names the core the correction must have replaced).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cblas.h>

#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>

#include "engine/blas_runtime.hpp"

using blas_runtime::Action;
using blas_runtime::decide;
using blas_runtime::Isa;

namespace {
const std::optional<std::string> unset;
}

TEST_CASE("core names map to the instruction set of their kernels, in any case") {
  CHECK(blas_runtime::core_isa("Prescott") == Isa::sse);
  CHECK(blas_runtime::core_isa("Nehalem") == Isa::sse);
  CHECK(blas_runtime::core_isa("Sandybridge") == Isa::avx);
  CHECK(blas_runtime::core_isa("Haswell") == Isa::avx2);
  CHECK(blas_runtime::core_isa("Zen") == Isa::avx2);
  CHECK(blas_runtime::core_isa("SkylakeX") == Isa::avx512);
  CHECK(blas_runtime::core_isa("skylakex") == Isa::avx512);
  CHECK(blas_runtime::core_isa("Cooperlake") == Isa::avx512);
  CHECK_FALSE(blas_runtime::core_isa("NEOVERSEN1").has_value());
  CHECK_FALSE(blas_runtime::core_isa("Skylake").has_value());
}

TEST_CASE("a fall-back the user did not ask for is corrected to the best core for the CPU") {
  struct Case {
    const char* chosen;
    Isa cpu;
    const char* corrected;
  };
  for (const Case& c : {Case{"Prescott", Isa::avx512, "SkylakeX"}, Case{"Prescott", Isa::avx2, "Haswell"},
                        Case{"Haswell", Isa::avx512, "SkylakeX"}, Case{"Sandybridge", Isa::avx2, "Haswell"},
                        Case{"Nehalem", Isa::avx, "Sandybridge"}}) {
    CAPTURE(c.chosen);
    CAPTURE(blas_runtime::isa_name(c.cpu));
    const auto verdict = decide(c.chosen, c.cpu, unset, unset);
    CHECK(verdict.action == Action::reexec);
    CHECK(verdict.core == c.corrected);
  }
}

TEST_CASE("the best core for the CPU, or one this table does not know, is kept") {
  struct Case {
    const char* core;
    Isa cpu;
  };
  for (const Case& c : {Case{"SkylakeX", Isa::avx512}, Case{"Cooperlake", Isa::avx512}, Case{"Haswell", Isa::avx2},
                        Case{"Zen", Isa::avx2}, Case{"Sandybridge", Isa::avx}, Case{"Prescott", Isa::sse},
                        Case{"NEOVERSEN1", Isa::sse}, Case{"SapphireRapidsV2", Isa::avx512}}) {
    CAPTURE(c.core);
    const auto verdict = decide(c.core, c.cpu, unset, unset);
    CHECK(verdict.action == Action::keep);
    CHECK(verdict.core == c.core);
    CHECK(verdict.message.empty());
  }
  CHECK(decide("SkylakeX", Isa::avx512, std::string("SkylakeX"), unset).action == Action::keep);
  CHECK(decide("SkylakeX", Isa::avx512, unset, std::string("Prescott")).action == Action::keep);
}

namespace {
/// The verdict's action, and a message containing each of `parts`.
void check_verdict(const blas_runtime::Verdict& verdict, Action action, std::initializer_list<const char*> parts) {
  CHECK(verdict.action == action);
  for (const char* part : parts) {
    CAPTURE(verdict.message);
    CHECK(verdict.message.find(part) != std::string::npos);
  }
}
}  // namespace

TEST_CASE("a fall-back the user asked for only warns, naming the setting and the better core") {
  check_verdict(decide("Prescott", Isa::avx512, std::string("Prescott"), unset), Action::warn,
                {"OPENBLAS_CORETYPE=Prescott", "Prescott kernels (SSE)", "AVX-512", "OPENBLAS_CORETYPE=SkylakeX"});
  check_verdict(decide("Haswell", Isa::avx512, std::string("haswell"), unset), Action::warn,
                {"OPENBLAS_CORETYPE=haswell", "OPENBLAS_CORETYPE=SkylakeX"});
}

TEST_CASE("a correction that did not take warns instead of re-executing again") {
  check_verdict(decide("Prescott", Isa::avx512, unset, std::string("Prescott")), Action::warn,
                {"OPENBLAS_CORETYPE=SkylakeX", "DYNAMIC_ARCH"});
}

TEST_CASE("kernels the CPU cannot run are an error naming the core, the CPU and the fix") {
  check_verdict(decide("SkylakeX", Isa::avx2, std::string("SkylakeX"), unset), Action::fail,
                {"SkylakeX kernels (AVX-512)", "CPU with AVX2", "unset OPENBLAS_CORETYPE=SkylakeX or set it to Haswell"});
  check_verdict(decide("Haswell", Isa::sse, unset, unset), Action::fail, {"set OPENBLAS_CORETYPE=Prescott"});
}

TEST_CASE("this process runs the best kernels its OpenBLAS has for this CPU") {
  const std::string core = openblas_get_corename();
  const std::string kernels = blas_runtime::gemm_kernels();
  INFO("OpenBLAS core: ", core, "; gemm_kernels(): ", kernels);
  REQUIRE(blas_runtime::core_isa(core).has_value());
  CHECK(*blas_runtime::core_isa(core) == blas_runtime::cpu_isa());
  CHECK(kernels.rfind("OpenBLAS ", 0) == 0);
  CHECK(kernels.find(core) != std::string::npos);
  if (const char* expected = std::getenv("FFTMAT_TEST_EXPECT_CORRECTED_FROM"))
    CHECK(kernels.find(std::string(", corrected from ") + expected) != std::string::npos);
}

int main(int argc, char** argv) {
  if (!blas_runtime::use_best_kernels(argv)) return 1;
  return doctest::Context(argc, argv).run();
}
