#pragma once
// Low-rank matrices L = U V and their activation-aware (whitened) fits: the baseline that a
// block-circulant matrix is compared with at the same parameter budget (docs/calibration.md,
// "Low-rank baseline").
//
// With S the Cholesky factor of G + lambda I (G the inputs' Gram matrix, lambda = damping *
// trace(G) / n), the rank-r matrix minimising  ||(W - L) S||_F^2  is  L = [W S]_r S^-1  ([.]_r the
// truncated SVD, Eckart-Young), the truncation-aware whitening of SVD-LLM (Wang et al., 2024); the
// one minimising  sum_s ||y_s - L x_s||^2 + lambda ||L||_F^2  for targets y_s is  [R S^-T]_r S^-1
// with R = sum_s y_s x_s^T. Statistics and fits are in double.

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/SVD>

#include <algorithm>
#include <cmath>
#include <limits>

#include "error.hpp"
#include "projection.hpp"

namespace fftmat {

/// The rank whose factors hold no more parameters than an m x n block-circulant matrix of block
/// size b: floor(m n / (b (m + n))), so r (m + n) <= m n / b. It may be 0 (b close to min(m, n)).
inline Eigen::Index rank_for_block_budget(Eigen::Index rows, Eigen::Index cols, Eigen::Index block_size) {
  detail::require(rows > 0 && cols > 0, "matrix dimensions must be positive, got ", rows, "x", cols);
  detail::require(block_size > 0, "block size must be positive, got ", block_size);
  const double r = std::floor(double(rows) * double(cols) / (double(block_size) * double(rows + cols)));
  return static_cast<Eigen::Index>(r);
}

/// An m x n matrix of rank at most r stored as its factors: L = U V, U m x r, V r x n.
template <class Scalar>
class LowRank {
  static_assert(detail::is_supported_scalar_v<Scalar>, "fftmat::LowRank<Scalar>: float or double");

 public:
  using Index = Eigen::Index;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using ConstMatrixRef = Eigen::Ref<const Matrix, 0, Eigen::OuterStride<>>;
  using MatrixRef = Eigen::Ref<Matrix, 0, Eigen::OuterStride<>>;

  /// Throws fftmat::invalid_argument unless U is m x r and V r x n with r >= 1, all finite.
  LowRank(Matrix left, Matrix right) : left_(std::move(left)), right_(std::move(right)) {
    detail::require(left_.cols() == right_.rows(), "low-rank factors do not chain: U is ", left_.rows(), "x",
                    left_.cols(), ", V is ", right_.rows(), "x", right_.cols());
    detail::require(left_.cols() >= 1 && left_.rows() >= 1 && right_.cols() >= 1,
                    "low-rank factors must be non-empty, got U ", left_.rows(), "x", left_.cols(), " and V ",
                    right_.rows(), "x", right_.cols());
    detail::require(left_.allFinite() && right_.allFinite(), "low-rank factors have a non-finite entry");
  }

  Index rows() const noexcept { return left_.rows(); }
  Index cols() const noexcept { return right_.cols(); }
  Index rank() const noexcept { return left_.cols(); }
  /// r (m + n): the stored scalars.
  Index parameter_count() const noexcept { return rank() * (rows() + cols()); }
  const Matrix& left() const noexcept { return left_; }    ///< U, m x r
  const Matrix& right() const noexcept { return right_; }  ///< V, r x n

  /// Y = U (V X) for X of cols() x T; Y must be rows() x T and must not alias X.
  void apply(const ConstMatrixRef& X, MatrixRef Y) const {
    detail::require(X.rows() == cols(), "input has ", X.rows(), " rows, expected ", cols());
    detail::require(Y.rows() == rows() && Y.cols() == X.cols(), "output is ", Y.rows(), "x", Y.cols(), ", expected ",
                    rows(), "x", X.cols());
    const Matrix inner = right_ * X;  // r x T: the skinny first product
    Y.noalias() = left_ * inner;
  }
  Matrix apply(const ConstMatrixRef& X) const {
    Matrix Y(rows(), X.cols());
    apply(X, Y);
    return Y;
  }

  Matrix to_dense() const { return left_ * right_; }

