#include <doctest/doctest.h>
#include <fftmat/low_rank.hpp>

#include <Eigen/SVD>

#include <limits>
#include <ostream>
#include <tuple>
#include <vector>

#include "low_rank_reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

// One fit's shape and damping; doctest prints it when a check fails.
struct FitCase {
  Index m, n, rank;
  double damping;
};
std::ostream& operator<<(std::ostream& out, const FitCase& fit) {
  return out << "m = " << fit.m << ", n = " << fit.n << ", rank = " << fit.rank << ", damping = " << fit.damping;
}

// Inputs with correlated coordinates, scales decaying by 0.8 per coordinate.
Eigen::MatrixXd low_rank_inputs(Index n, Index T, unsigned seed) {
  return test::correlated_inputs(n, T, seed, 0.8, 4321);
}

}  // namespace

TEST_CASE("rank_for_block_budget: the largest rank whose factors fit in m n / b parameters") {
  for (const auto& shape : std::vector<std::tuple<Index, Index, Index>>{
           {768, 256, 16}, {768, 256, 64}, {256, 768, 128}, {11008, 4096, 64}, {64, 64, 64}, {6, 9, 3}}) {
    const Index m = std::get<0>(shape);
    const Index n = std::get<1>(shape);
    const Index b = std::get<2>(shape);
    CAPTURE(m);
    CAPTURE(b);
    const Index r = rank_for_block_budget(m, n, b);
    CHECK(r * (m + n) * b <= m * n);
    CHECK((r + 1) * (m + n) * b > m * n);
  }
  CHECK(rank_for_block_budget(768, 256, 64) == 3);
  CHECK_THROWS_AS(rank_for_block_budget(0, 4, 2), invalid_argument);
  CHECK_THROWS_AS(rank_for_block_budget(4, 4, 0), invalid_argument);
}

TEST_CASE("LowRank::apply equals the element-wise sum over the factors") {
  const Eigen::MatrixXd U = test::gaussian(7, 3, 1), V = test::gaussian(3, 5, 2), X = test::gaussian(5, 4, 3);
  const LowRank<double> L(U, V);
  CHECK(L.rank() == 3);
  CHECK(L.parameter_count() == 3 * (7 + 5));
  Eigen::MatrixXd expected = Eigen::MatrixXd::Zero(7, 4);
  for (Index i = 0; i < 7; ++i)
    for (Index t = 0; t < 4; ++t)
      for (Index k = 0; k < 3; ++k)
        for (Index j = 0; j < 5; ++j) expected(i, t) += U(i, k) * V(k, j) * X(j, t);
  CHECK(test::relative_error(L.apply(X), expected) < 1e-14);
  const LowRank<float> Lf(U.cast<float>(), V.cast<float>());
  CHECK(test::relative_error(Lf.apply(X.cast<float>()).cast<double>(), expected) < 1e-6);
}

TEST_CASE("project_low_rank is the whitened truncation [W S]_r S^-1 (float64 reference by another route)") {
  for (const FitCase& fit : std::vector<FitCase>{
           {12, 8, 3, 1e-2}, {8, 12, 2, 1e-2}, {10, 10, 1, 0.0}, {16, 6, 6, 0.1}, {9, 7, 4, 0.0}}) {
    const Index m = fit.m, n = fit.n, rank = fit.rank;
    const double damping = fit.damping;
    CAPTURE(fit);
    const Eigen::MatrixXd W = test::gaussian(m, n, 11), X = low_rank_inputs(n, 40, 12);
    InputGram gram(n);
    gram.accumulate(X.leftCols(15));  // two batches: the statistics stream
    gram.accumulate(X.rightCols(25));
    const Eigen::MatrixXd expected = test::whitened_truncation(W, test::damped(X * X.transpose(), damping), rank);
    const LowRank<double> L = project_low_rank(W, gram, rank, damping);
    CHECK(L.rank() == rank);
    CHECK(test::relative_error(L.to_dense(), expected) < 1e-9);
    // float weights give a float fit from the same double computation.
    const LowRank<float> Lf = project_low_rank(W.cast<float>(), gram, rank, damping);
    CHECK(test::relative_error(Lf.to_dense().cast<double>(), expected) < 1e-5);
  }
}

