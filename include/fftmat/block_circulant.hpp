#pragma once
// Block-circulant matrices with cached frequency-major spectra (docs/design.md, Conventions and Mathematics).
//
// A is m x n with block size b, p = ceil(m/b) block rows, q = ceil(n/b) block columns; block (i, j)
// is the circulant with first column c_ij:  A(i*b + r, j*b + k) = c_ij[(r - k) mod b].
// Parameters are stored as p*q*b scalars, c_ij[d] at ((i*q) + j)*b + d.
//
// Products follow the convolution theorem (e.g. Golub & Van Loan, "Matrix Computations", 4th ed.,
// section 4.8): with hats for the length-b real DFT of each block,
//     Y^[f] (p x T) = C^[f] (p x q) * X^[f] (q x T)      for every bin f = 0 .. b/2,
// one small complex GEMM per bin between a batched rfft of the q*T input blocks and a batched irfft
// of the p*T output blocks. The transpose uses the same spectra: the DFT of a real circulant's
// transpose is the complex conjugate, so (A^T)^[f] = C^[f]^H.

#include <Eigen/Core>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstddef>
#include <limits>
#include <vector>

#define FFTMAT_INTERNAL_HEADERS_ALLOWED  // detail/internal_header_check.hpp
#include "detail/block_fft.hpp"
#include "detail/block_layout.hpp"
#include "detail/complex_kernels.hpp"
#include "detail/eigen_bin_products.hpp"
#include "detail/fftw.hpp"
#include "detail/parallel.hpp"
#include "detail/parameter_spectra.hpp"
#include "detail/workspace_pool.hpp"
#include "error.hpp"
#include "input_spectrum.hpp"

namespace fftmat {

/// What to do when the block size does not divide a dimension.
enum class Padding {
  none,  ///< an error naming the dimension
  zero,  ///< inputs and outputs are zero-padded to the next multiple of b (explicit opt-in)
};

/// The precision of the spectra that products A X read.
enum class SpectrumPrecision {
  full,      ///< Scalar
  bfloat16,  ///< bfloat16 (explicit opt-in): half the bytes of float, 8 significant bits; a product's
             ///< relative error is about 2e-3 (docs/design.md, "bfloat16 spectra")
};

template <class Scalar>
class BlockCirculant {
  static_assert(detail::is_supported_scalar_v<Scalar>, "fftmat::BlockCirculant<Scalar>: float or double");

 public:
  using Index = Eigen::Index;
  using Complex = std::complex<Scalar>;
  using Matrix = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic>;
  using Vector = Eigen::Matrix<Scalar, Eigen::Dynamic, 1>;
  /// Inputs: any column-major matrix (other expressions are evaluated into a temporary).
  using ConstMatrixRef = Eigen::Ref<const Matrix, 0, Eigen::OuterStride<>>;
  /// Outputs: a column-major matrix (or block of one) already of the result's shape.
  using MatrixRef = Eigen::Ref<Matrix, 0, Eigen::OuterStride<>>;

