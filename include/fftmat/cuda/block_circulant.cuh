#pragma once
// fftmat::cuda::BlockCirculant: the GPU counterpart of fftmat::BlockCirculant (nvcc only).
//
// A product Y = A X (X: n x T column-major on the device, Y: m x T) runs on the caller's stream,
// in pieces of power-of-two token counts (stream_context.hpp). A piece of t > 1 tokens is
//   1. cuFFT R2C of the q*t input blocks straight into the frequency-major layout
//      (layout.hpp): bin f of block (s, j) at f*q*t + s*q + j, so bin f's q x t matrix X_f is
//      contiguous and column-major;
//   2. one cublasGemmStridedBatchedEx over the b/2+1 bins, Y_f = C_f X_f (layout.hpp); the
//      transpose multiplies by C_f^H, through a conjugated copy of the spectra made on the first
//      transposed product with t > 1;
//   3. cuFFT C2R of the p*t output blocks from the frequency-major layout straight into Y.
// A piece of one token (decode) is one launch of one_token_product (kernels.cuh), which does the
// DFTs itself and spreads over enough thread blocks to fill the GPU; with
// SpectrumPrecision::bfloat16 (float) it reads a bfloat16 copy of the spectra. Shapes its plan
// does not fit (b > 512, or too many input blocks for shared memory) take cuFFT, a per-bin GEMV
// kernel and cuFFT.
//
// Workspace, plans and cuBLAS handles belong to the stream, not to the matrix, and are shared by
// every matrix used on it (stream_context.hpp). A call allocates only what its stream does not
// hold yet, before anything is queued; after that it allocates nothing and makes no synchronising
// call, so it can be captured into a CUDA graph. prepare(T, stream) does those first allocations
// for every product of up to T tokens.
//
// Concurrency: one object may be called from several host threads and streams at once. The
// matrix itself is read-only on the device (the spectra); what a call writes lives in its
// stream's workspace, whose lock serialises the enqueueing of calls on the same stream.
//
// Stacking: a matrix may be built from several CPU matrices with the same columns and block
// size, stacked by rows -- Llama's gate and up projections as one 2*11008 x 4096 matrix, so the
// input is transformed once for both and both run in one launch.
//
// Zero-padded matrices (fftmat::Padding::zero) are rejected: every block is exactly b long here.

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/transform.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <type_traits>
#include <vector>

#include "../block_circulant.hpp"
#include "../error.hpp"
#include "buffer.hpp"
#include "error.hpp"
#include "kernels.cuh"
#include "layout.hpp"
#include "plan_cache.hpp"
#include "stream_context.hpp"
#include "types.hpp"

namespace fftmat::cuda {

/// Arithmetic of the per-bin products of pieces with more than one token (cuBLAS).
enum class ProductPrecision {
  full,  ///< fp32 (fp64 for double) on CUDA cores, as on the CPU
  /// float only: TF32 tensor cores with fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_TF32). The
  /// spectra and activation spectra enter the products with 10 mantissa bits (unit roundoff
  /// 2^-11), so the relative error is of the order of 1e-3 instead of 1e-6.
  tf32,
  /// float only: bfloat16 tensor cores with fp32 accumulation (CUBLAS_COMPUTE_32F_FAST_16BF): the
  /// operands enter with 7 stored mantissa bits (unit roundoff 2^-8), so the relative error is of
  /// the order of 1e-2 -- for trying accuracy against speed, not a default.
  bfloat16,
};

namespace detail {

enum class Op { normal, adjoint };

/// Everything behind one GPU matrix; held by unique_ptr so the public type is cheaply movable
/// (the mutex is not).
template <class Scalar>
class Engine {
 public:
  using Complex = typename Types<Scalar>::Complex;
  using Index = std::ptrdiff_t;

