#include <doctest/doctest.h>
#include <fftmat/calibrator.hpp>

#include <Eigen/Dense>

#include <limits>
#include <string>

#include "low_rank_reference.hpp"

using namespace fftmat;
using test::correlated_inputs;
using test::Index;

namespace {

double output_error(const BlockCirculant<double>& A, const Eigen::MatrixXd& W, const Eigen::MatrixXd& X) {
  return (A.apply(X) - W * X).norm();
}

}  // namespace

TEST_CASE("calibrated fit equals brute-force least squares over all parameters") {
  for (const auto& problem :
       std::vector<std::tuple<Index, Index, Index, Padding>>{{6, 9, 3, Padding::none},
                                                             {8, 8, 4, Padding::none},
                                                             {10, 5, 5, Padding::none},
                                                             {8, 10, 4, Padding::zero},
                                                             {12, 6, 2, Padding::none}}) {
    const auto [m, n, b, padding] = problem;
    // CAPTURE takes the tuple elements: C++17 lambdas (inside CAPTURE) cannot capture structured bindings.
    CAPTURE(std::get<0>(problem));
    CAPTURE(std::get<1>(problem));
    CAPTURE(std::get<2>(problem));
    const Eigen::MatrixXd X = correlated_inputs(n, 60, 1);
    const Eigen::MatrixXd Y = test::gaussian(m, n, 2) * X + 0.1 * test::gaussian(m, 60, 3);
    Calibrator<double> calibrator(m, n, b, padding);
    calibrator.accumulate(X, Y);
    const Eigen::VectorXd expected = test::block_circulant_least_squares(X, Y, b);
    const Eigen::VectorXd fitted = calibrator.fit(0.0).parameters();
    CHECK((fitted - expected).norm() < 1e-8 * expected.norm());
  }
}

TEST_CASE("with white inputs the calibrated fit is the Frobenius projection") {
  const Index m = 24, n = 16, b = 8;
  const Eigen::MatrixXd W = test::gaussian(m, n, 4);
  // The columns of an orthogonal matrix are white: sum_s x_s x_s^T = I.
  const Eigen::MatrixXd Q = Eigen::HouseholderQR<Eigen::MatrixXd>(test::gaussian(n, n, 5)).householderQ();
  const BlockCirculant<double> calibrated = project_calibrated(W, Q, b, 0.0);
  const Eigen::VectorXd frobenius = project_frobenius(W, b).parameters();
  CHECK((calibrated.parameters() - frobenius).norm() < 1e-10 * frobenius.norm());
}

TEST_CASE("a block-circulant matrix is recovered exactly from enough samples") {
  const Index m = 20, n = 30, b = 5;
  const Eigen::VectorXd params = test::gaussian_vector(m * n / b, 6);
  const Eigen::MatrixXd W = test::dense_block_circulant(m, n, b, params);
  const BlockCirculant<double> fitted = project_calibrated(W, correlated_inputs(n, 40, 7), b, 0.0);
  CHECK((fitted.parameters() - params).norm() < 1e-9 * params.norm());
}

TEST_CASE("on held-out samples the calibrated fit beats the Frobenius projection (ratio in the message)") {
  const Index m = 64, n = 96, b = 8;
  const Eigen::MatrixXd W = test::gaussian(m, n, 8);
  const Eigen::MatrixXd train = correlated_inputs(n, 500, 9), held_out = correlated_inputs(n, 500, 10);
  const BlockCirculant<double> calibrated = project_calibrated(W, train, b, 1e-3);
  const BlockCirculant<double> frobenius = project_frobenius(W, b);
  const double calibrated_error = output_error(calibrated, W, held_out);
  const double frobenius_error = output_error(frobenius, W, held_out);
  MESSAGE("held-out output error, calibrated / Frobenius = ", calibrated_error / frobenius_error);
  CHECK(calibrated_error < 0.8 * frobenius_error);
}