  /// m x n matrix of block size b from p*q*b first columns (layout above). Throws
  /// fftmat::invalid_argument for non-positive sizes, a b that does not divide m or n (unless
  /// `padding` is Padding::zero), a parameter vector of the wrong length or non-finite parameters.
  ///
  /// With SpectrumPrecision::bfloat16, apply() and apply_transformed() read a copy of the spectra
  /// rounded to bfloat16 (halving the bytes a one-token product streams, for float); parameters(),
  /// spectra(), apply_transpose() and to_dense() keep full precision. It throws
  /// fftmat::invalid_argument if a spectrum value is beyond bfloat16's range (possible only for
  /// double). Matrices with fewer than 8 block rows (which do not use the packed kernels) ignore it:
  /// see spectrum_precision().
  BlockCirculant(Index rows, Index cols, Index block_size, const Eigen::Ref<const Vector>& parameters,
                 Padding padding = Padding::none, SpectrumPrecision precision = SpectrumPrecision::full)
      : rows_(rows), cols_(cols), block_size_(block_size), padding_(padding) {
    validate_shape(rows, cols, block_size, padding);
    block_rows_ = (rows + block_size - 1) / block_size;
    block_cols_ = (cols + block_size - 1) / block_size;
    const Index expected = parameter_count();
    detail::require(parameters.size() == expected, "expected ", expected, " block-circulant parameters (p*q*b = ",
                    block_rows_, "*", block_cols_, "*", block_size, ") for a ", rows, "x", cols,
                    " matrix with block size ", block_size, ", got ", parameters.size());
    for (Index k = 0; k < expected; ++k) {
      detail::require(std::isfinite(parameters[k]), "parameter ", k, " (block row ", k / block_size / block_cols_,
                      ", block column ", (k / block_size) % block_cols_, ", offset ", k % block_size,
                      ") is not finite: ", parameters[k]);
    }
    parameters_ = parameters;
    row_fft_ = detail::BlockFft<Scalar>(rows, block_size);
    col_fft_ = detail::BlockFft<Scalar>(cols, block_size);
    compute_spectra();
    if (uses_packed_kernels()) {
      const bool bfloat16 = precision == SpectrumPrecision::bfloat16;
      if (bfloat16) check_bfloat16_range();
      packed_.pack(spectra_.data(), block_size_, block_rows_, block_cols_, bfloat16);
      row_out_fft_ = detail::BlockFft<Scalar>(rows, block_size, detail::SpectrumLayout::block_major);
    }
  }

  /// Throws fftmat::invalid_argument unless (rows, cols, block_size, padding) describe a valid matrix.
  static void validate_shape(Index rows, Index cols, Index block_size, Padding padding = Padding::none) {
    detail::require(block_size > 0, "block size must be positive, got ", block_size);
    detail::require(rows > 0 && cols > 0, "matrix dimensions must be positive, got ", rows, "x", cols);
    detail::require(block_size <= (Index(1) << 30), "block size ", block_size, " is too large");
    if (padding == Padding::none) {
      detail::require(rows % block_size == 0, "block size ", block_size, " does not divide rows ", rows,
                      " (pass fftmat::Padding::zero to zero-pad)");
      detail::require(cols % block_size == 0, "block size ", block_size, " does not divide cols ", cols,
                      " (pass fftmat::Padding::zero to zero-pad)");
    }
    // FFTW's batched plans take an int count (fftw3.h): the spectra transform all p*q blocks in
    // one batch. With b <= 2^30 that also keeps p*q*b parameters within an Index.
    const Index p = rows / block_size + (rows % block_size != 0), q = cols / block_size + (cols % block_size != 0);
    const long long blocks = detail::checked_product({p, q}, std::numeric_limits<int>::max(),
                                                     "block count p x q of the FFTW batch");
    detail::checked_product({blocks, block_size / 2 + 1, Index(sizeof(std::complex<Scalar>))},
                            std::numeric_limits<Index>::max(), "spectra bytes p x q x (b/2 + 1) x sizeof(complex)");
  }

  Index rows() const noexcept { return rows_; }
  Index cols() const noexcept { return cols_; }
  Index block_size() const noexcept { return block_size_; }
  Index block_rows() const noexcept { return block_rows_; }  ///< p
  Index block_cols() const noexcept { return block_cols_; }  ///< q
  Index bins() const noexcept { return block_size_ / 2 + 1; }
  Padding padding() const noexcept { return padding_; }
  /// The precision of the spectra that apply() reads: as constructed, or full where the
  /// constructor's bfloat16 was ignored (fewer than 8 block rows).
  SpectrumPrecision spectrum_precision() const noexcept {
    return packed_.bfloat16() ? SpectrumPrecision::bfloat16 : SpectrumPrecision::full;
  }
  /// p*q*b: the number of stored scalars (m*n/b without padding).
  Index parameter_count() const noexcept { return block_rows_ * block_cols_ * block_size_; }
  /// First columns c_ij, p*q*b scalars, c_ij[d] at ((i*q) + j)*b + d.
  const Vector& parameters() const noexcept { return parameters_; }

  /// Cached spectra, frequency-major: bin f is a row-major p x q complex matrix at offset f*p*q,
  /// entry (i, j) = rfft(c_ij)[f] / b (the inverse FFT's 1/b is folded in).
  const Complex* spectra() const noexcept { return spectra_.data(); }

