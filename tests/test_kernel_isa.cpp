// The product kernels chosen at run time (fftmat/kernel_isa.hpp): every set this CPU runs gives the
// dense product, with full and bfloat16 spectra, for token counts that end in every tile shape of
// every set (tiles of 6 and 12 tokens) and for one token on teams of 1 and 2 threads; sets the CPU
// does not run are refused.
#include <doctest/doctest.h>
#include <fftmat/block_circulant.hpp>
#include <fftmat/kernel_isa.hpp>

#include <string>
#include <vector>

#include "reference.hpp"
#include "scoped_thread_count.hpp"
#include "shapes.hpp"

using namespace fftmat;
using test::Index;
using test::Shape;

namespace {

constexpr KernelIsa kAllIsas[] = {KernelIsa::portable, KernelIsa::avx2, KernelIsa::avx512};

/// Uses `isa`'s kernels for one scope.
class ScopedKernelIsa {
 public:
  explicit ScopedKernelIsa(KernelIsa isa) { set_kernel_isa(isa); }
  ScopedKernelIsa(const ScopedKernelIsa&) = delete;
  ScopedKernelIsa& operator=(const ScopedKernelIsa&) = delete;
  ~ScopedKernelIsa() { set_kernel_isa(previous_); }

 private:
  KernelIsa previous_ = kernel_isa();
};

}  // namespace

TEST_CASE("every kernel set this CPU runs matches the dense definition") {
  // p >= 8 block rows, so the packed kernels run: 7 panels (an odd count, for the one-token path's
  // pairs of panels), a zero-padded last panel (p = 17, 50), odd b (no Nyquist bin), b = 2 (every
  // bin real), q = 1 and q = 9.
  const std::vector<Shape> shapes = {{200, 48, 4}, {85, 45, 5}, {64, 8, 8}, {112, 18, 2}, {136, 72, 8}};
  const std::vector<Index> tokens = {1, 2, 5, 6, 7, 11, 12, 13, 25};
  int ran = 0;
  for (const KernelIsa isa : kAllIsas) {
    CAPTURE(std::string(to_string(isa)));
    if (!kernel_isa_supported(isa)) {
      CHECK_THROWS_AS(set_kernel_isa(isa), invalid_argument);
      MESSAGE("this CPU does not run the ", std::string(to_string(isa)), " kernels: not tested here");
      continue;
    }
    const ScopedKernelIsa scoped(isa);
    CHECK(kernel_isa() == isa);
    ++ran;
    unsigned seed = 900;
    for (const Shape& s : shapes) {
      CAPTURE(s.m);
      CAPTURE(s.n);
      CAPTURE(s.b);
      const Eigen::VectorXd params = test::gaussian_vector(s.m * s.n / s.b, seed++);
      const Eigen::MatrixXd dense = test::dense_block_circulant(s.m, s.n, s.b, params);
      for (const SpectrumPrecision precision : {SpectrumPrecision::full, SpectrumPrecision::bfloat16}) {
        const BlockCirculant<float> A(s.m, s.n, s.b, params.cast<float>(), Padding::none, precision);
        REQUIRE(A.spectrum_precision() == precision);
        const bool full = precision == SpectrumPrecision::full;
        for (const Index T : tokens) {
          CAPTURE(T);
          CAPTURE(full);
          const Eigen::MatrixXd X = test::gaussian(s.n, T, seed++);
          const Eigen::MatrixXd expected = dense * X;
          for (const int threads : {1, 2}) {
            CAPTURE(threads);
            const test::ScopedThreadCount team(threads);
            const double error = test::relative_error(A.apply(X.cast<float>()).cast<double>(), expected);
            if (full) {
              CHECK(error < test::tolerance<float>());
            } else {
              CHECK(error < 5e-3);  // bfloat16 spectra: 8 significant bits
              CHECK(error > 1e-4);  // ... and really the rounded copy
            }
          }
        }
      }
    }
  }
  CHECK(ran >= 1);
  MESSAGE("kernel sets tested: ", ran, " of 3; in use by default: ", std::string(to_string(detail::best_kernel_isa())));
}

TEST_CASE("kernel set names") {
  for (const KernelIsa isa : kAllIsas) CHECK(detail::parse_kernel_isa(to_string(isa), "test") == isa);
  CHECK_THROWS_WITH_AS(detail::parse_kernel_isa("avx3", "FFTMAT_KERNELS"),
                       "FFTMAT_KERNELS is 'avx3', expected portable, avx2 or avx512", invalid_argument);
  CHECK(kernel_isa_supported(KernelIsa::portable));
  CHECK(kernel_isa_supported(detail::best_kernel_isa()));
}
