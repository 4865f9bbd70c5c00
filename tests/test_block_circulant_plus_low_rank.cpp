#include <doctest/doctest.h>
#include <fftmat/block_circulant_plus_low_rank.hpp>

#include <Eigen/Dense>

#include <functional>
#include <string>
#include <tuple>
#include <vector>

#include "low_rank_reference.hpp"
#include "reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

// C + U V with C built element by element from its first columns.
Eigen::MatrixXd dense_of(const BlockCirculantPlusLowRank<double>& A) {
  return test::dense_block_circulant(A.rows(), A.cols(), A.core().block_size(), A.core().parameters()) +
         A.residual().left() * A.residual().right();
}

double squared_error(const Eigen::MatrixXd& A, const Eigen::MatrixXd& X, const Eigen::MatrixXd& Y) {
  return (Y - A * X).squaredNorm();
}

std::string message_of(const std::function<void()>& make) {
  try {
    make();
  } catch (const invalid_argument& e) {
    return e.what();
  }
  return "no exception";
}

}  // namespace

TEST_CASE("block-circulant plus low-rank product equals C + U V built element by element") {
  for (const auto& shape : std::vector<std::tuple<Index, Index, Index, Index>>{{12, 8, 4, 2}, {8, 24, 8, 3}, {10, 10, 5, 1}}) {
    const Index m = std::get<0>(shape), n = std::get<1>(shape), b = std::get<2>(shape), r = std::get<3>(shape);
    CAPTURE(m);
    CAPTURE(n);
    const Index P = (m / b) * (n / b) * b;
    const Eigen::VectorXd params = test::gaussian_vector(P, 1);
    const Eigen::MatrixXd U = test::gaussian(m, r, 2), V = test::gaussian(r, n, 3);
    const Eigen::MatrixXd expected = test::dense_block_circulant(m, n, b, params) + U * V;
    const BlockCirculantPlusLowRank<double> A(BlockCirculant<double>(m, n, b, params), LowRank<double>(U, V));
    const Eigen::MatrixXd X = test::gaussian(n, 7, 4);
    CHECK(test::relative_error(A.apply(X), expected * X) < test::tolerance<double>());
    CHECK(test::relative_error(A.to_dense(), expected) < test::tolerance<double>());
    CHECK(A.parameter_count() == P + r * (m + n));
    const BlockCirculantPlusLowRank<float> Af(BlockCirculant<float>(m, n, b, params.cast<float>()),
                                              LowRank<float>(U.cast<float>(), V.cast<float>()));
    CHECK(test::relative_error(Af.apply(X.cast<float>()).cast<double>(), expected * X) < test::tolerance<float>());
  }
}

TEST_CASE("split_block_budget: C of block 2b and the rank of the other half, within the budget of block b") {
  const BudgetSplit split = split_block_budget(768, 256, 64);
  CHECK(split.block_size == 128);
  CHECK(split.rank == 1);  // floor(768 * 256 / (128 * 1024))
  const BudgetSplit second = split_block_budget(1024, 384, 16);
  CHECK(second.block_size == 32);
  CHECK(second.rank == 8);  // floor(1024 * 384 / (32 * 1408))
  for (const BudgetSplit s : {split, second}) CHECK(s.rank >= 1);
  CHECK(768 * 256 / 128 + 1 * (768 + 256) <= 768 * 256 / 64);
  CHECK(1024 * 384 / 32 + 8 * (1024 + 384) <= 1024 * 384 / 16);
  CHECK(message_of([] { split_block_budget(768, 192, 64); }) ==
        "the budget of block size 64 cannot be split: its block-circulant half has block size 128, which does not "
        "divide cols 192");
  CHECK(message_of([] { split_block_budget(256, 256, 128); }) ==
        "the budget of block size 128 cannot be split: its low-rank half (256 parameters) holds no rank-1 term of "
        "512 for a 256x256 matrix");
}

TEST_CASE("fit_block_circulant_plus_low_rank: the objective never increases, the loss is the measured error") {
  const Index m = 16, n = 24, b = 4, r = 2, T = 400;
  const Eigen::MatrixXd X = test::correlated_inputs(n, T, 5);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 6) * X;
  for (const double damping : {0.0, 1e-2}) {
    CAPTURE(damping);
    PlusLowRankFitOptions options;
    options.iterations = 6;
    options.damping = damping;
    const PlusLowRankFit<double> fit = fit_block_circulant_plus_low_rank<double>(X, Y, b, r, options);
    REQUIRE(fit.objective.size() == std::size_t(1 + 2 * options.iterations));
    for (std::size_t k = 1; k < fit.objective.size(); ++k) {
      CAPTURE(k);
      CHECK(fit.objective[k] <= fit.objective[k - 1] * (1 + 1e-12));
    }
    CHECK(fit.objective.back() < 0.9 * fit.objective.front());  // the rounds do something
    const double measured = squared_error(dense_of(fit.matrix), X, Y);
    CHECK(std::abs(fit.loss - measured) < 1e-9 * fit.target_energy);
    if (damping == 0) CHECK(std::abs(fit.objective.back() - measured) < 1e-9 * fit.target_energy);
    CHECK(std::abs(fit.target_energy - Y.squaredNorm()) < 1e-12 * Y.squaredNorm());
    CHECK(fit.matrix.residual().rank() == r);
    CHECK(fit.matrix.core().block_size() == b);
  }
}