  /// Bin f (0 <= f <= b/2) of every block's unnormalised DFT, rfft(c_ij)[f], as a p x q matrix in
  /// double: spectra() without the folded 1/b (the units of Calibrator's statistics).
  Eigen::MatrixXcd block_dfts(Index f) const {
    detail::require(f >= 0 && f < bins(), "bin ", f, " is outside [0, ", bins(), ")");
    using RowMajor = Eigen::Matrix<Complex, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    const Index p = block_rows_, q = block_cols_;
    return Eigen::Map<const RowMajor>(spectra_.data() + f * p * q, p, q).template cast<std::complex<double>>() *
           double(block_size_);
  }

  /// Bytes of spectra one product A X (apply, apply_transformed) reads: the packed copy where the
  /// packed kernels run (p >= 8; rows padded to whole panels, in bfloat16 or Scalar as
  /// spectrum_precision() says), the full spectra otherwise. A one-token product streams them once,
  /// so they bound its speed from memory.
  std::size_t applied_spectrum_bytes() const noexcept {
    return uses_packed_kernels() ? packed_.bytes()
                                 : static_cast<std::size_t>(bins() * block_rows_ * block_cols_) * sizeof(Complex);
  }

  /// Y = A X for X of cols() x T; Y must be rows() x T. X and Y may be the same matrix (m == n):
  /// all of X is transformed before Y is written. T = 0 is an empty product (nothing is done), as
  /// Calibrator::accumulate treats an empty batch.
  void apply(const ConstMatrixRef& X, MatrixRef Y) const { multiply(X, Y, Op::normal); }
  /// Y = A^T X for X of rows() x T; Y must be cols() x T.
  void apply_transpose(const ConstMatrixRef& X, MatrixRef Y) const { multiply(X, Y, Op::adjoint); }

  /// Returns A X.
  Matrix apply(const ConstMatrixRef& X) const {
    Matrix Y(rows_, X.cols());
    apply(X, Y);
    return Y;
  }
  /// Returns A^T X.
  Matrix apply_transpose(const ConstMatrixRef& X) const {
    Matrix Y(cols_, X.cols());
    apply_transpose(X, Y);
    return Y;
  }

  /// Computes the block spectra of X (cols() x T) once, for apply_transformed on this matrix or on
  /// any other with the same cols() and block size.
  void transform_input(const ConstMatrixRef& X, InputSpectrum<Scalar>& spectrum) const {
    check_input(X, cols_, "input");
    const Index T = X.cols();
    spectrum.values_.resize(static_cast<std::size_t>(T * col_fft_.token_stride()));
    auto workspace = pool_.lease();
    col_fft_.forward(X.data(), X.outerStride(), T, spectrum.values_.data(), staging(*workspace));
    spectrum.dim_ = cols_;
    spectrum.block_size_ = block_size_;
    spectrum.tokens_ = T;
  }

  /// Y = A X from the spectra of X made by transform_input.
  void apply_transformed(const InputSpectrum<Scalar>& spectrum, MatrixRef Y) const {
    detail::require(spectrum.dim() == cols_ && spectrum.block_size() == block_size_,
                    "input spectrum of dimension ", spectrum.dim(), " and block size ", spectrum.block_size(),
                    " does not fit a ", rows_, "x", cols_, " matrix with block size ", block_size_);
    check_output(Y, rows_, spectrum.tokens());
    if (spectrum.tokens() == 0) return;
    auto workspace = pool_.lease();
    finish(spectrum.values_.data(), spectrum.tokens(), Y, Op::normal, *workspace);
  }

  /// The dense matrix, built from the definition (for tests and small problems).
  Matrix to_dense() const {
    Matrix dense(rows_, cols_);
    for (Index col = 0; col < cols_; ++col) {
      const Index j = col / block_size_, k = col % block_size_;
      for (Index row = 0; row < rows_; ++row) {
        const Index i = row / block_size_, r = row % block_size_;
        const Index d = (r - k + block_size_) % block_size_;
        dense(row, col) = parameters_[detail::parameter_index(i, j, d, block_cols_, block_size_)];
      }
    }
    return dense;
  }

