#pragma once
// A block-circulant matrix plus a low-rank term, A = C + U V, and its joint fit to activations by
// alternating least squares (docs/calibration.md, "Block-circulant plus low-rank fit").
//
// The two families fail differently: a block-circulant matrix spreads its error over the spectrum
// of every block, a rank-r matrix keeps r directions exactly and loses the rest. Their sum at the
// parameter budget of one block-circulant matrix (C of block size 2b holds half of the m n / b
// parameters, the rank-r factors the other half) can keep the few dominant directions that the
// circulant blocks blur, and the circulant part covers what a small rank truncates.

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <vector>

#include "block_circulant.hpp"
#include "calibrator.hpp"
#include "error.hpp"
#include "low_rank.hpp"
#include "scaled_block_circulant.hpp"

namespace fftmat {

template <class Scalar>
class BlockCirculantPlusLowRank {
 public:
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  using ConstMatrixRef = typename BlockCirculant<Scalar>::ConstMatrixRef;
  using MatrixRef = typename BlockCirculant<Scalar>::MatrixRef;

  /// core + residual. Throws fftmat::invalid_argument if their shapes differ.
  BlockCirculantPlusLowRank(BlockCirculant<Scalar> core, LowRank<Scalar> residual)
      : core_(std::move(core)), residual_(std::move(residual)) {
    detail::require(residual_.rows() == core_.rows() && residual_.cols() == core_.cols(), "low-rank term is ",
                    residual_.rows(), "x", residual_.cols(), ", the block-circulant matrix ", core_.rows(), "x",
                    core_.cols());
  }

  Index rows() const noexcept { return core_.rows(); }
  Index cols() const noexcept { return core_.cols(); }
  const BlockCirculant<Scalar>& core() const noexcept { return core_; }
  const LowRank<Scalar>& residual() const noexcept { return residual_; }
  /// The core's p*q*b first columns plus the factors' r (m + n) scalars.
  Index parameter_count() const noexcept { return core_.parameter_count() + residual_.parameter_count(); }

  /// Y = C X + U (V X) for X (cols() x T); Y must be rows() x T and must not alias X.
  void apply(const ConstMatrixRef& X, MatrixRef Y) const {
    detail::require(X.rows() == cols(), "input has ", X.rows(), " rows, expected ", cols());
    detail::require(Y.rows() == rows() && Y.cols() == X.cols(), "output is ", Y.rows(), "x", Y.cols(), ", expected ",
                    rows(), "x", X.cols());
    core_.apply(X, Y);
    const Matrix inner = residual_.right() * X;  // r x T
    Y.noalias() += residual_.left() * inner;
  }
  Matrix apply(const ConstMatrixRef& X) const {
    Matrix Y(rows(), X.cols());
    apply(X, Y);
    return Y;
  }

  Matrix to_dense() const { return core_.to_dense() + residual_.to_dense(); }