TEST_CASE("fit_block_circulant_plus_low_rank: the low-rank step is the ridge rank-r fit to the residual") {
  // Independent reference: the rank-r minimiser of ||Y - C X - L X||^2 + lambda ||L||^2 is the
  // H-whitened truncation of B = (Y - C X) X^T H^-1, H = X X^T + lambda I (docs/calibration.md).
  const Index m = 12, n = 16, b = 4, r = 3, T = 300;
  const double damping = 1e-2;
  const Eigen::MatrixXd X = test::correlated_inputs(n, T, 7);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 8) * X + 0.1 * test::gaussian(m, T, 9);
  PlusLowRankFitOptions options;
  options.damping = damping;
  options.iterations = 0;
  const PlusLowRankFit<double> initial = fit_block_circulant_plus_low_rank<double>(X, Y, b, r, options);
  const Eigen::MatrixXd C =
      test::dense_block_circulant(m, n, b, initial.matrix.core().parameters());
  CHECK(initial.matrix.residual().to_dense().norm() == 0);
  CHECK(test::relative_error(C, project_calibrated(Eigen::MatrixXd(Y * X.transpose() * (X * X.transpose()).inverse()),
                                                   X, b, damping)
                                    .to_dense()) < 1e-9);

  const Eigen::MatrixXd H = test::damped(X * X.transpose(), damping);
  const Eigen::MatrixXd B = (Y - C * X) * X.transpose() * H.inverse();
  const Eigen::MatrixXd expected = test::whitened_truncation(B, H, r);
  options.iterations = 1;
  const PlusLowRankFit<double> fit = fit_block_circulant_plus_low_rank<double>(X, Y, b, r, options);
  CHECK(test::relative_error(fit.matrix.residual().to_dense(), expected) < 1e-9);
  // The core step then refits C to Y - L X: the calibrated fit to those targets.
  const Eigen::MatrixXd rest = Y - expected * X;
  const Eigen::MatrixXd W_rest = rest * X.transpose() * (X * X.transpose()).inverse();
  CHECK(test::relative_error(test::dense_block_circulant(m, n, b, fit.matrix.core().parameters()),
                             project_calibrated(W_rest, X, b, damping).to_dense()) < 1e-8);
}

TEST_CASE("fit_block_circulant_plus_low_rank recovers C + U V from noiseless data, which neither part alone fits") {
  const Index m = 16, n = 16, b = 4, r = 2, T = 300;
  const Eigen::VectorXd params = test::gaussian_vector((m / b) * (n / b) * b, 10);
  const Eigen::MatrixXd A = test::dense_block_circulant(m, n, b, params) +
                            test::gaussian(m, r, 11) * test::gaussian(r, n, 12);
  const Eigen::MatrixXd X = test::gaussian(n, T, 13), Y = A * X;
  PlusLowRankFitOptions options;
  options.iterations = 200;
  options.damping = 1e-12;
  const PlusLowRankFit<double> fit = fit_block_circulant_plus_low_rank<double>(X, Y, b, r, options);
  const double joint = squared_error(dense_of(fit.matrix), X, Y) / Y.squaredNorm();
  const double calibrated = squared_error(project_calibrated(A, X, b, 1e-12).to_dense(), X, Y) / Y.squaredNorm();
  LowRankCalibrator<double> low_rank(m, n);
  low_rank.accumulate(X, Y);
  const double rank_only = low_rank.loss(low_rank.fit(r, 1e-12)) / Y.squaredNorm();
  INFO("relative squared error: calibrated ", calibrated, ", low-rank ", rank_only, ", joint ", joint,
       "; objective after 20 rounds ", fit.objective[40] / Y.squaredNorm());
  CHECK(calibrated > 0.05);
  CHECK(rank_only > 0.05);
  CHECK(joint < 1e-10);
  CHECK(test::relative_error(dense_of(fit.matrix), A) < 1e-5);
}

TEST_CASE("block-circulant plus low-rank: bad input is refused with a message naming it") {
  const BlockCirculant<double> C(8, 4, 4, test::gaussian_vector(8, 14));
  CHECK(message_of([&] {
          BlockCirculantPlusLowRank<double>(C, LowRank<double>(test::gaussian(8, 1, 1), test::gaussian(1, 8, 2)));
        }) == "low-rank term is 8x8, the block-circulant matrix 8x4");
  const Eigen::MatrixXd X = test::gaussian(4, 10, 15), Y = test::gaussian(8, 10, 16);
  CHECK(message_of([&] { fit_block_circulant_plus_low_rank<double>(X, test::gaussian(8, 9, 16), 4, 1); }) ==
        "fit_block_circulant_plus_low_rank: 10 inputs but 9 targets");
  PlusLowRankFitOptions negative;
  negative.iterations = -1;
  CHECK(message_of([&] { fit_block_circulant_plus_low_rank<double>(X, Y, 4, 1, negative); }) ==
        "fit_block_circulant_plus_low_rank: iterations must be >= 0, got -1");
  CHECK(message_of([&] { fit_block_circulant_plus_low_rank<double>(X, Y, 3, 1); }) ==
        "block size 3 does not divide rows 8 (pass fftmat::Padding::zero to zero-pad)");
  CHECK(message_of([&] { fit_block_circulant_plus_low_rank<double>(X, Y, 4, 5); }) ==
        "rank 5 is outside [1, 4] for a 8x4 matrix");
  Eigen::MatrixXd bad = X;
  bad(2, 5) = std::nan("");
  CHECK(message_of([&] { fit_block_circulant_plus_low_rank<double>(bad, Y, 4, 1); }) ==
        "fit_block_circulant_plus_low_rank: input 2 of sample 5 is not finite: nan");
}
