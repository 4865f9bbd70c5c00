#pragma once
// Calibrated (loss-aware) block-circulant fit in closed form (docs/calibration.md).
//
// Minimises  sum_s ||y_s - A x_s||^2 + lambda ||A||_F^2  over block-circulant A. By Parseval the
// loss splits into independent least-squares problems per frequency bin f, all block rows of a bin
// sharing one q x q Hermitian Gram matrix:
//     G_f = sum_s X^_f,s X^_f,s^H,   R_f = sum_s Y^_f,s X^_f,s^H,   C^_f = R_f (G_f + lambda_f I)^-1,
// with lambda_f = damping * trace(G_f) / q (relative damping, as GPTQ damps its Hessian). The
// statistics stream over batches in double precision.

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include <cmath>
#include <complex>
#include <limits>
#include <new>
#include <vector>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "block_circulant.hpp"
#include "detail/block_fft.hpp"
#include "detail/block_layout.hpp"
#include "detail/fftw.hpp"
#include "detail/parallel.hpp"
#include "detail/parameter_spectra.hpp"
#include "error.hpp"
#include "projection.hpp"

namespace fftmat {

template <class Scalar>
class Calibrator {
  static_assert(detail::is_supported_scalar_v<Scalar>, "fftmat::Calibrator<Scalar>: float or double");

 public:
  using Index = Eigen::Index;
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  using ConstMatrixRef = typename BlockCirculant<Scalar>::ConstMatrixRef;
  using ComplexMatrix = Eigen::MatrixXcd;

  /// Statistics for fitting an m x n block-circulant matrix of block size b. With Padding::zero,
  /// inputs and targets are zero-padded: padding columns keeps the fit exact, padding rows does not
  /// (the fit then also asks the padded output rows to be zero, which constrains the last block row).
  Calibrator(Index rows, Index cols, Index block_size, Padding padding = Padding::none)
      : rows_(rows), cols_(cols), block_size_(block_size), padding_(padding) {
    BlockCirculant<Scalar>::validate_shape(rows, cols, block_size, padding);
    in_fft_ = detail::BlockFft<double>(cols, block_size);
    out_fft_ = detail::BlockFft<double>(rows, block_size);
    // The statistics are bins x (q x q + p x q) complex doubles: sized before they are allocated.
    const Index p = out_fft_.blocks(), q = in_fft_.blocks();
    constexpr Index kMax = std::numeric_limits<Index>::max();
    const auto complex_bytes = static_cast<long long>(sizeof(std::complex<double>));
    const long long gram_bytes = detail::checked_product({bins(), q, q, complex_bytes}, kMax,
                                                         "Calibrator: Gram matrices' bytes, bins x q x q x 16");
    const long long cross_bytes = detail::checked_product({bins(), p, q, complex_bytes}, kMax,
                                                          "Calibrator: cross-correlations' bytes, bins x p x q x 16");
    try {
      reset();
    } catch (const std::bad_alloc&) {
      throw error(detail::concat("Calibrator for a ", rows, "x", cols, " matrix with block size ", block_size,
                                 " needs ", gram_bytes, " + ", cross_bytes, " bytes of statistics (", bins(),
                                 " bins of ", q, "x", q, " and ", p, "x", q, " complex doubles): out of memory"));
    }
  }

  Index rows() const noexcept { return rows_; }
  Index cols() const noexcept { return cols_; }
  Index block_size() const noexcept { return block_size_; }
  Index bins() const noexcept { return block_size_ / 2 + 1; }
  /// Number of (input, target) pairs accumulated so far.
  Index samples() const noexcept { return samples_; }

  /// Forgets every accumulated sample.
  void reset() {
    const Index p = out_fft_.blocks(), q = in_fft_.blocks();
    gram_.assign(static_cast<std::size_t>(bins()), ComplexMatrix::Zero(q, q));
    cross_.assign(static_cast<std::size_t>(bins()), ComplexMatrix::Zero(p, q));
    target_energy_ = Eigen::VectorXd::Zero(bins());
    samples_ = 0;
    batches_ = 0;
  }