  /// The rows of `parts`, stacked in order (one part: that matrix).
  Engine(const std::vector<const fftmat::BlockCirculant<Scalar>*>& parts, ProductPrecision precision) {
    fftmat::detail::require(!parts.empty(), "fftmat::cuda::BlockCirculant: no matrices to stack");
    for (const auto* part : parts) {
      fftmat::detail::require(part != nullptr, "fftmat::cuda::BlockCirculant: null matrix among the parts");
    }
    const fftmat::BlockCirculant<Scalar>& first = *parts.front();
    cols_ = first.cols();
    b_ = first.block_size();
    q_ = first.block_cols();
    bins_ = first.bins();
    for (const auto* part : parts) {
      const Index rows = part->rows(), cols = part->cols();
      fftmat::detail::require(cols == cols_ && part->block_size() == b_, "fftmat::cuda::BlockCirculant: stacked ",
                              "matrices need the same columns and block size: ", rows, "x", cols, " with b = ",
                              part->block_size(), " after ", first.rows(), "x", cols_, " with b = ", b_);
      fftmat::detail::require(part->padding() == fftmat::Padding::none || (rows % b_ == 0 && cols % b_ == 0),
                              "fftmat::cuda::BlockCirculant does not support zero-padded matrices: block size ", b_,
                              " does not divide the ", rows, "x", cols, " matrix");
      fftmat::detail::require(part->spectrum_precision() == first.spectrum_precision(),
                              "fftmat::cuda::BlockCirculant: stacked matrices need the same spectrum precision");
      rows_ += rows;
      p_ += part->block_rows();
    }
    fftmat::detail::require(precision == ProductPrecision::full || std::is_same_v<Scalar, float>,
                            "fftmat::cuda::BlockCirculant<double>: ProductPrecision::tf32 and ::bfloat16 are for float ",
                            "matrices");
    compute_ = precision == ProductPrecision::tf32       ? CUBLAS_COMPUTE_32F_FAST_TF32
               : precision == ProductPrecision::bfloat16 ? CUBLAS_COMPUTE_32F_FAST_16BF
                                                         : Types<Scalar>::compute;
    fftmat::detail::require(b_ <= INT_MAX && p_ <= INT_MAX && q_ <= INT_MAX && bins_ * p_ * q_ <= INT_MAX,
                            "a ", rows_, "x", cols_, " matrix with block size ", b_,
                            " is too large for the GPU backend");
    device_ = current_device();

    // The spectra, bin f a row-major p x q matrix: each part's p_k rows of bin f in turn.
    const std::size_t count = static_cast<std::size_t>(bins_ * p_ * q_);
    std::vector<Complex> stacked;
    const Complex* host_spectra = reinterpret_cast<const Complex*>(first.spectra());
    if (parts.size() > 1) {
      stacked.resize(count);
      for (Index f = 0; f < bins_; ++f) {
        Index row = 0;
        for (const auto* part : parts) {
          const Index rows = part->block_rows();
          std::memcpy(stacked.data() + (f * p_ + row) * q_, part->spectra() + f * rows * q_,
                      static_cast<std::size_t>(rows * q_) * sizeof(Complex));
          row += rows;
        }
      }
      host_spectra = stacked.data();
    }
    // SpectrumPrecision::bfloat16 (float matrices): one-token products A x stream a bfloat16 copy
    // of the spectra, half the bytes, as on the CPU; everything else keeps full precision.
    const bool bfloat16 =
        std::is_same_v<Scalar, float> && first.spectrum_precision() == fftmat::SpectrumPrecision::bfloat16;
    std::vector<__nv_bfloat162> rounded(bfloat16 ? count : 0);
    for (std::size_t k = 0; k < rounded.size(); ++k) {
      rounded[k] = __floats2bfloat162_rn(static_cast<float>(host_spectra[k].x), static_cast<float>(host_spectra[k].y));
    }

    // One-token plans, sized to give every SM two thread blocks.
    int sms = 0;
    FFTMAT_CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device_));
    const int b = static_cast<int>(b_), p = static_cast<int>(p_), q = static_cast<int>(q_);
    const std::size_t normal_entry = bfloat16 ? sizeof(__nv_bfloat162) : sizeof(Complex);
    one_token_[0] = one_token_plan(b, q, p, /*stage_spectra=*/true, sizeof(Complex), normal_entry, 2 * sms);
    one_token_[1] = one_token_plan(b, p, q, /*stage_spectra=*/false, sizeof(Complex), sizeof(Complex), 2 * sms);

