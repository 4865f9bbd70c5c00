#include <doctest/doctest.h>
#include <fftmat/fftmat.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

TEST_CASE("concurrent apply on one object from several threads gives the dense result") {
  const Index m = 96, n = 64, b = 16;
  const Eigen::VectorXd params = test::gaussian_vector(m * n / b, 51);
  const BlockCirculant<float> A(m, n, b, params.cast<float>());
  const Eigen::MatrixXd dense = test::dense_block_circulant(m, n, b, params);

  constexpr int kThreads = 6, kIterations = 40;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int it = 0; it < kIterations; ++it) {
        const Index T = 1 + (t + it) % 7;  // different token counts interleave on one object
        const Eigen::MatrixXd X = test::gaussian(n, T, unsigned(1000 * t + it));
        const Eigen::MatrixXd Xt = test::gaussian(m, T, unsigned(5000 * t + it));
        const double error = test::relative_error(A.apply(X.cast<float>()).cast<double>(), dense * X);
        const double transpose_error =
            test::relative_error(A.apply_transpose(Xt.cast<float>()).cast<double>(), dense.transpose() * Xt);
        if (!(error < 2e-5) || !(transpose_error < 2e-5)) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
}

TEST_CASE("plans for new layouts are created safely from several threads at once") {
  // Each thread builds matrices of shapes no other test uses, so plan creation races in the cache.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (Index b : {3, 5, 6, 10, 12, 18}) {
        const Index m = b * (2 + t), n = b * 3;
        const Eigen::VectorXd params = test::gaussian_vector(m * n / b, unsigned(t * 100 + b));
        const BlockCirculant<double> A(m, n, b, params);
        const Eigen::MatrixXd X = test::gaussian(n, 2, unsigned(b));
        const double error =
            test::relative_error(A.apply(X), test::dense_block_circulant(m, n, b, params) * X);
        if (!(error < 1e-12)) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  CHECK(failures.load() == 0);
}
