#include <doctest/doctest.h>
#include <fftmat/scaled_block_circulant.hpp>

#include <Eigen/Dense>

#include <string>

#include "reference.hpp"

using namespace fftmat;
using test::Index;

namespace {

// A(row, col) = s_out[row] * c_ij[(r - k) mod b] * s_in[col], element by element.
Eigen::MatrixXd dense_scaled(Index m, Index n, Index b, const Eigen::VectorXd& params, const Eigen::VectorXd& s_in,
                             const Eigen::VectorXd& s_out) {
  const Eigen::MatrixXd C = test::dense_block_circulant(m, n, b, params);
  Eigen::MatrixXd A(m, n);
  for (Index row = 0; row < m; ++row)
    for (Index col = 0; col < n; ++col) A(row, col) = s_out[row] * C(row, col) * s_in[col];
  return A;
}

// Inputs whose channels differ in scale by two orders of magnitude, as LLM activations do.
Eigen::MatrixXd uneven_inputs(Index n, Index T, unsigned seed) {
  Eigen::MatrixXd X = test::gaussian(n, n, 77) * test::gaussian(n, T, seed) / std::sqrt(double(n));
  const Eigen::VectorXd spread = test::gaussian_vector(n, 78);
  for (Index k = 0; k < n; ++k) X.row(k) *= std::exp(1.5 * spread[k]);
  return X;
}

double squared_error(const Eigen::MatrixXd& A, const Eigen::MatrixXd& X, const Eigen::MatrixXd& Y) {
  return (Y - A * X).squaredNorm();
}

Eigen::MatrixXd dense_of(const ScaledBlockCirculant<double>& A) {
  return dense_scaled(A.rows(), A.cols(), A.block_size(), A.core().parameters(), A.input_scale(), A.output_scale());
}

}  // namespace

TEST_CASE("scaled block-circulant product equals diag(s_out) C diag(s_in) built element by element") {
  for (const auto& [m, n, b] : std::vector<std::tuple<Index, Index, Index>>{{12, 8, 4}, {8, 24, 8}, {10, 10, 5}}) {
    const Index P = (m / b) * (n / b) * b;
    const Eigen::VectorXd params = test::gaussian_vector(P, 1), s_in = test::gaussian_vector(n, 2),
                          s_out = test::gaussian_vector(m, 3);
    const Eigen::MatrixXd expected = dense_scaled(m, n, b, params, s_in, s_out);
    const ScaledBlockCirculant<double> A(BlockCirculant<double>(m, n, b, params), s_in, s_out);
    const Eigen::MatrixXd X = test::gaussian(n, 7, 4);
    CHECK(test::relative_error(A.apply(X), expected * X) < test::tolerance<double>());
    CHECK(test::relative_error(A.to_dense(), expected) < test::tolerance<double>());
    CHECK(A.parameter_count() == P + m + n);
    const ScaledBlockCirculant<float> Af(BlockCirculant<float>(m, n, b, params.cast<float>()), s_in.cast<float>(),
                                         s_out.cast<float>());
    CHECK(test::relative_error(Af.apply(X.cast<float>()).cast<double>(), expected * X) < test::tolerance<float>());
  }
}

TEST_CASE("fit_scaled: the loss never increases and is the measured squared error of the result") {
  const Index m = 16, n = 24, b = 4, T = 400;
  const Eigen::MatrixXd X = uneven_inputs(n, T, 5);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 6) * X;
  for (const bool output_scale : {false, true}) {
    CAPTURE(output_scale);
    ScaledFitOptions options;
    options.iterations = 6;
    options.fit_output_scale = output_scale;
    const ScaledFit<double> fit = fit_scaled<double>(X, Y, b, options);
    REQUIRE(fit.loss.size() == std::size_t(1 + options.iterations * (output_scale ? 3 : 2)));
    for (std::size_t k = 1; k < fit.loss.size(); ++k) {
      CAPTURE(k);
      CHECK(fit.loss[k] <= fit.loss[k - 1] * (1 + 1e-12));
    }
    CHECK(fit.loss.back() < 0.95 * fit.loss.front());  // the rounds do something
    const double measured = squared_error(dense_of(fit.matrix), X, Y);
    CHECK(std::abs(fit.loss.back() - measured) < 1e-9 * fit.target_energy);
    CHECK(std::abs(fit.target_energy - Y.squaredNorm()) < 1e-12 * Y.squaredNorm());
  }
}

