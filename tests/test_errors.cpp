#include <doctest/doctest.h>
#include <fftmat/fftmat.hpp>

#include <limits>
#include <string>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

// Runs `action`, expecting an exception of type E whose message contains `needle`.
template <class E, class Action>
void check_error(Action&& action, const std::string& needle) {
  try {
    action();
    FAIL("expected an exception mentioning '", needle, "'");
  } catch (const E& e) {
    CAPTURE(e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
    const error* base = &e;  // every exception derives from fftmat::error
    CHECK(base != nullptr);
  }
}

}  // namespace

TEST_CASE_TEMPLATE("constructor errors name the offending values", Scalar, float, double) {
  using Vector = typename BlockCirculant<Scalar>::Vector;
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(4096, 4096, 0, Vector::Zero(1)); }, "block size must be positive, got 0");
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(4096, 4096, -3, Vector::Zero(1)); }, "got -3");
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(4096, 4096, 96, Vector::Zero(1)); },
                                "block size 96 does not divide rows 4096");
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(96, 100, 96, Vector::Zero(1)); },
                                "block size 96 does not divide cols 100");
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(0, 8, 4, Vector::Zero(1)); }, "dimensions must be positive");
  check_error<invalid_argument>([] { BlockCirculant<Scalar>(8, 8, 4, Vector::Zero(15)); },
                                "expected 16 block-circulant parameters (p*q*b = 2*2*4)");
  Vector params = Vector::Zero(16);
  params[13] = std::numeric_limits<Scalar>::quiet_NaN();
  check_error<invalid_argument>([&] { BlockCirculant<Scalar>(8, 8, 4, params); },
                                "parameter 13 (block row 1, block column 1, offset 1) is not finite");
  params[13] = std::numeric_limits<Scalar>::infinity();
  check_error<invalid_argument>([&] { BlockCirculant<Scalar>(8, 8, 4, params); }, "is not finite: inf");
  check_error<invalid_argument>([] { Circulant<Scalar>{Vector()}; }, "non-empty first column");
}

TEST_CASE_TEMPLATE("apply checks shapes before touching memory", Scalar, float, double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  const BlockCirculant<Scalar> A(8, 12, 4, test::gaussian_vector(24, 1).cast<Scalar>());
  Matrix Y(8, 3);
  check_error<invalid_argument>([&] { A.apply(Matrix::Zero(8, 3), Y); }, "input has 8 rows, expected 12");
  check_error<invalid_argument>([&] { A.apply(Matrix::Zero(12, 0)); }, "input has no columns");
  Matrix wrong(8, 4);
  check_error<invalid_argument>([&] { A.apply(Matrix::Zero(12, 3), wrong); }, "output is 8x4, expected 8x3");
  Matrix wrong_t(8, 3);
  check_error<invalid_argument>([&] { A.apply_transpose(Matrix::Zero(8, 3), wrong_t); }, "output is 8x3, expected 12x3");
  check_error<invalid_argument>([&] { A.apply_transpose(Matrix::Zero(12, 3)); }, "input has 12 rows, expected 8");
}

TEST_CASE("projection errors") {
  check_error<invalid_argument>([] { (void)project_frobenius(Eigen::MatrixXf::Zero(4096, 4096), 96); },
                                "block size 96 does not divide rows 4096");
  check_error<invalid_argument>([] { (void)project_frobenius(Eigen::MatrixXd::Zero(8, 8), 0); }, "block size must be positive");
  Eigen::MatrixXd W = Eigen::MatrixXd::Zero(8, 8);
  W(3, 5) = std::numeric_limits<double>::quiet_NaN();
  check_error<invalid_argument>([&] { (void)project_frobenius(W, 4); }, "is not finite");
}