TEST_CASE("batching and merging do not change the statistics or the fit") {
  const Index m = 16, n = 24, b = 4;
  const Eigen::MatrixXd X = correlated_inputs(n, 90, 11);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 12) * X;
  Calibrator<double> one(m, n, b), many(m, n, b), left(m, n, b), right(m, n, b);
  one.accumulate(X, Y);
  for (Index start = 0; start < 90; start += 13) {
    const Index count = std::min<Index>(13, 90 - start);
    many.accumulate(X.middleCols(start, count), Y.middleCols(start, count));
  }
  left.accumulate(X.leftCols(40), Y.leftCols(40));
  right.accumulate(X.rightCols(50), Y.rightCols(50));
  left.merge(right);
  CHECK(one.samples() == 90);
  CHECK(many.samples() == 90);
  CHECK(left.samples() == 90);
  const Eigen::VectorXd reference = one.fit(1e-4).parameters();
  CHECK((many.fit(1e-4).parameters() - reference).norm() < 1e-11 * reference.norm());
  CHECK((left.fit(1e-4).parameters() - reference).norm() < 1e-11 * reference.norm());
  one.reset();
  CHECK(one.samples() == 0);
  CHECK_THROWS_AS(one.fit(), invalid_argument);
  CHECK_THROWS_AS(one.merge(Calibrator<double>(m, n, 8)), invalid_argument);
}

TEST_CASE("loss() from the statistics equals the directly measured squared error") {
  const Index m = 12, n = 18, b = 6;
  const Eigen::MatrixXd X = correlated_inputs(n, 70, 13);
  const Eigen::MatrixXd W = test::gaussian(m, n, 14);
  const Eigen::MatrixXd Y = W * X;
  Calibrator<double> calibrator(m, n, b);
  calibrator.accumulate(X, Y);
  const BlockCirculant<double> calibrated = calibrator.fit(1e-3), frobenius = project_frobenius(W, b);
  const double direct_calibrated = std::pow(output_error(calibrated, W, X), 2);
  const double direct_frobenius = std::pow(output_error(frobenius, W, X), 2);
  CHECK(calibrator.loss(calibrated) == doctest::Approx(direct_calibrated).epsilon(1e-9));
  CHECK(calibrator.loss(frobenius) == doctest::Approx(direct_frobenius).epsilon(1e-9));
  CHECK(calibrator.target_energy() == doctest::Approx(Y.squaredNorm()).epsilon(1e-9));
  CHECK(calibrator.loss(calibrated) < calibrator.loss(frobenius));
}

TEST_CASE("float calibrator accumulates in double and matches the double fit") {
  const Index m = 32, n = 32, b = 8;
  const Eigen::MatrixXd X = correlated_inputs(n, 100, 15);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 16) * X;
  Calibrator<float> single(m, n, b);
  Calibrator<double> twin(m, n, b);
  single.accumulate(X.cast<float>(), Y.cast<float>());
  twin.accumulate(X.cast<float>().cast<double>(), Y.cast<float>().cast<double>());
  const Eigen::VectorXd reference = twin.fit(1e-3).parameters();
  CHECK((single.fit(1e-3).parameters().cast<double>() - reference).norm() < 1e-6 * reference.norm());
}