  /// Adds a batch: inputs X_in (cols() x T) and the outputs the fitted matrix should reproduce,
  /// Y_target (rows() x T). Inputs and targets are separate so that a layer can be fitted on inputs
  /// from an already-approximated model against the original model's outputs. An empty batch
  /// (T = 0) adds nothing, as BlockCirculant::apply with T = 0 does nothing.
  void accumulate(const ConstMatrixRef& X_in, const ConstMatrixRef& Y_target) {
    detail::require(X_in.rows() == cols_, "calibration inputs have ", X_in.rows(), " rows, expected ", cols_);
    detail::require(Y_target.rows() == rows_, "calibration targets have ", Y_target.rows(), " rows, expected ",
                    rows_);
    detail::require(X_in.cols() == Y_target.cols(), "calibration batch ", batches_, " has ", X_in.cols(),
                    " inputs but ", Y_target.cols(), " targets");
    require_finite(X_in, "input");
    require_finite(Y_target, "target");
    const Index T = X_in.cols();
    if (T == 0) return;

    const Index p = out_fft_.blocks(), q = in_fft_.blocks();
    detail::AlignedBuffer<std::complex<double>> x_hat(static_cast<std::size_t>(T * in_fft_.token_stride()));
    detail::AlignedBuffer<std::complex<double>> y_hat(static_cast<std::size_t>(T * out_fft_.token_stride()));
    detail::AlignedBuffer<double> staging(static_cast<std::size_t>(
        std::max(in_fft_.staging_stride(), out_fft_.staging_stride()) * max_threads()));
    in_fft_.forward(X_in.data(), X_in.outerStride(), T, x_hat.data(), staging.data());
    out_fft_.forward(Y_target.data(), Y_target.outerStride(), T, y_hat.data(), staging.data());

    using Stride = Eigen::OuterStride<>;
    using Map = Eigen::Map<const ComplexMatrix, 0, Stride>;
    parallel_for(bins(), 8.0 * double((q * q / 2 + p * q) * T), [&](Index f, int) {
      const Map X(x_hat.data() + f * q, q, T, Stride(in_fft_.token_stride()));
      const Map Y(y_hat.data() + f * p, p, T, Stride(out_fft_.token_stride()));
      gram_[f].template selfadjointView<Eigen::Lower>().rankUpdate(X);  // lower triangle only
      cross_[f].noalias() += Y * X.adjoint();
      target_energy_[f] += Y.squaredNorm();
    });
    samples_ += T;
    ++batches_;
  }

  /// Adds another calibrator's statistics (same shape): gather in parallel or per file, then merge.
  Calibrator& merge(const Calibrator& other) {
    detail::require(other.rows_ == rows_ && other.cols_ == cols_ && other.block_size_ == block_size_ &&
                        other.padding_ == padding_,
                    "cannot merge a calibrator for ", other.rows_, "x", other.cols_, " (block ", other.block_size_,
                    ") into one for ", rows_, "x", cols_, " (block ", block_size_, ")");
    for (Index f = 0; f < bins(); ++f) {
      gram_[f] += other.gram_[f];
      cross_[f] += other.cross_[f];
    }
    target_energy_ += other.target_energy_;
    samples_ += other.samples_;
    batches_ += other.batches_;
    return *this;
  }

  /// The block-circulant matrix minimising the accumulated squared error plus the ridge term, with
  /// lambda_f = damping * trace(G_f) / q per bin. A bin whose inputs carry no energy gets a zero
  /// spectrum (the minimum-norm solution). Throws fftmat::numerical_error if a Gram matrix is
  /// singular (fewer samples than q, rank-deficient inputs) and damping is too small to fix it.
  BlockCirculant<Scalar> fit(double damping = 1e-2) const {
    detail::require(std::isfinite(damping) && damping >= 0, "damping must be finite and >= 0, got ", damping);
    detail::require(samples_ > 0, "calibrator has no samples: call accumulate() before fit()");
    const Index p = out_fft_.blocks(), q = in_fft_.blocks(), b = block_size_;
    detail::AlignedBuffer<std::complex<double>> spectra(static_cast<std::size_t>(bins() * p * q));
    for (Index f = 0; f < bins(); ++f) {
      const ComplexMatrix solution = solve_bin(f, damping);  // p x q, unnormalised DFT of the c_ij
      const bool real_bin = detail::is_real_bin(f, b);
      for (Index i = 0; i < p; ++i)
        for (Index j = 0; j < q; ++j) {
          const std::complex<double> v = solution(i, j);
          spectra.data()[f * p * q + i * q + j] = real_bin ? std::complex<double>(v.real()) : v;
        }
    }
    // Back to first columns: c_ij = irfft(C^_ij) / b.
    detail::AlignedBuffer<double> columns;
    detail::spectra_to_first_columns(spectra, b, p * q, columns);
    typename BlockCirculant<Scalar>::Vector params(p * q * b);
    for (Index k = 0; k < p * q * b; ++k) params[k] = static_cast<Scalar>(columns.data()[k] / double(b));
    return BlockCirculant<Scalar>(rows_, cols_, b, params, padding_);
  }

  /// sum_s ||y_s - A x_s||^2 over the accumulated samples, from the statistics alone (Parseval).
  /// Compare a calibrated fit with project_frobenius(W, b) on the same data.
  double loss(const BlockCirculant<Scalar>& A) const {
    detail::require(A.rows() == rows_ && A.cols() == cols_ && A.block_size() == block_size_,
                    "loss() of a ", A.rows(), "x", A.cols(), " (block ", A.block_size(), ") matrix on statistics for ",
                    rows_, "x", cols_, " (block ", block_size_, ")");
    double total = 0;
    for (Index f = 0; f < bins(); ++f) {
      const ComplexMatrix C = A.block_dfts(f);  // in the statistics' units: unnormalised DFTs
      const ComplexMatrix G = gram_[f].template selfadjointView<Eigen::Lower>();
      const double bin_loss = target_energy_[f] - 2.0 * (C.array() * cross_[f].conjugate().array()).real().sum() +
                              (C * G).cwiseProduct(C.conjugate()).real().sum();
      total += bin_weight(f) * bin_loss;
    }
    return std::max(0.0, total / double(block_size_));
  }