 private:
  Matrix left_, right_;
};

namespace detail {

/// Lower Cholesky factor S of G + lambda I, lambda = damping * trace(G) / n, G symmetric (lower
/// triangle read). Throws numerical_error if it is singular (as Calibrator's bins).
inline Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> damped_cholesky(const Eigen::MatrixXd& gram, double damping,
                                                                  Index samples) {
  require(std::isfinite(damping) && damping >= 0, "damping must be finite and >= 0, got ", damping);
  const Index n = gram.rows();
  Eigen::MatrixXd regularised = gram;
  regularised.diagonal().array() += damping * gram.trace() / double(n);
  Eigen::LLT<Eigen::MatrixXd, Eigen::Lower> cholesky(regularised);
  // A tiny pivot means a numerically singular Gram matrix: S^-1 would be enormous or NaN.
  if (cholesky.info() != Eigen::Success || !(cholesky.rcond() > 1e-12)) {
    throw numerical_error(concat("low-rank fit: the inputs' Gram matrix is singular (", samples, " samples for ", n,
                                 " input dimensions, or rank-deficient inputs); use a damping > 0 (got ", damping,
                                 ")"));
  }
  return cholesky;
}

/// Factors of [M]_r S^-1 for M = (target) S-whitened, m x n: U = U_r Sigma_r, V = (S^-T V_r)^T.
template <class Scalar>
LowRank<Scalar> truncate_whitened(const Eigen::MatrixXd& M, const Eigen::LLT<Eigen::MatrixXd, Eigen::Lower>& S,
                                  Index rank) {
  const Eigen::BDCSVD<Eigen::MatrixXd> svd(M, Eigen::ComputeThinU | Eigen::ComputeThinV);
  const Eigen::MatrixXd left = svd.matrixU().leftCols(rank) * svd.singularValues().head(rank).asDiagonal();
  const Eigen::MatrixXd right = S.matrixU().solve(svd.matrixV().leftCols(rank)).transpose();
  using Matrix = typename LowRank<Scalar>::Matrix;
  return LowRank<Scalar>(Matrix(left.cast<Scalar>()), Matrix(right.cast<Scalar>()));
}

inline void require_rank(Index rank, Index rows, Index cols) {
  require(rank >= 1 && rank <= std::min(rows, cols), "rank ", rank, " is outside [1, ", std::min(rows, cols),
          "] for a ", rows, "x", cols, " matrix");
}

template <class M>
void require_finite_batch(const M& values, const char* what, Index batch) {
  if (values.allFinite()) return;
  for (Index t = 0; t < values.cols(); ++t)
    for (Index r = 0; r < values.rows(); ++r)
      if (!std::isfinite(values(r, t)))
        throw invalid_argument(concat("low-rank calibration batch ", batch, " has a non-finite ", what, " value ",
                                      values(r, t), " at row ", r, ", sample ", t));
}

}  // namespace detail

/// The Gram matrix G = sum_s x_s x_s^T of a projection's inputs, in double, streamed over batches:
/// all that the whitened truncation project_low_rank needs.
class InputGram {
 public:
  using Index = Eigen::Index;
  explicit InputGram(Index cols) {
    detail::require(cols > 0, "input dimension must be positive, got ", cols);
    gram_ = Eigen::MatrixXd::Zero(cols, cols);
  }
  Index cols() const noexcept { return gram_.rows(); }
  Index samples() const noexcept { return samples_; }

  /// Adds the columns of X (cols() x T), which must be finite.
  template <class Derived>
  void accumulate(const Eigen::MatrixBase<Derived>& X) {
    detail::require(X.rows() == cols(), "inputs have ", X.rows(), " rows, expected ", cols());
    detail::require_finite_batch(X, "input", batches_);
    gram_.selfadjointView<Eigen::Lower>().rankUpdate(X.template cast<double>().eval());
    samples_ += X.cols();
    ++batches_;
  }
  InputGram& merge(const InputGram& other) {
    detail::require(other.cols() == cols(), "cannot merge the Gram matrix of ", other.cols(),
                    "-dimensional inputs into one of ", cols());
    gram_ += other.gram_;
    samples_ += other.samples_;
    batches_ += other.batches_;
    return *this;
  }
  /// G, lower triangle (the upper one is not maintained).
  const Eigen::MatrixXd& lower() const noexcept { return gram_; }

 private:
  Eigen::MatrixXd gram_;
  Index samples_ = 0, batches_ = 0;
};

/// Whitened truncation of W (m x n) for inputs with Gram matrix G: L = [W S]_r S^-1, S S^T =
/// G + lambda I, lambda = damping * trace(G) / n -- the rank-r L minimising ||(W - L) S||_F^2, i.e.
/// sum_s ||W x_s - L x_s||^2 + lambda ||W - L||_F^2. Inputs without energy (trace(G) = 0) give the
/// plain truncated SVD of W. Throws numerical_error for a singular G + lambda I.
template <class DerivedW>
LowRank<detail::projection_scalar_t<typename DerivedW::Scalar>> project_low_rank(const Eigen::MatrixBase<DerivedW>& W,
                                                                                const InputGram& gram,
                                                                                Eigen::Index rank,
                                                                                double damping = 1e-2) {
  using Scalar = detail::projection_scalar_t<typename DerivedW::Scalar>;
  detail::require(W.cols() == gram.cols(), "W has ", W.cols(), " columns but the Gram matrix is of ", gram.cols(),
                  "-dimensional inputs");
  detail::require_rank(rank, W.rows(), W.cols());
  detail::require(gram.samples() > 0, "the Gram matrix has no samples: accumulate() inputs first");
  const Eigen::MatrixXd Wd = W.template cast<double>();
  detail::require(Wd.allFinite(), "W has a non-finite entry");
  if (!(gram.lower().trace() > 0)) {
    const Eigen::MatrixXd identity = Eigen::MatrixXd::Identity(W.cols(), W.cols());
    return detail::truncate_whitened<Scalar>(Wd, Eigen::LLT<Eigen::MatrixXd, Eigen::Lower>(identity), rank);
  }
  const auto S = detail::damped_cholesky(gram.lower(), damping, gram.samples());
  return detail::truncate_whitened<Scalar>(Wd * S.matrixL(), S, rank);
}

/// Statistics for fitting a rank-r m x n matrix to (input, target) pairs, as Calibrator does for
/// block-circulant matrices: G = sum x x^T, R = sum y x^T and sum ||y||^2, in double.
template <class Scalar>
class LowRankCalibrator {
  static_assert(detail::is_supported_scalar_v<Scalar>, "fftmat::LowRankCalibrator<Scalar>: float or double");

