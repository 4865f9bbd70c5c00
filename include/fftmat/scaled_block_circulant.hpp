#pragma once
// A block-circulant matrix between two per-channel scalings, A = diag(s_out) C diag(s_in), and its
// fit to activations by alternating least squares (docs/calibration.md, "Scaled block-circulant fit").
//
// The scalings cost m + n parameters and O(m + n) work per token on top of C. They let the fit
// reweight channels that a circulant block must otherwise treat alike: one outlier input channel
// of large energy no longer dictates the wrapped diagonals its block shares with the others.

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <vector>

#include "block_circulant.hpp"
#include "calibrator.hpp"
#include "error.hpp"

namespace fftmat {

template <class Scalar>
class ScaledBlockCirculant {
 public:
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  using Vector = typename BlockCirculant<Scalar>::Vector;
  using ConstMatrixRef = typename BlockCirculant<Scalar>::ConstMatrixRef;
  using MatrixRef = typename BlockCirculant<Scalar>::MatrixRef;

  /// diag(output_scale) * core * diag(input_scale). Throws fftmat::invalid_argument if the scales'
  /// lengths are not core.cols() and core.rows(), or if a scale is not finite.
  ScaledBlockCirculant(BlockCirculant<Scalar> core, Vector input_scale, Vector output_scale)
      : core_(std::move(core)), input_scale_(std::move(input_scale)), output_scale_(std::move(output_scale)) {
    detail::require(input_scale_.size() == core_.cols(), "input scale has ", input_scale_.size(),
                    " entries for a matrix with ", core_.cols(), " columns");
    detail::require(output_scale_.size() == core_.rows(), "output scale has ", output_scale_.size(),
                    " entries for a matrix with ", core_.rows(), " rows");
    require_finite(input_scale_, "input");
    require_finite(output_scale_, "output");
  }

  Index rows() const noexcept { return core_.rows(); }
  Index cols() const noexcept { return core_.cols(); }
  Index block_size() const noexcept { return core_.block_size(); }
  const BlockCirculant<Scalar>& core() const noexcept { return core_; }
  const Vector& input_scale() const noexcept { return input_scale_; }
  const Vector& output_scale() const noexcept { return output_scale_; }
  /// The core's p*q*b first columns plus the m + n scales.
  Index parameter_count() const noexcept { return core_.parameter_count() + rows() + cols(); }

  /// Y = A X for X (cols() x T); Y must be rows() x T. Scales a copy of X (one n x T temporary).
  void apply(const ConstMatrixRef& X, MatrixRef Y) const {
    detail::require(X.rows() == cols(), "input has ", X.rows(), " rows, expected ", cols());
    const Matrix scaled = input_scale_.asDiagonal() * X;
    core_.apply(scaled, Y);
    Y.array().colwise() *= output_scale_.array();
  }
  Matrix apply(const ConstMatrixRef& X) const {
    Matrix Y(rows(), X.cols());
    apply(X, Y);
    return Y;
  }

  Matrix to_dense() const { return output_scale_.asDiagonal() * core_.to_dense() * input_scale_.asDiagonal(); }

 private:
  static void require_finite(const Vector& scale, const char* which) {
    for (Index k = 0; k < scale.size(); ++k)
      detail::require(std::isfinite(scale[k]), which, " scale ", k, " is not finite: ", scale[k]);
  }