 private:
  enum class Op { normal, adjoint };

  struct Workspace {
    detail::AlignedBuffer<Complex> input_spectrum;
    detail::AlignedBuffer<Complex> output_spectrum;
    detail::AlignedBuffer<Scalar> staging;
  };

  void compute_spectra() {
    // Bin f of block (i, j) lands at f*p*q + i*q + j (detail/parameter_spectra.hpp): each bin is a
    // contiguous row-major p x q matrix.
    const Index blocks = block_rows_ * block_cols_;
    spectra_.resize(bins() * blocks);
    detail::AlignedBuffer<Scalar> columns(static_cast<std::size_t>(blocks * block_size_));
    detail::AlignedBuffer<Complex> spectrum;
    std::copy(parameters_.data(), parameters_.data() + blocks * block_size_, columns.data());
    detail::first_columns_to_spectra(columns, block_size_, blocks, spectrum);
    const Scalar scale = Scalar(1) / static_cast<Scalar>(block_size_);
    for (Index k = 0; k < bins() * blocks; ++k) spectra_[k] = spectrum.data()[k] * scale;
  }

  void check_bfloat16_range() const {
    // Anything beyond bfloat16's largest finite value could round to infinity: refused.
    const double limit = double(static_cast<float>(Eigen::NumTraits<Eigen::bfloat16>::highest()));
    for (Index k = 0; k < spectra_.size(); ++k) {
      const double largest = std::max(std::abs(double(spectra_[k].real())), std::abs(double(spectra_[k].imag())));
      detail::require(largest <= limit, "spectrum value ", largest, " (bin ", k / (block_rows_ * block_cols_),
                      ") is beyond the range of bfloat16 spectra (", limit, ")");
    }
  }

  static void check_input(const ConstMatrixRef& X, Index expected_rows, const char* what) {
    detail::require(X.rows() == expected_rows, what, " has ", X.rows(), " rows, expected ", expected_rows);
  }
  static void check_output(const MatrixRef& Y, Index expected_rows, Index tokens) {
    detail::require(Y.rows() == expected_rows && Y.cols() == tokens, "output is ", Y.rows(), "x", Y.cols(),
                    ", expected ", expected_rows, "x", tokens);
  }

  Scalar* staging(Workspace& workspace) const {
    const Index per_thread = std::max(row_fft_.staging_stride(), col_fft_.staging_stride());
    workspace.staging.resize(static_cast<std::size_t>(per_thread * max_threads()));
    return workspace.staging.data();
  }

  void multiply(const ConstMatrixRef& X, MatrixRef& Y, Op op) const {
    const detail::BlockFft<Scalar>& in = op == Op::normal ? col_fft_ : row_fft_;
    check_input(X, in.dim(), "input");
    check_output(Y, op == Op::normal ? rows_ : cols_, X.cols());
    const Index T = X.cols();
    if (T == 0) return;  // an empty product, as in Eigen
    auto workspace = pool_.lease();
    if (uses_chunked_products(T, op)) {
      const auto transform = [&](Index t0, Index tokens, Complex* own_input, Scalar* own_staging) -> const Complex* {
        col_fft_.forward(X.data() + t0 * X.outerStride(), X.outerStride(), tokens, own_input, own_staging);
        return own_input;
      };
      chunked_products(transform, true, T, Y, *workspace);
      return;
    }
    workspace->input_spectrum.resize(static_cast<std::size_t>(T * in.token_stride()));
    if (uses_one_token_region(T, op)) {
      workspace->output_spectrum.resize(static_cast<std::size_t>(row_out_fft_.token_stride()));
      Complex* input = workspace->input_spectrum.data();
      const auto forward = [&](const detail::TeamMember& member, Scalar* own_staging) {
        const auto [first, end] = member.share(block_cols_, col_fft_.kRangeGranule);
        if (end > first) col_fft_.forward_blocks(X.data(), first, end - first, input, own_staging);
        member.barrier();  // every product reads every input block
      };
      one_token(forward, input, workspace->output_spectrum.data(), Y.data(), staging(*workspace));
      return;
    }
    in.forward(X.data(), X.outerStride(), T, workspace->input_spectrum.data(), staging(*workspace));
    finish(workspace->input_spectrum.data(), T, Y, op, *workspace);
  }