    // cos/sin of 2 pi m / b in double, rounded once: the kernel's direct DFTs are then as
    // accurate as an FFT of the same length.
    std::vector<Complex> table(one_token_[0].usable() || one_token_[1].usable() ? static_cast<std::size_t>(b_) : 0);
    const double pi = 3.14159265358979323846;
    for (std::size_t m = 0; m < table.size(); ++m) {
      const double angle = 2.0 * pi * static_cast<double>(m) / static_cast<double>(b_);
      table[m].x = static_cast<Scalar>(std::cos(angle));
      table[m].y = static_cast<Scalar>(std::sin(angle));
    }
    DeviceBuffer<Complex> spectra(count), twiddles(table.size());
    DeviceBuffer<__nv_bfloat162> bfloat16_spectra(rounded.size());
    // A stream of its own: the upload neither waits for nor stalls the caller's streams.
    Stream upload;
    FFTMAT_CUDA_CHECK(cudaMemcpyAsync(spectra.data(), host_spectra, count * sizeof(Complex), cudaMemcpyHostToDevice,
                                      upload.get()));
    if (!table.empty()) {
      FFTMAT_CUDA_CHECK(cudaMemcpyAsync(twiddles.data(), table.data(), table.size() * sizeof(Complex),
                                        cudaMemcpyHostToDevice, upload.get()));
    }
    if (!rounded.empty()) {
      FFTMAT_CUDA_CHECK(cudaMemcpyAsync(bfloat16_spectra.data(), rounded.data(), rounded.size() * sizeof(rounded[0]),
                                        cudaMemcpyHostToDevice, upload.get()));
    }
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(upload.get()));  // the host sources may go away now
    spectra_ = std::move(spectra);
    twiddles_ = std::move(twiddles);
    bfloat16_spectra_ = std::move(bfloat16_spectra);
  }

  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  /// Waits for the device, on the object's own device whatever is current: queued products and
  /// graph replays (which no event of the object could see) may still read the spectra.
  ~Engine() {
    ScopedDevice device(device_, std::nothrow);
    cudaDeviceSynchronize();
    spectra_ = {};
    conjugate_spectra_ = {};
    bfloat16_spectra_ = {};
    twiddles_ = {};
  }

  Index rows() const noexcept { return rows_; }
  Index cols() const noexcept { return cols_; }
  Index block_size() const noexcept { return b_; }
  Index block_rows() const noexcept { return p_; }
  Index block_cols() const noexcept { return q_; }
  Index bins() const noexcept { return bins_; }
  int device() const noexcept { return device_; }

  void multiply(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream, Op op) {
    const char* name = op == Op::normal ? "apply" : "apply_transpose";
    fftmat::detail::require(X != nullptr && Y != nullptr, name, ": null device pointer");
    const Index chunk = chunk_tokens();  // read once: another thread may change it meanwhile
    check_tokens(T, chunk, name);
    ScopedDevice device(device_);
    const bool capturing = is_capturing(stream);
    const std::shared_ptr<StreamContext> context = StreamRegistry::instance().get(device_, stream, capturing, name);
    const Complex* conjugate = op == Op::adjoint && T > 1 ? conjugate_spectra(capturing, name) : nullptr;

    std::lock_guard<std::mutex> lock(context->mutex());
    reserve(*context, T, chunk, op, stream, capturing, name);  // everything first: nothing is queued if it throws
    const Index in_dim = op == Op::normal ? cols_ : rows_, out_dim = op == Op::normal ? rows_ : cols_;
    for (Index done = 0; done < T;) {
      const Index piece = next_piece(T - done, chunk);
      enqueue_piece(*context, X + done * in_dim, Y + done * out_dim, piece, stream, op, conjugate);
      done += piece;
    }
  }

  /// Allocates, outside any capture, what products of up to `max_tokens` tokens on `stream` need.
  void prepare(Index max_tokens, cudaStream_t stream) {
    const Index chunk = chunk_tokens();
    check_tokens(max_tokens, chunk, "prepare");
    ScopedDevice device(device_);
    const bool capturing = is_capturing(stream);
    fftmat::detail::require(!capturing, "prepare: allocates, so it must not run inside a stream capture");
    const std::shared_ptr<StreamContext> context = StreamRegistry::instance().get(device_, stream, false, "prepare");
    if (max_tokens > 1) conjugate_spectra(false, "prepare");
    std::lock_guard<std::mutex> lock(context->mutex());
    for (Op op : {Op::normal, Op::adjoint}) {
      for (Index tokens = 1; tokens <= max_tokens && tokens <= chunk; tokens *= 2) {
        reserve(*context, tokens, chunk, op, stream, false, "prepare");
      }
    }
  }

 private:
  void check_tokens(Index T, Index chunk, const char* name) const {
    fftmat::detail::require(T > 0, name, ": the number of tokens T must be positive, got ", T);
    fftmat::detail::require(chunk <= INT_MAX / (b_ * std::max(p_, q_)), name, ": chunks of ", chunk,
                            " tokens of a ", rows_, "x", cols_,
                            " matrix exceed the 32-bit sizes of cuFFT plans; lower set_chunk_tokens()");
  }

  PlanKey plan_key(Index blocks, Index tokens, bool forward) const noexcept {
    return PlanKey{static_cast<int>(b_), static_cast<int>(blocks), static_cast<int>(tokens),
                   forward ? Types<Scalar>::r2c : Types<Scalar>::c2r};
  }
  const OneTokenPlan& one_token(Op op) const noexcept { return one_token_[op == Op::normal ? 0 : 1]; }

  /// Makes sure the stream holds the workspace, the arrival counters and every plan the pieces of
  /// a T-token product use.
  void reserve(StreamContext& context, Index T, Index chunk, Op op, cudaStream_t stream, bool capturing,
               const char* name) {
    const Index in_blocks = op == Op::normal ? q_ : p_, out_blocks = op == Op::normal ? p_ : q_;
    const Index largest = next_piece(T, chunk);
    const std::size_t bytes = static_cast<std::size_t>(bins_ * std::max(p_, q_) * largest) * sizeof(Complex);
    const char* advice = ": make the first call with this many tokens on this stream (or prepare()) before the "
                         "stream capture begins";
    if (!context.workspace_fits(bytes)) {
      fftmat::detail::require(!capturing, name, ": T = ", T, " needs a larger workspace on this stream", advice);
      context.reserve_workspace(bytes);
    }
    // Piece sizes: the chunk (when T >= chunk) and the binary digits of the remainder below it.
    const Index remainder = T >= chunk ? T % chunk : T;
    for (Index piece = 1; piece <= largest; piece *= 2) {
      if (piece != largest && (remainder & piece) == 0) continue;
      if (piece == 1 && one_token(op).usable()) {  // one launch, no cuFFT: counters only
        const std::size_t tiles = static_cast<std::size_t>(one_token(op).tiles);
        if (context.counters_fit(tiles)) continue;
        fftmat::detail::require(!capturing, name, ": T = ", T, " needs arrival counters on this stream", advice);
        context.reserve_counters(tiles, stream);
        continue;
      }
      if (b_ == 1) continue;  // no cuFFT: length-1 transforms are copies
      const PlanKey keys[2] = {plan_key(in_blocks, piece, true), plan_key(out_blocks, piece, false)};
      for (const PlanKey& key : keys) {
        if (context.plans().find(key) != nullptr) continue;
        fftmat::detail::require(!capturing, name, ": T = ", T, " needs a cuFFT plan for ", piece,
                                "-token pieces on this stream", advice);
        context.plans().get(key);
      }
    }
  }

  /// The conjugated spectra, made on first use on a stream of their own (from spectra that are
  /// complete since construction), so no caller's stream has to wait for them.
  const Complex* conjugate_spectra(bool capturing, const char* name) {
    std::lock_guard<std::mutex> lock(conjugate_mutex_);
    if (conjugate_spectra_.empty()) {
      fftmat::detail::require(!capturing, name,
                              ": the first transposed product of more than one token makes the conjugated "
                              "spectra; make it (or prepare()) before the stream capture begins");
      DeviceBuffer<Complex> conjugate(spectra_.size());
      Stream side;
      thrust::device_ptr<const Complex> source(spectra_.data());
      thrust::transform(thrust::cuda::par_nosync.on(side.get()), source, source + spectra_.size(),
                        thrust::device_ptr<Complex>(conjugate.data()), Conjugate<Complex>());
      FFTMAT_CUDA_CHECK_LAUNCH();
      FFTMAT_CUDA_CHECK(cudaStreamSynchronize(side.get()));
      conjugate_spectra_ = std::move(conjugate);
    }
    return conjugate_spectra_.data();
  }

  void enqueue_piece(StreamContext& context, const Scalar* X, Scalar* Y, Index tokens, cudaStream_t stream, Op op,
                     const Complex* conjugate) {
    if (tokens == 1 && one_token(op).usable()) {
      enqueue_one_token(context, X, Y, stream, op);
      return;
    }
    const Index in_blocks = op == Op::normal ? q_ : p_, out_blocks = op == Op::normal ? p_ : q_;
    const int p = static_cast<int>(p_), q = static_cast<int>(q_), bins = static_cast<int>(bins_);
    Complex* x_hat = static_cast<Complex*>(context.input());
    Complex* y_hat = static_cast<Complex*>(context.output());

    // 1. Forward transforms, landing frequency-major.
    forward(context, X, x_hat, in_blocks, tokens, stream);

    // 2. Per-bin products: a GEMV kernel for one token (on the bfloat16 copy where there is one),
    //    cuBLAS for more.
    if (tokens == 1) {
      bool used_bfloat16 = false;
      if constexpr (std::is_same_v<Scalar, float>) {  // bfloat16 pairs widen to float2 only
        used_bfloat16 = op == Op::normal && !bfloat16_spectra_.empty();
        if (used_bfloat16) enqueue_bin_gemv(bfloat16_spectra_.data(), x_hat, y_hat, out_blocks, stream, op);
      }
      if (!used_bfloat16) enqueue_bin_gemv(spectra_.data(), x_hat, y_hat, out_blocks, stream, op);
    } else {
      const BinProducts g = bin_products(op == Op::adjoint, p, q, static_cast<int>(tokens), bins);
      const Complex one{1, 0}, zero{0, 0};
      constexpr cudaDataType_t type = Types<Scalar>::complex_type;
      FFTMAT_CUBLAS_CHECK(cublasGemmStridedBatchedEx(
          context.blas(), g.transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N, CUBLAS_OP_N, g.m, g.n, g.k, &one,
          op == Op::normal ? spectra_.data() : conjugate, type, g.lda, g.stride_a, x_hat, type, g.ldb, g.stride_b,
          &zero, y_hat, type, g.ldc, g.stride_c, g.batch, compute_, CUBLAS_GEMM_DEFAULT));
    }
    // 3. Inverse transforms from the frequency-major layout into Y (C2R consumes y_hat).
    inverse(context, y_hat, Y, out_blocks, tokens, stream);
  }

  /// A one-token product in one launch of one_token_product (kernels.cuh).
  void enqueue_one_token(StreamContext& context, const Scalar* X, Scalar* Y, cudaStream_t stream, Op op) {
    const Index in_dim = op == Op::normal ? cols_ : rows_, out_dim = op == Op::normal ? rows_ : cols_;
    // Thread blocks write Y while others still read X: an input that overlaps the output (an
    // in-place product) is read from a copy in the workspace, which holds bins*in_blocks complex
    // values, more than the in_blocks*b reals of X.
    const auto x_begin = reinterpret_cast<std::uintptr_t>(X), y_begin = reinterpret_cast<std::uintptr_t>(Y);
    const std::uintptr_t x_bytes = static_cast<std::uintptr_t>(in_dim) * sizeof(Scalar);
    const std::uintptr_t y_bytes = static_cast<std::uintptr_t>(out_dim) * sizeof(Scalar);
    if (x_begin < y_begin + y_bytes && y_begin < x_begin + x_bytes) {
      Scalar* copy = static_cast<Scalar*>(context.input());
      FFTMAT_CUDA_CHECK(cudaMemcpyAsync(copy, X, x_bytes, cudaMemcpyDeviceToDevice, stream));
      X = copy;
    }
    const OneTokenPlan& plan = one_token(op);
    Complex* partial = static_cast<Complex*>(context.output());
    unsigned* counters = context.counters();
    const int p = static_cast<int>(p_), q = static_cast<int>(q_), b = static_cast<int>(b_);
    const unsigned grid = static_cast<unsigned>(plan.grid());
    if (op == Op::normal) {
      if constexpr (std::is_same_v<Scalar, float>) {  // bfloat16 pairs widen to float2 only
        if (!bfloat16_spectra_.empty()) {
          one_token_product<false><<<grid, kThreads, plan.shared_bytes, stream>>>(
              bfloat16_spectra_.data(), X, twiddles_.data(), partial, counters, Y, p, q, b, plan);
          FFTMAT_CUDA_CHECK_LAUNCH();
          return;
        }
      }
      one_token_product<false><<<grid, kThreads, plan.shared_bytes, stream>>>(
          spectra_.data(), X, twiddles_.data(), partial, counters, Y, p, q, b, plan);
    } else {
      one_token_product<true><<<grid, kThreads, plan.shared_bytes, stream>>>(
          spectra_.data(), X, twiddles_.data(), partial, counters, Y, p, q, b, plan);
    }
    FFTMAT_CUDA_CHECK_LAUNCH();
  }

  /// A one-token piece's per-bin products from spectra stored as S into y_hat, for the inverse
  /// cuFFT (shapes without a one-token plan).
  template <class S>
  void enqueue_bin_gemv(const S* spectra, const Complex* x_hat, Complex* y_hat, Index out_blocks,
                        cudaStream_t stream, Op op) {
    const int p = static_cast<int>(p_), q = static_cast<int>(q_);
    // At most bins * max(p, q) <= bins * p * q blocks, which the constructor bounded by INT_MAX.
    const unsigned grid = static_cast<unsigned>((out_blocks + kWarps - 1) / kWarps * bins_);
    if (op == Op::normal) {
      gemv_bins<false><<<grid, kThreads, 0, stream>>>(spectra, x_hat, y_hat, p, q);
    } else {
      gemv_bins<true><<<grid, kThreads, 0, stream>>>(spectra, x_hat, y_hat, p, q);
    }
    FFTMAT_CUDA_CHECK_LAUNCH();
  }

  /// Half spectra of blocks*tokens blocks of b reals (contiguous) into the frequency-major layout.
  void forward(StreamContext& context, const Scalar* X, Complex* x_hat, Index blocks, Index tokens,
               cudaStream_t stream) {
    if (b_ == 1) {
      thrust::transform(thrust::cuda::par_nosync.on(stream), X, X + blocks * tokens, x_hat,
                        ToComplex<Scalar, Complex>());
      FFTMAT_CUDA_CHECK_LAUNCH();
      return;
    }
    const FftPlan& plan = context.plans().get(plan_key(blocks, tokens, true));
    FFTMAT_CUFFT_CHECK(Types<Scalar>::forward(plan.get(), X, x_hat));
  }

  /// Inverse of forward() without the 1/b (folded into the spectra); consumes y_hat.
  void inverse(StreamContext& context, Complex* y_hat, Scalar* Y, Index blocks, Index tokens, cudaStream_t stream) {
    if (b_ == 1) {
      thrust::transform(thrust::cuda::par_nosync.on(stream), y_hat, y_hat + blocks * tokens, Y,
                        RealPart<Scalar, Complex>());
      FFTMAT_CUDA_CHECK_LAUNCH();
      return;
    }
    const FftPlan& plan = context.plans().get(plan_key(blocks, tokens, false));
    FFTMAT_CUFFT_CHECK(Types<Scalar>::inverse(plan.get(), y_hat, Y));
  }

  Index rows_ = 0, cols_ = 0, b_ = 0, p_ = 0, q_ = 0, bins_ = 0;
  int device_ = 0;
  OneTokenPlan one_token_[2];  // normal, adjoint
  cublasComputeType_t compute_ = Types<Scalar>::compute;
  DeviceBuffer<Complex> spectra_, twiddles_;  // twiddles: empty without a one-token plan
  DeviceBuffer<Complex> conjugate_spectra_;
  DeviceBuffer<__nv_bfloat162> bfloat16_spectra_;  // empty unless SpectrumPrecision::bfloat16
  std::mutex conjugate_mutex_;
};

}  // namespace detail