TEST_CASE("fit_scaled: the scale steps are the exact least-squares solutions (brute force over the scales)") {
  const Index m = 8, n = 12, b = 4, T = 200;
  const Eigen::MatrixXd X = uneven_inputs(n, T, 7);
  const Eigen::MatrixXd Y = test::gaussian(m, n, 8) * X + 0.1 * test::gaussian(m, T, 9);
  ScaledFitOptions start;
  start.iterations = 0;
  start.damping = 0;
  const ScaledFit<double> initial = fit_scaled<double>(X, Y, b, start);
  const Eigen::MatrixXd C = test::dense_block_circulant(m, n, b, initial.matrix.core().parameters());

  // s_in: y_s ~ C diag(x_s) s, one design matrix per sample, stacked.
  Eigen::MatrixXd design(m * T, n);
  for (Index s = 0; s < T; ++s) design.middleRows(s * m, m) = C * X.col(s).asDiagonal();
  const Eigen::VectorXd targets = Eigen::Map<const Eigen::VectorXd>(Y.data(), m * T);
  const Eigen::VectorXd s_in = design.colPivHouseholderQr().solve(targets);
  // s_out: row i of y ~ s_i * (C diag(s_in) x)_i, one scalar per row.
  const Eigen::MatrixXd Z = C * s_in.asDiagonal() * X;
  Eigen::VectorXd s_out(m);
  for (Index i = 0; i < m; ++i) s_out[i] = Y.row(i).dot(Z.row(i)) / Z.row(i).squaredNorm();

  ScaledFitOptions one_round = start;
  one_round.iterations = 1;
  const ScaledFit<double> fit = fit_scaled<double>(X, Y, b, one_round);
  const double after_input = squared_error(C * s_in.asDiagonal(), X, Y);
  const double after_output = squared_error(s_out.asDiagonal() * C * s_in.asDiagonal(), X, Y);
  CHECK(std::abs(fit.loss[1] - after_input) < 1e-9 * fit.target_energy);
  CHECK(std::abs(fit.loss[2] - after_output) < 1e-9 * fit.target_energy);
  CHECK(after_input < 0.99 * initial.loss.front());
}

TEST_CASE("fit_scaled recovers a scaled block-circulant matrix that the plain calibrated fit cannot") {
  const Index m = 16, n = 16, b = 4, T = 300;
  const Eigen::VectorXd params = test::gaussian_vector((m / b) * (n / b) * b, 10);
  Eigen::VectorXd s_in = test::gaussian_vector(n, 11), s_out = test::gaussian_vector(m, 12);
  s_in = s_in.array().exp();
  s_out = s_out.array().exp();
  const Eigen::MatrixXd A = dense_scaled(m, n, b, params, s_in, s_out);
  const Eigen::MatrixXd X = test::gaussian(n, T, 13), Y = A * X;
  ScaledFitOptions options;
  options.iterations = 100;
  options.damping = 1e-10;
  const ScaledFit<double> fit = fit_scaled<double>(X, Y, b, options);
  const double calibrated = squared_error(project_calibrated(A, X, b, 1e-10).to_dense(), X, Y) / Y.squaredNorm();
  const double scaled = squared_error(dense_of(fit.matrix), X, Y) / Y.squaredNorm();
  INFO("relative squared error: calibrated ", calibrated, ", scaled ", scaled, "; rejected core steps ",
       fit.rejected_core_steps, ", loss after 10 rounds ", fit.loss[30] / Y.squaredNorm());
  CHECK(calibrated > 0.05);
  CHECK(scaled < 1e-3 * calibrated);
}

TEST_CASE("scaled block-circulant: bad input is refused with a message naming it") {
  const BlockCirculant<double> C(8, 4, 4, test::gaussian_vector(8, 14));
  const auto message = [](auto&& make) {
    try {
      make();
    } catch (const invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no exception");
  };
  CHECK(message([&] { ScaledBlockCirculant<double>(C, Eigen::VectorXd::Ones(5), Eigen::VectorXd::Ones(8)); }) ==
        "input scale has 5 entries for a matrix with 4 columns");
  CHECK(message([&] { ScaledBlockCirculant<double>(C, Eigen::VectorXd::Ones(4), Eigen::VectorXd::Ones(4)); }) ==
        "output scale has 4 entries for a matrix with 8 rows");
  Eigen::VectorXd nan_scale = Eigen::VectorXd::Ones(8);
  nan_scale[3] = std::nan("");
  CHECK(message([&] { ScaledBlockCirculant<double>(C, Eigen::VectorXd::Ones(4), nan_scale); }) ==
        "output scale 3 is not finite: nan");
  const Eigen::MatrixXd X = test::gaussian(4, 10, 15), Y = test::gaussian(8, 9, 16);
  CHECK(message([&] { fit_scaled<double>(X, Y, 4); }) == "fit_scaled: 10 inputs but 9 targets");
  ScaledFitOptions negative;
  negative.iterations = -1;
  CHECK(message([&] { fit_scaled<double>(X, test::gaussian(8, 10, 17), 4, negative); }) ==
        "fit_scaled: iterations must be >= 0, got -1");
  CHECK(message([&] { fit_scaled<double>(X, test::gaussian(8, 10, 17), 3); }) ==
        "block size 3 does not divide rows 8 (pass fftmat::Padding::zero to zero-pad)");
  Eigen::MatrixXd bad = X;
  bad(2, 5) = std::nan("");
  CHECK(message([&] { fit_scaled<double>(bad, test::gaussian(8, 10, 17), 4); }) ==
        "fit_scaled: input 2 of sample 5 is not finite: nan");
}