TEST_CASE("degenerate calibration data") {
  const Index m = 16, n = 32, b = 4;  // q = 8 unknowns per bin and block row
  const Eigen::MatrixXd W = test::gaussian(m, n, 17);

  SUBCASE("fewer samples than unknowns: an error without damping, a finite fit with it") {
    const Eigen::MatrixXd X = correlated_inputs(n, 3, 18);
    Calibrator<double> calibrator(m, n, b);
    calibrator.accumulate(X, W * X);
    try {
      (void)calibrator.fit(0.0);
      FAIL("expected a numerical_error");
    } catch (const numerical_error& e) {
      CHECK(std::string(e.what()).find("is singular (3 samples for 8 block columns") != std::string::npos);
    }
    const BlockCirculant<double> damped = calibrator.fit(1e-2);
    CHECK(damped.parameters().allFinite());
    CHECK(calibrator.loss(damped) < calibrator.target_energy());
  }
  SUBCASE("all-zero inputs give the zero matrix, never NaNs") {
    Calibrator<double> calibrator(m, n, b);
    calibrator.accumulate(Eigen::MatrixXd::Zero(n, 10), test::gaussian(m, 10, 19));
    const BlockCirculant<double> fitted = calibrator.fit(1e-2);
    CHECK(fitted.parameters().isZero(0.0));
  }
  SUBCASE("non-finite data is rejected with the batch named") {
    Calibrator<double> calibrator(m, n, b);
    calibrator.accumulate(correlated_inputs(n, 5, 20), test::gaussian(m, 5, 21));
    Eigen::MatrixXd X = correlated_inputs(n, 5, 22);
    X(7, 3) = std::numeric_limits<double>::quiet_NaN();
    try {
      calibrator.accumulate(X, test::gaussian(m, 5, 23));
      FAIL("expected an invalid_argument");
    } catch (const invalid_argument& e) {
      CHECK(std::string(e.what()) == "calibration batch 1 has a non-finite input value nan at row 7, sample 3");
    }
    Eigen::MatrixXd Y = test::gaussian(m, 5, 24);
    Y(2, 0) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH_AS(calibrator.accumulate(correlated_inputs(n, 5, 25), Y),
                         "calibration batch 1 has a non-finite target value inf at row 2, sample 0", invalid_argument);
    CHECK(calibrator.samples() == 5);  // rejected batches leave the statistics untouched
  }
  SUBCASE("shape and argument errors") {
    Calibrator<double> calibrator(m, n, b);
    CHECK_THROWS_WITH_AS(calibrator.accumulate(Eigen::MatrixXd::Zero(n + 1, 2), Eigen::MatrixXd::Zero(m, 2)),
                         "calibration inputs have 33 rows, expected 32", invalid_argument);
    CHECK_THROWS_WITH_AS(calibrator.accumulate(Eigen::MatrixXd::Zero(n, 2), Eigen::MatrixXd::Zero(m - 1, 2)),
                         "calibration targets have 15 rows, expected 16", invalid_argument);
    CHECK_THROWS_WITH_AS(calibrator.accumulate(Eigen::MatrixXd::Zero(n, 2), Eigen::MatrixXd::Zero(m, 3)),
                         "calibration batch 0 has 2 inputs but 3 targets", invalid_argument);
    calibrator.accumulate(correlated_inputs(n, 50, 26), test::gaussian(m, 50, 27));
    CHECK_THROWS_AS(calibrator.fit(-1.0), invalid_argument);
    CHECK_THROWS_AS(calibrator.fit(std::numeric_limits<double>::quiet_NaN()), invalid_argument);
    CHECK_THROWS_AS(Calibrator<double>(16, 30, 4), invalid_argument);
    CHECK_THROWS_AS(calibrator.loss(project_frobenius(Eigen::MatrixXd::Zero(m, n), 8)), invalid_argument);
  }
}

// Whether a sanitizer's allocator replaces malloc (GCC defines __SANITIZE_*__, clang __has_feature).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FFTMAT_TEST_SANITIZED_ALLOCATOR 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define FFTMAT_TEST_SANITIZED_ALLOCATOR 1
#endif
#endif
#ifndef FFTMAT_TEST_SANITIZED_ALLOCATOR
#define FFTMAT_TEST_SANITIZED_ALLOCATOR 0
#endif

TEST_CASE("calibrator: huge shapes are refused with their sizes, not a bare bad_alloc") {
  // q = 2^30 block columns of b = 2: the Gram matrices need 2 x 2^60 x 16 bytes, past an Index.
  CHECK_THROWS_WITH_AS(Calibrator<double>(2, 1LL << 31, 2),
                       "Calibrator: Gram matrices' bytes, bins x q x q x 16: 2 x 1073741824 x 1073741824 x 16 "
                       "exceeds 9223372036854775807",
                       invalid_argument);
  // q = 2^26: 2 x 2^52 x 16 bytes fit an Index, but no machine allocates them. (Address- and
  // ThreadSanitizer abort on such a request instead of throwing std::bad_alloc unless
  // allocator_may_return_null=1.)
#if !FFTMAT_TEST_SANITIZED_ALLOCATOR
  try {
    Calibrator<double> calibrator(2, 1LL << 27, 2);
    FAIL("expected an out-of-memory error");
  } catch (const fftmat::error& e) {
    CHECK(std::string(e.what()) ==
          "Calibrator for a 2x134217728 matrix with block size 2 needs 144115188075855872 + 2147483648 bytes of "
          "statistics (2 bins of 67108864x67108864 and 1x67108864 complex doubles): out of memory");
  }
#endif
}

TEST_CASE("calibrator: an empty batch adds nothing, as apply of T = 0 does nothing") {
  Calibrator<double> calibrator(8, 8, 4);
  calibrator.accumulate(Eigen::MatrixXd::Zero(8, 0), Eigen::MatrixXd::Zero(8, 0));
  CHECK(calibrator.samples() == 0);
}