 private:
  BlockCirculant<Scalar> core_;
  LowRank<Scalar> residual_;
};

/// How a block-circulant budget is shared: C of block size 2b and the largest rank whose factors
/// fit in the other half, r = floor(m n / (2b (m + n))), so that p q (2b) + r (m + n) <= m n / b.
struct BudgetSplit {
  Eigen::Index block_size;  ///< of C: 2b
  Eigen::Index rank;        ///< of U V
};

/// The split of an m x n block-circulant matrix of block size b's budget. Throws
/// fftmat::invalid_argument naming the reason where there is none: 2b does not divide m or n, or
/// the half budget holds no rank-1 term (r = 0).
inline BudgetSplit split_block_budget(Eigen::Index rows, Eigen::Index cols, Eigen::Index block_size) {
  detail::require(block_size > 0, "block size must be positive, got ", block_size);
  const Eigen::Index core_block = 2 * block_size;
  detail::require(rows % core_block == 0 && cols % core_block == 0, "the budget of block size ", block_size,
                  " cannot be split: its block-circulant half has block size ", core_block, ", which does not divide ",
                  rows % core_block != 0 ? "rows " : "cols ", rows % core_block != 0 ? rows : cols);
  const Eigen::Index rank = rank_for_block_budget(rows, cols, core_block);
  detail::require(rank >= 1, "the budget of block size ", block_size, " cannot be split: its low-rank half (",
                  rows * cols / core_block, " parameters) holds no rank-1 term of ", rows + cols, " for a ", rows,
                  "x", cols, " matrix");
  return {core_block, rank};
}

struct PlusLowRankFitOptions {
  /// Rounds of (low-rank step, block-circulant step). 0 returns the initial fit: the calibrated
  /// block-circulant matrix alone, the low-rank term zero.
  int iterations = 8;
  /// The ridge of both steps: Calibrator::fit's relative damping for C, lambda = damping * trace(G) / n
  /// on ||U V||_F^2 for the low-rank term (LowRankCalibrator::fit).
  double damping = 1e-2;
};

template <class Scalar>
struct PlusLowRankFit {
  BlockCirculantPlusLowRank<Scalar> matrix;
  /// The objective J = sum_s ||y_s - A x_s||^2 + both ridge terms after the initial fit and after
  /// every step (low-rank, block-circulant): non-increasing, each step being its exact minimiser.
  std::vector<double> objective;
  double loss = 0;           ///< sum_s ||y_s - A x_s||^2 of the result, without the ridge terms
  double target_energy = 0;  ///< sum_s ||y_s||^2: loss / target_energy is the relative squared error
};

/// Fits A = C + U V, C block-circulant of block size `block_size`, U V of rank `rank`, to minimise
///   J = sum_s ||y_s - C x_s - U V x_s||^2 + penalty_C(C) + lambda ||U V||_F^2
/// over inputs X (n x T) and targets Y (m x T) by block-coordinate descent (docs/calibration.md):
///   U V: the rank-r ridge fit to the residual targets Y - C X, [R' S^-T]_r S^-1 with R' = R - C G,
///        R = Y X^T, G = X X^T, S S^T = G + lambda I (LowRankCalibrator::fit's closed form);
///   C:   the calibrated fit to the residual targets Y - U V X (Calibrator::fit).
/// Both are exact minimisers of J over their block given the other, so J never increases.
/// Throws fftmat::invalid_argument for mismatched shapes, a bad rank or bad options,
/// fftmat::numerical_error for singular Gram matrices with too little damping.
template <class Scalar>
PlusLowRankFit<Scalar> fit_block_circulant_plus_low_rank(const typename BlockCirculant<Scalar>::ConstMatrixRef& X,
                                                         const typename BlockCirculant<Scalar>::ConstMatrixRef& Y,
                                                         Eigen::Index block_size, Eigen::Index rank,
                                                         const PlusLowRankFitOptions& options = {}) {
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  detail::require(X.cols() == Y.cols(), "fit_block_circulant_plus_low_rank: ", X.cols(), " inputs but ", Y.cols(),
                  " targets");
  detail::require(X.cols() > 0, "fit_block_circulant_plus_low_rank: no samples");
  detail::require(options.iterations >= 0, "fit_block_circulant_plus_low_rank: iterations must be >= 0, got ",
                  options.iterations);
  detail::require(std::isfinite(options.damping) && options.damping >= 0, "damping must be finite and >= 0, got ",
                  options.damping);
  const Index m = Y.rows(), n = X.rows();
  BlockCirculant<Scalar>::validate_shape(m, n, block_size);
  detail::require_rank(rank, m, n);
  detail::require_all_finite(X, "fit_block_circulant_plus_low_rank", "input");
  detail::require_all_finite(Y, "fit_block_circulant_plus_low_rank", "target");

  // The statistics of every low-rank step and every loss, in double.
  const Eigen::MatrixXd Xd = X.template cast<double>(), Yd = Y.template cast<double>();
  const Eigen::MatrixXd gram = Xd * Xd.transpose(), cross = Yd * Xd.transpose();
  const double energy = Yd.squaredNorm();
  const double lambda = options.damping * gram.trace() / double(n);
  const auto S = detail::damped_cholesky(gram, options.damping, X.cols());

  // C's statistics on targets Y - U V X; their Gram matrices (and so their ridge) do not depend on
  // the targets, so every calibrator's penalty is the same function of C.
  const auto calibrate = [&](const Matrix& targets) {
    Calibrator<Scalar> calibrator(m, n, block_size);
    calibrator.accumulate(X, targets);
    return calibrator;
  };
  Calibrator<Scalar> calibrator = calibrate(Y);
  BlockCirculant<Scalar> core = calibrator.fit(options.damping);
  Eigen::MatrixXd C = core.to_dense().template cast<double>();
  LowRank<Scalar> residual(Matrix::Zero(m, rank), Matrix::Zero(rank, n));
  Eigen::MatrixXd L = Eigen::MatrixXd::Zero(m, n);

  const auto objective = [&]() {
    return detail::quadratic_loss(C + L, gram, cross, energy) + calibrator.penalty(core, options.damping) +
           lambda * L.squaredNorm();
  };
  std::vector<double> history{objective()};
  for (int round = 0; round < options.iterations; ++round) {
    {  // U V: whitened truncation of the residual's cross-correlation R - C G.
      const Eigen::MatrixXd residual_cross = cross - C * gram;
      const Eigen::MatrixXd whitened = S.matrixL().solve(residual_cross.transpose()).transpose();
      residual = detail::truncate_whitened<Scalar>(whitened, S, rank);
      L = residual.to_dense().template cast<double>();
      history.push_back(objective());
    }
    {  // C: the calibrated fit to what the low-rank term leaves.
      calibrator = calibrate(Y - residual.apply(X));
      core = calibrator.fit(options.damping);
      C = core.to_dense().template cast<double>();
      history.push_back(objective());
    }
  }
  const double loss = detail::quadratic_loss(C + L, gram, cross, energy);
  return PlusLowRankFit<Scalar>{BlockCirculantPlusLowRank<Scalar>(std::move(core), std::move(residual)),
                                std::move(history), loss, energy};
}

}  // namespace fftmat
