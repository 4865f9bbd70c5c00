#include <doctest/doctest.h>
#include <fftmat/circulant.hpp>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

TEST_CASE("first-column convention pinned by a hand-written 3x3 circulant") {
  // C(r, k) = c[(r - k) mod 3] for c = (1, 2, 3): the first column is c, each column shifts down.
  Eigen::VectorXd c(3);
  c << 1, 2, 3;
  Eigen::Matrix3d expected;
  expected << 1, 3, 2,
              2, 1, 3,
              3, 2, 1;
  const Circulant<double> C(c);
  CHECK(C.size() == 3);
  CHECK(C.to_dense().isApprox(expected, 0.0));
  const Eigen::Vector3d x(1, 10, 100);
  const Eigen::MatrixXd y = C.apply(x);
  CHECK(y(0, 0) == doctest::Approx(1 * 1 + 3 * 10 + 2 * 100));
  CHECK(y(1, 0) == doctest::Approx(2 * 1 + 1 * 10 + 3 * 100));
  CHECK(y(2, 0) == doctest::Approx(3 * 1 + 2 * 10 + 1 * 100));
  const Eigen::MatrixXd yt = C.apply_transpose(x);
  CHECK(yt(0, 0) == doctest::Approx(1 * 1 + 2 * 10 + 3 * 100));  // C^T's first row is C's first column
}

TEST_CASE_TEMPLATE("circulant apply and apply_transpose match the dense definition", Scalar, float, double) {
  using Matrix = typename Circulant<Scalar>::Matrix;
  for (const Index n : {1, 2, 3, 7, 16, 31, 64, 100}) {
    for (const Index T : {1, 5}) {
      CAPTURE(n);
      CAPTURE(T);
      const Eigen::VectorXd c = test::gaussian_vector(n, 11 + unsigned(n));
      const Eigen::MatrixXd dense = test::dense_block_circulant(n, n, n, c);
      const Circulant<Scalar> C(c.cast<Scalar>());
      const Eigen::MatrixXd X = test::gaussian(n, T, 7);
      const Matrix Xs = X.cast<Scalar>();
      CHECK(test::relative_error(C.apply(Xs).template cast<double>(), dense * X) < test::tolerance<Scalar>());
      CHECK(test::relative_error(C.apply_transpose(Xs).template cast<double>(), dense.transpose() * X) <
            test::tolerance<Scalar>());
      CHECK(test::relative_error(C.to_dense().template cast<double>(), dense) < test::tolerance<Scalar>());
      CHECK(C.first_column().template cast<double>().isApprox(c, test::tolerance<Scalar>()));
    }
  }
}