/// A block-circulant matrix on the GPU, built from its CPU counterpart (spectra uploaded once, on
/// the device current at construction, through a stream of its own). The destructor waits for the
/// device (queued calls and graph replays may still read the spectra). Same shapes and semantics
/// as fftmat::BlockCirculant: apply(X, Y, T) computes Y = A X for X n x T and Y m x T
/// column-major on the device (token t's vector contiguous at X + t*n); apply_transpose computes
/// Y = A^T X. X and Y may be the same buffer (m == n): each piece of tokens is transformed before
/// its part of Y is written. Calls are asynchronous on `stream`. Scalar: float or double.
template <class Scalar>
class BlockCirculant {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "fftmat::cuda::BlockCirculant<Scalar>: float or double");

 public:
  using Index = std::ptrdiff_t;

  /// Throws fftmat::invalid_argument for a zero-padded matrix (or TF32 / bfloat16 products for double),
  /// fftmat::cuda_error when a CUDA, cuFFT or cuBLAS call fails (no device, out of memory).
  explicit BlockCirculant(const fftmat::BlockCirculant<Scalar>& A, ProductPrecision precision = ProductPrecision::full)
      : engine_(std::make_unique<detail::Engine<Scalar>>(std::vector<const fftmat::BlockCirculant<Scalar>*>{&A},
                                                         precision)) {}
  /// The rows of several matrices with the same columns, block size and spectrum precision,
  /// stacked in order: apply gives [A_1 x; A_2 x; ...] with one transform of x, so Llama's gate
  /// and up projections, BlockCirculant({&gate, &up}), cost one launch per token.
  explicit BlockCirculant(std::initializer_list<const fftmat::BlockCirculant<Scalar>*> stacked_rows,
                          ProductPrecision precision = ProductPrecision::full)
      : engine_(std::make_unique<detail::Engine<Scalar>>(std::vector<const fftmat::BlockCirculant<Scalar>*>(stacked_rows),
                                                         precision)) {}

  Index rows() const { return engine().rows(); }
  Index cols() const { return engine().cols(); }
  Index block_size() const { return engine().block_size(); }
  Index block_rows() const { return engine().block_rows(); }  ///< p
  Index block_cols() const { return engine().block_cols(); }  ///< q
  Index bins() const { return engine().bins(); }
  int device() const { return engine().device(); }  ///< the CUDA device the spectra live on

  /// Y = A X: X is cols() x T, Y rows() x T, column-major device arrays. Asynchronous on stream.
  void apply(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream = nullptr) const {
    engine().multiply(X, Y, T, stream, detail::Op::normal);
  }
  /// Y = A^T X: X is rows() x T, Y cols() x T.
  void apply_transpose(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream = nullptr) const {
    engine().multiply(X, Y, T, stream, detail::Op::adjoint);
  }

  /// Convenience overloads: X must hold cols() * T values (rows() * T for the transpose); Y is
  /// resized to the result's size when it differs (a synchronous Thrust allocation).
  void apply(const thrust::device_vector<Scalar>& X, thrust::device_vector<Scalar>& Y, Index T,
             cudaStream_t stream = nullptr) const {
    check_vectors(X, Y, T, cols(), rows(), "apply");
    apply(thrust::raw_pointer_cast(X.data()), thrust::raw_pointer_cast(Y.data()), T, stream);
  }
  void apply_transpose(const thrust::device_vector<Scalar>& X, thrust::device_vector<Scalar>& Y, Index T,
                       cudaStream_t stream = nullptr) const {
    check_vectors(X, Y, T, rows(), cols(), "apply_transpose");
    apply_transpose(thrust::raw_pointer_cast(X.data()), thrust::raw_pointer_cast(Y.data()), T, stream);
  }

  /// Makes, outside any stream capture, what products (and transposed products) of up to
  /// `max_tokens` tokens on `stream` need: the stream's workspace and cuFFT plans and the
  /// conjugated spectra. Afterwards such calls allocate nothing and can be captured.
  void prepare(Index max_tokens, cudaStream_t stream = nullptr) const { engine().prepare(max_tokens, stream); }

 private:
  detail::Engine<Scalar>& engine() const {
    fftmat::detail::require(engine_ != nullptr, "use of a moved-from fftmat::cuda::BlockCirculant");
    return *engine_;
  }
  static void check_vectors(const thrust::device_vector<Scalar>& X, thrust::device_vector<Scalar>& Y, Index T,
                            Index in_dim, Index out_dim, const char* name) {
    fftmat::detail::require(T > 0, name, ": the number of tokens T must be positive, got ", T);
    fftmat::detail::require(static_cast<Index>(X.size()) == in_dim * T, name, ": input holds ", X.size(),
                            " values, expected ", in_dim, "x", T, " = ", in_dim * T);
    fftmat::detail::require(&X != &Y || in_dim == out_dim, name, ": input and output are the same vector but ",
                            "the result has a different size");
    if (static_cast<Index>(Y.size()) != out_dim * T) Y.resize(static_cast<std::size_t>(out_dim * T));
  }

  std::unique_ptr<detail::Engine<Scalar>> engine_;
};

}  // namespace fftmat::cuda