TEST_CASE("whitening matters: on correlated inputs the fit beats the plain truncated SVD of W") {
  const Index m = 24, n = 16, rank = 4;
  const Eigen::MatrixXd W = test::gaussian(m, n, 21), X = low_rank_inputs(n, 200, 22);
  InputGram gram(n);
  gram.accumulate(X);
  const LowRank<double> L = project_low_rank(W, gram, rank, 1e-4);
  const Eigen::JacobiSVD<Eigen::MatrixXd> svd(W, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::MatrixXd plain = svd.matrixU().leftCols(rank) * svd.singularValues().head(rank).asDiagonal() *
                                svd.matrixV().leftCols(rank).transpose();
  const double whitened_error = (W * X - L.to_dense() * X).norm(), plain_error = (W * X - plain * X).norm();
  CHECK(whitened_error < 0.7 * plain_error);
  // Full rank without damping reproduces W.
  CHECK(test::relative_error(project_low_rank(W, gram, n, 0.0).to_dense(), W) < 1e-9);
}

TEST_CASE("LowRankCalibrator::fit is the rank-r ridge regression [R S^-T]_r S^-1 (float64 reference)") {
  for (const FitCase& fit : std::vector<FitCase>{{12, 8, 3, 1e-2}, {8, 12, 5, 0.0}, {10, 6, 1, 0.1}}) {
    const Index m = fit.m, n = fit.n, rank = fit.rank;
    const double damping = fit.damping;
    CAPTURE(fit);
    const Eigen::MatrixXd X = low_rank_inputs(n, 50, 31);
    // Targets that are not a linear function of the inputs, as a patched student's inputs are not
    // the teacher's.
    const Eigen::MatrixXd Y = test::gaussian(m, n, 32) * X + 0.3 * test::gaussian(m, 50, 33);
    LowRankCalibrator<double> calibrator(m, n);
    calibrator.accumulate(X.leftCols(20), Y.leftCols(20));
    calibrator.accumulate(X.rightCols(30), Y.rightCols(30));
    // Minimising ||Y - L X||^2 + lambda ||L||^2 = ||(B - L) H^(1/2)||^2 + const with H = X X^T + lambda I
    // and B = Y X^T H^-1, the unconstrained ridge solution.
    const Eigen::MatrixXd H = test::damped(X * X.transpose(), damping);
    const Eigen::MatrixXd B = H.ldlt().solve((Y * X.transpose()).transpose()).transpose();
    const Eigen::MatrixXd expected = test::whitened_truncation(B, H, rank);
    const LowRank<double> L = calibrator.fit(rank, damping);
    CHECK(test::relative_error(L.to_dense(), expected) < 1e-8);
    // loss() from the statistics equals the directly computed squared error.
    const double direct = (Y - L.to_dense() * X).squaredNorm();
    CHECK(calibrator.loss(L) == doctest::Approx(direct).epsilon(1e-9));
    CHECK(calibrator.target_energy() == doctest::Approx(Y.squaredNorm()).epsilon(1e-12));
  }
}

TEST_CASE("with targets W x and no damping, the calibrator's fit equals the one-shot whitened truncation") {
  const Index m = 14, n = 10, rank = 3;
  const Eigen::MatrixXd W = test::gaussian(m, n, 41), X = low_rank_inputs(n, 60, 42);
  LowRankCalibrator<double> calibrator(m, n);
  calibrator.accumulate(X, W * X);
  InputGram gram(n);
  gram.accumulate(X);
  CHECK(test::relative_error(calibrator.fit(rank, 0.0).to_dense(), project_low_rank(W, gram, rank, 0.0).to_dense()) <
        1e-8);
}

TEST_CASE("merged calibrators give the fit of their union") {
  const Index m = 9, n = 7;
  const Eigen::MatrixXd X = low_rank_inputs(n, 30, 51), Y = test::gaussian(m, 30, 52);
  LowRankCalibrator<double> whole(m, n), first(m, n), second(m, n);
  whole.accumulate(X, Y);
  first.accumulate(X.leftCols(11), Y.leftCols(11));
  second.accumulate(X.rightCols(19), Y.rightCols(19));
  first.merge(second);
  CHECK(first.samples() == 30);
  CHECK(test::relative_error(first.fit(2).to_dense(), whole.fit(2).to_dense()) < 1e-10);
  CHECK_THROWS_AS(first.merge(LowRankCalibrator<double>(m, n + 1)), invalid_argument);
}

TEST_CASE("low-rank fits refuse bad input with a clear error") {
  const Eigen::MatrixXd W = test::gaussian(6, 4, 61), X = test::gaussian(4, 10, 62);
  InputGram gram(4);
  CHECK_THROWS_WITH_AS(project_low_rank(W, gram, 2), doctest::Contains("no samples"), invalid_argument);
  gram.accumulate(X);
  CHECK_THROWS_WITH_AS(project_low_rank(W, gram, 0), doctest::Contains("rank 0 is outside [1, 4]"),
                       invalid_argument);
  CHECK_THROWS_WITH_AS(project_low_rank(W, gram, 5), doctest::Contains("rank 5 is outside"), invalid_argument);
  CHECK_THROWS_WITH_AS(project_low_rank(W, gram, 2, -1.0), doctest::Contains("damping"), invalid_argument);
  CHECK_THROWS_AS(project_low_rank(test::gaussian(6, 5, 63), gram, 2), invalid_argument);

  Eigen::MatrixXd bad = X;
  bad(2, 3) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_WITH_AS(gram.accumulate(bad), doctest::Contains("non-finite input value nan at row 2, sample 3"),
                       invalid_argument);
  LowRankCalibrator<double> calibrator(6, 4);
  CHECK_THROWS_WITH_AS(calibrator.fit(2), doctest::Contains("no samples"), invalid_argument);
  CHECK_THROWS_AS(calibrator.accumulate(X, test::gaussian(5, 10, 64)), invalid_argument);
  CHECK_THROWS_AS(calibrator.accumulate(X, test::gaussian(6, 9, 65)), invalid_argument);
  Eigen::MatrixXd bad_target = test::gaussian(6, 10, 66);
  bad_target(0, 0) = std::numeric_limits<double>::infinity();
  CHECK_THROWS_WITH_AS(calibrator.accumulate(X, bad_target), doctest::Contains("non-finite target"),
                       invalid_argument);

  // Fewer samples than input dimensions: singular without damping, a clear error rather than NaN.
  LowRankCalibrator<double> few(6, 4);
  few.accumulate(X.leftCols(2), W * X.leftCols(2));
  CHECK_THROWS_WITH_AS(few.fit(2, 0.0), doctest::Contains("singular"), numerical_error);
  CHECK(few.fit(2, 1e-2).to_dense().allFinite());
  InputGram few_gram(4);
  few_gram.accumulate(X.leftCols(2));
  CHECK_THROWS_AS(project_low_rank(W, few_gram, 2, 0.0), numerical_error);

  // Inputs without energy: the minimum-norm fit is zero.
  LowRankCalibrator<double> silent(6, 4);
  silent.accumulate(Eigen::MatrixXd::Zero(4, 5), test::gaussian(6, 5, 67));
  CHECK(silent.fit(2).to_dense().norm() == 0.0);

  CHECK_THROWS_WITH_AS(LowRank<double>(test::gaussian(3, 2, 1), test::gaussian(3, 4, 2)),
                       doctest::Contains("do not chain"), invalid_argument);
  Eigen::MatrixXd nan_factor = test::gaussian(3, 2, 3);
  nan_factor(1, 1) = std::numeric_limits<double>::quiet_NaN();
  CHECK_THROWS_AS(LowRank<double>(nan_factor, test::gaussian(2, 4, 4)), invalid_argument);
  const LowRank<double> L(test::gaussian(3, 2, 5), test::gaussian(2, 4, 6));
  Eigen::MatrixXd wrong(2, 1);
  CHECK_THROWS_AS(L.apply(test::gaussian(4, 1, 7), wrong), invalid_argument);
}
