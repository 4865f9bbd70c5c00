#include <doctest/doctest.h>
#include <fftmat/fftmat.hpp>

#include <atomic>
#include <thread>
#include <vector>

#include "reference.hpp"
#include "scoped_thread_count.hpp"

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

TEST_CASE("parallel_for visits every index once, each on a thread below max_threads()") {
  const test::ScopedThreadCount two_threads(2);
  for (const double flops_per_item : {0.0, 1e9}) {  // serial below parallel_min_flops(), a team above
    CAPTURE(flops_per_item);
    constexpr std::ptrdiff_t kCount = 1000;
    std::vector<std::atomic<int>> visits(kCount);
    std::atomic<int> bad_threads{0};
    const int team = max_threads();
    parallel_for(kCount, flops_per_item, [&](std::ptrdiff_t i, int thread) {
      visits[static_cast<std::size_t>(i)].fetch_add(1);
      if (thread < 0 || thread >= team) bad_threads.fetch_add(1);
    });
    int wrong = 0;
    for (const std::atomic<int>& v : visits) wrong += v.load() != 1;
    CHECK(wrong == 0);
    CHECK(bad_threads.load() == 0);
  }
  parallel_for(0, 1e9, [](std::ptrdiff_t, int) { FAIL("no index to visit"); });
}