  /// A = C X uses the packed split-plane kernels (detail/complex_kernels.hpp) unless there are
  /// fewer block rows than one panel (e.g. a Circulant, p = 1), where padding the panel would waste
  /// most of the work; those keep the per-bin Eigen products.
  bool uses_packed_kernels() const noexcept { return block_rows_ >= detail::kPanelRows; }

  /// A x for one token goes through one_token (a single parallel region for all three stages).
  bool uses_one_token_region(Index T, Op op) const noexcept {
    return T == 1 && op == Op::normal && uses_packed_kernels();
  }
  /// A X for more tokens goes through chunked_products (one parallel region, chunks of tokens).
  bool uses_chunked_products(Index T, Op op) const noexcept {
    return T > 1 && op == Op::normal && uses_packed_kernels();
  }

  /// The transforms of the input and of the output of op (the output layout depends on the kernel).
  const detail::BlockFft<Scalar>& input_fft(Op op) const { return op == Op::normal ? col_fft_ : row_fft_; }
  const detail::BlockFft<Scalar>& output_fft(Op op) const {
    if (op == Op::normal) return uses_packed_kernels() ? row_out_fft_ : row_fft_;
    return col_fft_;
  }

  /// Per-bin products and inverse FFTs: Y = irfft(C^[f] X^[f]) (or C^[f]^H for the transpose).
  void finish(const Complex* input_spectrum, Index T, MatrixRef& Y, Op op, Workspace& workspace) const {
    const detail::BlockFft<Scalar>& out = output_fft(op);
    workspace.output_spectrum.resize(static_cast<std::size_t>(T * out.token_stride()));
    Complex* output_spectrum = workspace.output_spectrum.data();
    if (uses_one_token_region(T, op)) {
      one_token(no_forward_stage, input_spectrum, output_spectrum, Y.data(), staging(workspace));
      return;
    }
    if (uses_chunked_products(T, op)) {
      const Index stride = col_fft_.token_stride();
      const auto given = [&](Index t0, Index, Complex*, Scalar*) { return input_spectrum + t0 * stride; };
      chunked_products(given, false, T, Y, workspace);
      return;
    }
    const detail::BlockFft<Scalar>& in = input_fft(op);
    detail::eigen_bin_products(spectra_.data(), block_rows_, block_cols_, bins(), op == Op::adjoint, input_spectrum,
                               in.token_stride(), output_spectrum, out.token_stride(), T);
    out.inverse(output_spectrum, T, Y.data(), Y.outerStride(), staging(workspace));
  }

  /// one_token's forward stage when the input spectrum is given.
  static void no_forward_stage(const detail::TeamMember&, Scalar*) {}

  /// A x for one token (decode) with the packed kernels. Every stage is small here (tens of
  /// microseconds at the Llama-2-7B shapes, docs/benchmarks.md, `stage/*`), and a fork/join per
  /// stage would leave both FFTs on one thread (below the parallel threshold). So one parallel
  /// region runs them all: each thread transforms a share of the input blocks; after a barrier
  /// (every product reads every input block) each streams a contiguous share of the panel-major
  /// packed spectra and inverse-transforms each panel's R output blocks as soon as all bins of the
  /// panel are done. So no second barrier waits for the slower thread's products, and one thread's
  /// irfft overlaps the other's stream.
  ///
  /// `forward(member, own_staging)` writes the input's spectrum to `input` (each member its share,
  /// then a barrier), or is no_forward_stage when `input` already holds it (apply_transformed).
  /// `staging`: the workspace's, one share per thread.
  template <class ForwardStage>
  void one_token(const ForwardStage& forward, const Complex* input, Complex* output, Scalar* y,
                 Scalar* staging) const {
    static_assert(detail::kPanelRows % detail::BlockFft<Scalar>::kRangeGranule == 0,
                  "a panel's output blocks must be a range inverse_blocks accepts");
    const Index p = block_rows_;
    const Index staging_stride = std::max(row_fft_.staging_stride(), col_fft_.staging_stride());
    // Every panel's output blocks but the last panel's are kPanelRows; their plans are looked up
    // here, once, not by every panel of every thread.
    const auto panel_plan = row_out_fft_.inverse_range_plan(detail::kPanelRows);
    const auto last_panel_plan = row_out_fft_.inverse_range_plan(p - (packed_.panels() - 1) * detail::kPanelRows);
    detail::parallel_region(detail::one_token_flops(packed_, block_cols_), [&](const detail::TeamMember& member) {
      Scalar* own_staging = staging + member.thread * staging_stride;
      forward(member, own_staging);
      detail::one_token_share(packed_, member, p, block_cols_, input, output, [&](Index P) {
        const Index block = P * detail::kPanelRows;  // the panel's output blocks, complete now
        const auto& plan = P + 1 < packed_.panels() ? panel_plan : last_panel_plan;
        row_out_fft_.inverse_blocks(plan, output, block, y, own_staging);
      });
    });
  }