  BlockCirculant<Scalar> core_;
  Vector input_scale_, output_scale_;
};

struct ScaledFitOptions {
  /// Rounds of (input scale, output scale, core). 0 returns the initial fit: the calibrated core
  /// on inputs divided by their per-channel RMS, output scale 1.
  int iterations = 8;
  /// The core's relative ridge (Calibrator::fit), and the weight of the proximal term that keeps
  /// each scale step near the previous scales: lambda = damping * trace(H) / n for the normal matrix H.
  double damping = 1e-2;
  /// false keeps s_out = 1: then every core step is the exact calibrated fit (see fit_scaled).
  bool fit_output_scale = true;
};

template <class Scalar>
struct ScaledFit {
  ScaledBlockCirculant<Scalar> matrix;
  /// sum_s ||y_s - A x_s||^2 on the fitting data after the initial fit and after every step (input
  /// scale, output scale if fitted, core): non-increasing.
  std::vector<double> loss;
  /// Core steps not taken because no step along the reweighted fit lowered the loss.
  int rejected_core_steps = 0;
  double target_energy = 0;  ///< sum_s ||y_s||^2: loss / target_energy is the relative squared error
};

namespace detail {

/// Throws invalid_argument naming the fit `function` and the first non-finite entry of the samples `values`.
template <class Matrix>
void require_all_finite(const Matrix& values, const char* function, const char* what) {
  if (values.allFinite()) return;
  for (Eigen::Index s = 0; s < values.cols(); ++s)
    for (Eigen::Index k = 0; k < values.rows(); ++k)
      require(std::isfinite(values(k, s)), function, ": ", what, " ", k, " of sample ", s, " is not finite: ",
              values(k, s));
}

/// sum_s ||y_s - M x_s||^2 from G = sum x x^T, R = sum y x^T and E = sum ||y||^2.
inline double quadratic_loss(const Eigen::MatrixXd& M, const Eigen::MatrixXd& gram, const Eigen::MatrixXd& cross,
                             double energy) {
  return std::max(0.0, energy - 2.0 * M.cwiseProduct(cross).sum() + (M * gram).cwiseProduct(M).sum());
}

/// Solves (H + lambda I) s = g + lambda s_previous with lambda = damping * trace(H) / n (a
/// proximal least-squares step: its loss is never above that of s_previous).
inline Eigen::VectorXd proximal_solve(Eigen::MatrixXd H, const Eigen::VectorXd& g, const Eigen::VectorXd& previous,
                                      double damping, const char* what) {
  const double lambda = damping * H.trace() / double(H.rows());
  H.diagonal().array() += lambda;
  const Eigen::LLT<Eigen::MatrixXd> cholesky(H);
  if (cholesky.info() != Eigen::Success || !(cholesky.rcond() > 1e-12))
    throw numerical_error(concat("the ", what, " scale's normal matrix is singular; use a damping > 0 (got ",
                                 damping, ")"));
  return cholesky.solve(g + lambda * previous);
}

}  // namespace detail

/// Fits A = diag(s_out) C diag(s_in) to minimise sum_s ||y_s - A x_s||^2 over inputs X (n x T) and
/// targets Y (m x T) by alternating minimisation (docs/calibration.md):
///   s_in:  exact least squares with normal matrix (M^T M) o G, M = diag(s_out) C, G = X X^T;
///   s_out: exact least squares per row;
///   C:     the calibrated fit on inputs diag(s_in) X against targets diag(s_out)^-1 Y, which
///          minimises the loss reweighted by s_out^-2 per row (exact when s_out = 1), taken as a
///          direction: the step along it minimises the true loss exactly over [0, 1].
/// Throws fftmat::invalid_argument for mismatched shapes or bad options, fftmat::numerical_error
/// where the Calibrator would (singular Gram matrices with too little damping).
template <class Scalar>
ScaledFit<Scalar> fit_scaled(const typename BlockCirculant<Scalar>::ConstMatrixRef& X,
                             const typename BlockCirculant<Scalar>::ConstMatrixRef& Y, Eigen::Index block_size,
                             const ScaledFitOptions& options = {}) {
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  using Vector = typename BlockCirculant<Scalar>::Vector;
  detail::require(X.cols() == Y.cols(), "fit_scaled: ", X.cols(), " inputs but ", Y.cols(), " targets");
  detail::require(X.cols() > 0, "fit_scaled: no samples");
  detail::require(options.iterations >= 0, "fit_scaled: iterations must be >= 0, got ", options.iterations);
  detail::require(std::isfinite(options.damping) && options.damping >= 0,
                  "damping must be finite and >= 0, got ", options.damping);
  const Index m = Y.rows(), n = X.rows();
  BlockCirculant<Scalar>::validate_shape(m, n, block_size);
  detail::require_all_finite(X, "fit_scaled", "input");
  detail::require_all_finite(Y, "fit_scaled", "target");

  // The statistics every scale step and every loss needs, in double.
  const Eigen::MatrixXd Xd = X.template cast<double>(), Yd = Y.template cast<double>();
  const Eigen::MatrixXd gram = Xd * Xd.transpose(), cross = Yd * Xd.transpose();
  const double energy = Yd.squaredNorm();

  const auto fit_core = [&](const Eigen::VectorXd& s_in, const Eigen::VectorXd& s_out) {
    Calibrator<Scalar> calibrator(m, n, block_size);
    const Matrix inputs = s_in.cast<Scalar>().asDiagonal() * X;
    const Matrix targets = s_out.cwiseInverse().cast<Scalar>().asDiagonal() * Y;
    calibrator.accumulate(inputs, targets);
    return calibrator.fit(options.damping);
  };
  const auto dense = [](const BlockCirculant<Scalar>& C) -> Eigen::MatrixXd { return C.to_dense().template cast<double>(); };
  const auto loss_of = [&](const Eigen::MatrixXd& C, const Eigen::VectorXd& s_in, const Eigen::VectorXd& s_out) {
    return detail::quadratic_loss(s_out.asDiagonal() * C * s_in.asDiagonal(), gram, cross, energy);
  };

  // Start: inputs normalised to unit RMS per channel (channels without energy keep scale 1).
  Eigen::VectorXd s_in(n), s_out = Eigen::VectorXd::Ones(m);
  for (Index k = 0; k < n; ++k) {
    const double rms = std::sqrt(gram(k, k) / double(X.cols()));
    s_in[k] = rms > 0 ? 1.0 / rms : 1.0;
  }
  BlockCirculant<Scalar> core = fit_core(s_in, s_out);
  Eigen::MatrixXd C = dense(core);
  std::vector<double> history{loss_of(C, s_in, s_out)};
  int rejected = 0;

  for (int round = 0; round < options.iterations; ++round) {
    {  // s_in: y - M diag(x) s  is linear in s; sum_s diag(x) M^T M diag(x) = (M^T M) o G.
      const Eigen::MatrixXd M = s_out.asDiagonal() * C;
      const Eigen::MatrixXd normal = (M.transpose() * M).cwiseProduct(gram);
      const Eigen::VectorXd rhs = (M.transpose() * cross).diagonal();
      s_in = detail::proximal_solve(normal, rhs, s_in, options.damping, "input");
      history.push_back(loss_of(C, s_in, s_out));
    }
    if (options.fit_output_scale) {  // s_out: row i is a 1-d least squares on z_i = (C diag(s_in) x)_i.
      const Eigen::MatrixXd N = C * s_in.asDiagonal();
      const Eigen::VectorXd numerator = cross.cwiseProduct(N).rowwise().sum();
      const Eigen::VectorXd denominator = (N * gram).cwiseProduct(N).rowwise().sum();
      const double lambda = options.damping * denominator.mean();
      for (Index i = 0; i < m; ++i) {
        const double d = denominator[i] + lambda;
        if (d > 0) s_out[i] = (numerator[i] + lambda * s_out[i]) / d;
      }
      // A zero scale would make the next core step's reweighting infinite; its row is then
      // unused, so keep it at a tiny fraction of the others' size.
      const double floor = 1e-6 * s_out.cwiseAbs().maxCoeff();
      for (Index i = 0; i < m; ++i)
        if (std::abs(s_out[i]) < floor) s_out[i] = s_out[i] < 0 ? -floor : floor;
      history.push_back(loss_of(C, s_in, s_out));
    }
    {  // C: the reweighted fit (exact for s_out = 1) gives a direction; the step along it is the
       // exact minimiser of the true loss on [0, 1] (a quadratic in the step length t).
      const BlockCirculant<Scalar> candidate = fit_core(s_in, s_out);
      const Eigen::MatrixXd step = s_out.asDiagonal() * (dense(candidate) - C) * s_in.asDiagonal();
      const Eigen::MatrixXd residual_gradient = s_out.asDiagonal() * C * s_in.asDiagonal() * gram - cross;
      const double slope = step.cwiseProduct(residual_gradient).sum(), curvature = (step * gram).cwiseProduct(step).sum();
      const double t = curvature > 0 ? std::clamp(-slope / curvature, 0.0, 1.0) : 0.0;
      if (t > 0) {
        const Vector parameters = core.parameters() + Scalar(t) * (candidate.parameters() - core.parameters());
        core = BlockCirculant<Scalar>(m, n, block_size, parameters);
        C = dense(core);
      } else {
        ++rejected;
      }
      history.push_back(loss_of(C, s_in, s_out));
    }
  }
  ScaledBlockCirculant<Scalar> matrix(std::move(core), s_in.cast<Scalar>(), s_out.cast<Scalar>());
  return ScaledFit<Scalar>{std::move(matrix), std::move(history), rejected, energy};
}

}  // namespace fftmat