  /// The ridge term that fit(damping) minimises beside loss(A): sum_f w_f lambda_f ||C^_f||_F^2 / b
  /// over the half spectrum (w_f as in loss), lambda_f = damping * trace(G_f) / q. loss(A) +
  /// penalty(A, damping) is the objective that fit(damping) minimises exactly.
  double penalty(const BlockCirculant<Scalar>& A, double damping) const {
    detail::require(A.rows() == rows_ && A.cols() == cols_ && A.block_size() == block_size_,
                    "penalty() of a ", A.rows(), "x", A.cols(), " (block ", A.block_size(),
                    ") matrix on statistics for ", rows_, "x", cols_, " (block ", block_size_, ")");
    detail::require(std::isfinite(damping) && damping >= 0, "damping must be finite and >= 0, got ", damping);
    const double q = double(in_fft_.blocks());
    double total = 0;
    for (Index f = 0; f < bins(); ++f)
      total += bin_weight(f) * damping * gram_[f].diagonal().real().sum() / q * A.block_dfts(f).squaredNorm();
    return total / double(block_size_);
  }

  /// sum_s ||y_s||^2: loss(A) / target_energy() is the relative squared error.
  double target_energy() const {
    double total = 0;
    for (Index f = 0; f < bins(); ++f) total += bin_weight(f) * target_energy_[f];
    return total / double(block_size_);
  }

 private:
  // Parseval over the half spectrum: every bin but the real ones stands for two of the full one.
  double bin_weight(Index f) const noexcept { return detail::is_real_bin(f, block_size_) ? 1.0 : 2.0; }

  template <class M>
  void require_finite(const M& values, const char* what) const {
    if (values.allFinite()) return;
    for (Index t = 0; t < values.cols(); ++t)
      for (Index r = 0; r < values.rows(); ++r)
        if (!std::isfinite(values(r, t)))
          throw invalid_argument(detail::concat("calibration batch ", batches_, " has a non-finite ", what,
                                                " value ", values(r, t), " at row ", r, ", sample ", t));
  }

  ComplexMatrix solve_bin(Index f, double damping) const {
    const Index q = in_fft_.blocks();
    const double trace = gram_[f].diagonal().real().sum();
    if (!(trace > 0)) return ComplexMatrix::Zero(cross_[f].rows(), q);  // inputs have no energy in this bin
    ComplexMatrix regularised = gram_[f];
    regularised.diagonal().array() += damping * trace / double(q);
    const Eigen::LLT<ComplexMatrix, Eigen::Lower> cholesky(regularised);
    // A tiny pivot means the Gram matrix is numerically singular; solving anyway would return
    // enormous or NaN parameters. Relative to trace/q, 1e-12 is far below any useful damping.
    if (cholesky.info() != Eigen::Success || !(cholesky.rcond() > 1e-12)) {
      throw numerical_error(detail::concat(
          "calibration Gram matrix of frequency bin ", f, " is singular (", samples_, " samples for ", q,
          " block columns, or rank-deficient inputs); use a damping > 0 (got ", damping, ")"));
    }
    // C_f (G_f + lambda I) = R_f  <=>  (G_f + lambda I) C_f^H = R_f^H  (the Gram matrix is Hermitian).
    return cholesky.solve(cross_[f].adjoint()).adjoint();
  }

  Index rows_, cols_, block_size_;
  Padding padding_;
  detail::BlockFft<double> in_fft_, out_fft_;
  std::vector<ComplexMatrix> gram_;   // per bin, q x q Hermitian (lower triangle stored)
  std::vector<ComplexMatrix> cross_;  // per bin, p x q
  Eigen::VectorXd target_energy_;     // per bin, sum_s ||Y^_f,s||^2
  Index samples_ = 0;
  Index batches_ = 0;
};

/// One-shot calibrated projection of W onto block-circulant matrices for inputs X (n x T):
/// minimises sum ||W x - A x||^2 + damping-scaled ridge. Same scalar rules as project_frobenius.
template <class DerivedW, class DerivedX>
BlockCirculant<detail::projection_scalar_t<typename DerivedW::Scalar>> project_calibrated(
    const Eigen::MatrixBase<DerivedW>& W, const Eigen::MatrixBase<DerivedX>& X, Eigen::Index block_size,
    double damping = 1e-2, Padding padding = Padding::none) {
  using Scalar = detail::projection_scalar_t<typename DerivedW::Scalar>;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  detail::require(X.rows() == W.cols(), "calibration inputs have ", X.rows(), " rows but W has ", W.cols(),
                  " columns");
  const Matrix Wc = W.template cast<Scalar>();
  const Matrix Xc = X.template cast<Scalar>();
  Calibrator<Scalar> calibrator(Wc.rows(), Wc.cols(), block_size, padding);
  calibrator.accumulate(Xc, Wc * Xc);
  return calibrator.fit(damping);
}

}  // namespace fftmat
