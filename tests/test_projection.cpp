#include <doctest/doctest.h>
#include <fftmat/projection.hpp>

#include <cmath>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

using test::wrapped_diagonal_averages;

// <A, B> = trace(A^T B)
double inner(const Eigen::MatrixXd& A, const Eigen::MatrixXd& B) { return (A.array() * B.array()).sum(); }

}  // namespace

TEST_CASE("Frobenius projection averages wrapped diagonals (row- and column-major, float and double)") {
  for (const auto& shape : std::vector<std::array<Index, 3>>{{8, 8, 1}, {12, 8, 4}, {9, 15, 3}, {16, 16, 16}, {30, 20, 5}}) {
    const Index m = shape[0], n = shape[1], b = shape[2];
    CAPTURE(m);
    CAPTURE(n);
    CAPTURE(b);
    const Eigen::MatrixXd W = test::gaussian(m, n, unsigned(m * n));
    const Eigen::VectorXd expected = wrapped_diagonal_averages(W, b);
    CHECK((project_frobenius(W, b).parameters() - expected).norm() < 1e-13 * expected.norm());
    const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wr = W;
    CHECK((project_frobenius(Wr, b).parameters() - expected).norm() < 1e-13 * expected.norm());
    const Eigen::MatrixXf Wf = W.cast<float>();
    const Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wfr = Wf;
    CHECK((project_frobenius(Wf, b).parameters().cast<double>() - expected).norm() < 1e-6 * expected.norm());
    CHECK((project_frobenius(Wfr, b).parameters().cast<double>() - expected).norm() < 1e-6 * expected.norm());
    // 16-bit weights as stored in checkpoints project to float.
    const Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> Wh = Wf.cast<Eigen::half>();
    const BlockCirculant<float> from_half = project_frobenius(Wh, b);
    CHECK((from_half.parameters().cast<double>() - expected).norm() < 2e-3 * expected.norm());
    // Expressions are evaluated first.
    CHECK((project_frobenius(2.0 * W, b).parameters() - 2.0 * expected).norm() < 1e-13 * expected.norm());
  }
}

TEST_CASE("Frobenius projection with explicit zero padding projects the zero-padded matrix") {
  const Eigen::MatrixXd W = test::gaussian(10, 7, 3);
  const BlockCirculant<double> A = project_frobenius(W, 4, Padding::zero);
  CHECK(A.padding() == Padding::zero);
  CHECK((A.parameters() - wrapped_diagonal_averages(W, 4)).norm() < 1e-13);
}

TEST_CASE("Frobenius projection is idempotent on block-circulant matrices") {
  const Index m = 24, n = 36, b = 6;
  const Eigen::VectorXd params = test::gaussian_vector(m * n / b, 5);
  const Eigen::MatrixXd A = test::dense_block_circulant(m, n, b, params);
  CHECK((project_frobenius(A, b).parameters() - params).norm() < 1e-13 * params.norm());
}

TEST_CASE("Frobenius residual is orthogonal to every block-circulant direction") {
  const Index m = 20, n = 30, b = 5;
  const Eigen::MatrixXd W = test::gaussian(m, n, 7);
  const Eigen::MatrixXd residual = W - test::dense_block_circulant(m, n, b, project_frobenius(W, b).parameters());
  // The basis directions (one parameter set to 1) span the subspace; check each of them.
  for (Index k = 0; k < m * n / b; ++k) {
    Eigen::VectorXd unit = Eigen::VectorXd::Zero(m * n / b);
    unit[k] = 1;
    CHECK(std::abs(inner(residual, test::dense_block_circulant(m, n, b, unit))) < 1e-12);
  }
}

TEST_CASE("on Gaussian matrices the projection keeps about 1/b of the energy") {
  // E||W - P(W)||^2 / E||W||^2 = 1 - 1/b: the subspace has dimension mn/b out of mn.
  const Index m = 512, n = 768;
  const Eigen::MatrixXd W = test::gaussian(m, n, 9);
  for (const Index b : {2, 8, 64}) {
    const Eigen::MatrixXd projected = test::dense_block_circulant(m, n, b, project_frobenius(W, b).parameters());
    const double ratio = (W - projected).norm() / W.norm();
    CAPTURE(b);
    CHECK(ratio == doctest::Approx(std::sqrt(1.0 - 1.0 / double(b))).epsilon(0.01));
  }
}