  /// A X for T > 1 tokens with the packed kernels, in one parallel region: each thread takes whole
  /// chunks of tokens and runs all three stages on each -- the chunk's input spectrum
  /// (`input_chunk(t0, tokens, own_input, own_staging)` transforms X's columns into own_input, or
  /// points into a given spectrum), the products of every panel and bin, the inverse FFT into Y.
  /// So the chunk's input and output spectra (token_chunk sizes them) stay in the thread's L2
  /// between the stages instead of making a round trip through memory for all T tokens, and one
  /// fork/join serves the whole product. Every chunk streams the packed spectra once, from L3 at
  /// worst (they are a few MB).
  template <class InputChunk>
  void chunked_products(const InputChunk& input_chunk, bool transforms_input, Index T, MatrixRef& Y,
                        Workspace& workspace) const {
    const Index in_stride = col_fft_.token_stride(), out_stride = row_out_fft_.token_stride();
    const Index limit = detail::token_chunk((in_stride + out_stride) * Index(sizeof(Complex)));
    const Index team = max_threads();
    const Index chunks = std::max((T + limit - 1) / limit, std::min(T, team));  // every thread gets one
    const Index chunk = (T + chunks - 1) / chunks;
    workspace.input_spectrum.resize(static_cast<std::size_t>(transforms_input ? team * chunk * in_stride : 0));
    workspace.output_spectrum.resize(static_cast<std::size_t>(team * chunk * out_stride));
    Scalar* staging = this->staging(workspace);
    const Index staging_stride = std::max(row_fft_.staging_stride(), col_fft_.staging_stride());
    const double flops = 8.0 * double(detail::kPanelRows * block_cols_ * packed_.panels() * bins() * T);
    detail::parallel_region(flops, [&](const detail::TeamMember& member) {
      Complex* own_input = transforms_input ? workspace.input_spectrum.data() + member.thread * chunk * in_stride
                                            : nullptr;
      Complex* own_output = workspace.output_spectrum.data() + member.thread * chunk * out_stride;
      Scalar* own_staging = staging + member.thread * staging_stride;
      const auto [first, end] = member.share(chunks);
      for (Index c = first; c < end; ++c) {
        const Index t0 = c * chunk, tokens = std::min(chunk, T - t0);
        if (tokens <= 0) break;
        const Complex* x = input_chunk(t0, tokens, own_input, own_staging);
        detail::packed_products(packed_, block_rows_, block_cols_, x, in_stride, tokens, own_output, out_stride);
        row_out_fft_.inverse(own_output, tokens, Y.data() + t0 * Y.outerStride(), Y.outerStride(), own_staging);
      }
    });
  }

  Index rows_, cols_, block_size_;
  Padding padding_;
  Index block_rows_ = 0, block_cols_ = 0;
  Vector parameters_;
  Eigen::Matrix<Complex, Eigen::Dynamic, 1> spectra_;
  detail::PackedSpectra<Scalar> packed_;  // split-plane panels for A X (empty when not used)
  detail::BlockFft<Scalar> row_fft_, col_fft_;
  detail::BlockFft<Scalar> row_out_fft_;  // block-major inverse transforms of the packed kernels' output
  mutable detail::WorkspacePool<Workspace> pool_;
};

}  // namespace fftmat
