#include <doctest/doctest.h>
#include <fftmat/fftmat.hpp>

#include <limits>
#include <string>
#include <type_traits>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

// Runs `action`, expecting an exception of type E whose message contains `needle`.
template <class E, class Action>
void check_error(Action&& action, const std::string& needle) {
  static_assert(std::is_base_of_v<error, E>, "every exception fftmat throws derives from fftmat::error");
  try {
    action();
    FAIL("expected an exception mentioning '", needle, "'");
  } catch (const E& e) {
    CAPTURE(e.what());
    CHECK(std::string(e.what()).find(needle) != std::string::npos);
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

TEST_CASE_TEMPLATE("T = 0 is an empty product for apply, apply_transpose and apply_transformed", Scalar, float,
                   double) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  const BlockCirculant<Scalar> A(8, 12, 4, test::gaussian_vector(24, 1).cast<Scalar>());
  CHECK(A.apply(Matrix::Zero(12, 0)).rows() == 8);
  CHECK(A.apply(Matrix::Zero(12, 0)).cols() == 0);
  CHECK(A.apply_transpose(Matrix::Zero(8, 0)).rows() == 12);
  InputSpectrum<Scalar> spectrum;
  A.transform_input(Matrix::Zero(12, 0), spectrum);
  Matrix Y(8, 0);
  A.apply_transformed(spectrum, Y);
  check_error<invalid_argument>([&] { A.apply(Matrix::Zero(11, 0)); }, "input has 11 rows, expected 12");
}

TEST_CASE("sizes whose products overflow are refused before anything is allocated, naming the sizes") {
  // p = q = 2^32 blocks of 2^30: p*q*b wraps to 0 in 64 bits.
  check_error<invalid_argument>(
      [] { BlockCirculant<float>(1LL << 62, 1LL << 62, 1LL << 30, Eigen::VectorXf(0)); },
      "block count p x q of the FFTW batch: 4294967296 x 4294967296 exceeds 2147483647");
  // p*q = 2^31 does not fit FFTW's int batch count.
  check_error<invalid_argument>([] { BlockCirculant<double>(1LL << 32, 2, 2, Eigen::VectorXd(0)); },
                                "2147483648 x 1 exceeds 2147483647");
  check_error<invalid_argument>([] { BlockCirculant<double>(1LL << 32, 2, 1, Eigen::VectorXd(0)); },
                                "4294967296 x 2 exceeds 2147483647");
  // One block of 2^31 positions is more than FFTW's int transform size. detail::BlockFft is tested
  // directly: BlockCirculant::validate_shape refuses these shapes before a BlockFft is made, so
  // only here can its own guards of FFTW's int sizes be reached.
  check_error<invalid_argument>([] { detail::BlockFft<float>(1LL << 40, 1LL << 31); },
                                "BlockFft: block size: 2147483648 exceeds 2147483647");
  check_error<invalid_argument>([] { detail::BlockFft<float>(1LL << 40, 2); },
                                "BlockFft: block count: 549755813888 exceeds 2147483647");
  check_error<invalid_argument>([] { detail::BlockFft<double>(std::numeric_limits<Index>::max(), 1LL << 30); },
                                "BlockFft: block count: 8589934592 exceeds");
}