 public:
  using Index = Eigen::Index;
  using Matrix = typename LowRank<Scalar>::Matrix;
  using ConstMatrixRef = typename LowRank<Scalar>::ConstMatrixRef;

  LowRankCalibrator(Index rows, Index cols) : gram_(cols) {
    detail::require(rows > 0, "matrix dimensions must be positive, got ", rows, "x", cols);
    cross_ = Eigen::MatrixXd::Zero(rows, cols);
  }
  Index rows() const noexcept { return cross_.rows(); }
  Index cols() const noexcept { return cross_.cols(); }
  Index samples() const noexcept { return gram_.samples(); }

  /// Adds a batch: inputs X_in (cols() x T) and the outputs the fit should reproduce (rows() x T).
  void accumulate(const ConstMatrixRef& X_in, const ConstMatrixRef& Y_target) {
    detail::require(Y_target.rows() == rows(), "calibration targets have ", Y_target.rows(), " rows, expected ",
                    rows());
    detail::require(X_in.cols() == Y_target.cols(), "calibration batch has ", X_in.cols(), " inputs but ",
                    Y_target.cols(), " targets");
    detail::require_finite_batch(Y_target, "target", batches_);
    gram_.accumulate(X_in);  // checks the inputs' shape and values
    const Eigen::MatrixXd Y = Y_target.template cast<double>();
    cross_.noalias() += Y * X_in.template cast<double>().transpose();
    target_energy_ += Y.squaredNorm();
    ++batches_;
  }

  LowRankCalibrator& merge(const LowRankCalibrator& other) {
    detail::require(other.rows() == rows() && other.cols() == cols(), "cannot merge a low-rank calibrator for ",
                    other.rows(), "x", other.cols(), " into one for ", rows(), "x", cols());
    gram_.merge(other.gram_);
    cross_ += other.cross_;
    target_energy_ += other.target_energy_;
    batches_ += other.batches_;
    return *this;
  }

  /// The rank-r L minimising sum_s ||y_s - L x_s||^2 + lambda ||L||_F^2, lambda = damping *
  /// trace(G) / n: L = [R S^-T]_r S^-1 with S S^T = G + lambda I. Inputs without energy give L = 0
  /// (the minimum-norm solution). Throws numerical_error for a singular G + lambda I.
  LowRank<Scalar> fit(Index rank, double damping = 1e-2) const {
    detail::require_rank(rank, rows(), cols());
    detail::require(samples() > 0, "low-rank calibrator has no samples: call accumulate() before fit()");
    detail::require(std::isfinite(damping) && damping >= 0, "damping must be finite and >= 0, got ", damping);
    if (!(gram_.lower().trace() > 0)) return LowRank<Scalar>(Matrix::Zero(rows(), rank), Matrix::Zero(rank, cols()));
    const auto S = detail::damped_cholesky(gram_.lower(), damping, samples());
    // R S^-T = (S^-1 R^T)^T.
    const Eigen::MatrixXd whitened = S.matrixL().solve(cross_.transpose()).transpose();
    return detail::truncate_whitened<Scalar>(whitened, S, rank);
  }

  /// sum_s ||y_s - L x_s||^2 from the statistics alone: E - 2 tr(L R^T) + tr(L G L^T).
  double loss(const LowRank<Scalar>& L) const {
    detail::require(L.rows() == rows() && L.cols() == cols(), "loss() of a ", L.rows(), "x", L.cols(),
                    " matrix on statistics for ", rows(), "x", cols());
    const Eigen::MatrixXd U = L.left().template cast<double>(), V = L.right().template cast<double>();
    const Eigen::MatrixXd G = gram_.lower().selfadjointView<Eigen::Lower>();
    const double cross = (U.transpose() * cross_ * V.transpose()).trace();
    const double quadratic = ((U.transpose() * U) * (V * G * V.transpose())).trace();
    return std::max(0.0, target_energy_ - 2.0 * cross + quadratic);
  }
  /// sum_s ||y_s||^2.
  double target_energy() const noexcept { return target_energy_; }

 private:
  InputGram gram_;
  Eigen::MatrixXd cross_;  // R, rows() x cols()
  double target_energy_ = 0;
  Index batches_ = 0;
};

}  // namespace fftmat
