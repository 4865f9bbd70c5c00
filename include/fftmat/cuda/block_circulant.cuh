#pragma once
// fftmat::cuda::BlockCirculant: the GPU counterpart of fftmat::BlockCirculant (nvcc only).
//
// A product Y = A X (X: n x T column-major on the device, Y: m x T) runs on the caller's stream as
//   1. cuFFT R2C of the q*T input blocks straight into the frequency-major layout
//      (plan_cache.hpp): bin f of block (t, j) at f*q*T + t*q + j, so bin f's q x T matrix X_f is
//      contiguous and column-major;
//   2. T > 1: one cublas<C|Z>gemmStridedBatched over the b/2+1 bins, Y_f = C_f X_f. The spectra
//      are row-major p x q per bin, which cuBLAS (column-major) sees as C_f^T with ld q, hence
//      op(A) = T. The transpose needs C_f^H, i.e. conj(C_f^T) with op N: a conjugated copy of the
//      spectra is uploaded next to them (cuBLAS has no conjugate-without-transpose op);
//   3. cuFFT C2R of the p*T output blocks from the frequency-major layout straight into Y.
// T = 1 (decode) uses the custom kernels of kernels.cuh instead of cuBLAS: for b <= 512 the
// GEMV and the inverse transform are fused, so the whole product is two launches.
//
// Workspace (the two spectra) is owned by the object and grows to the largest T seen; plans are
// cached per T. After the first call with a given T nothing is allocated, so the calls are safe
// to capture into a CUDA graph (the first call with a new T must happen outside capture).
//
// Concurrency: one object may be called from several host threads and streams. Calls are
// serialised by a mutex (host side, just the enqueueing) and, when a call uses a different stream
// than the previous one, that stream waits on an event recorded at the end of the previous call,
// so the shared workspace is never used by two streams at once. Inside a stream capture this
// ordering is the graph's job (no event is recorded or waited on).
//
// Zero-padded matrices (fftmat::Padding::zero) are rejected: every block is exactly b long here.

#include <cuda_runtime.h>
#include <thrust/device_ptr.h>
#include <thrust/device_vector.h>
#include <thrust/execution_policy.h>
#include <thrust/system/cuda/execution_policy.h>
#include <thrust/transform.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstddef>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "../block_circulant.hpp"
#include "../error.hpp"
#include "blas_handle.hpp"
#include "buffer.hpp"
#include "error.hpp"
#include "kernels.cuh"
#include "plan_cache.hpp"
#include "types.hpp"

namespace fftmat::cuda {

namespace detail {

enum class Op { normal, adjoint };

/// Everything behind one GPU matrix; held by unique_ptr so the public type is cheaply movable
/// (the mutex is not).
template <class Scalar>
class Engine {
 public:
  using Complex = typename Types<Scalar>::Complex;
  using Index = std::ptrdiff_t;

  explicit Engine(const fftmat::BlockCirculant<Scalar>& A)
      : rows_(A.rows()),
        cols_(A.cols()),
        b_(A.block_size()),
        p_(A.block_rows()),
        q_(A.block_cols()),
        bins_(A.bins()),
        plans_(Types<Scalar>::r2c, Types<Scalar>::c2r) {
    fftmat::detail::require(A.padding() == fftmat::Padding::none || (rows_ % b_ == 0 && cols_ % b_ == 0),
                            "fftmat::cuda::BlockCirculant does not support zero-padded matrices: block size ", b_,
                            " does not divide the ", rows_, "x", cols_, " matrix");
    fftmat::detail::require(b_ <= INT_MAX && p_ <= INT_MAX && q_ <= INT_MAX && bins_ * p_ * q_ <= INT_MAX,
                            "a ", rows_, "x", cols_, " matrix with block size ", b_, " is too large for the GPU backend");
    FFTMAT_CUDA_CHECK(cudaGetDevice(&device_));

    const std::size_t count = static_cast<std::size_t>(bins_ * p_ * q_);
    spectra_.reserve(count);
    conjugate_spectra_.reserve(count);
    FFTMAT_CUDA_CHECK(cudaMemcpy(spectra_.data(), A.spectra(), count * sizeof(Complex), cudaMemcpyHostToDevice));
    thrust::device_ptr<const Complex> source(spectra_.data());
    thrust::transform(thrust::device, source, source + count, thrust::device_ptr<Complex>(conjugate_spectra_.data()),
                      Conjugate<Complex>());

    fused_ = b_ <= kFusedMaxBlock;
    if (fused_) {
      // cos/sin of 2 pi m / b in double, rounded once: the fused inverse DFT is then as accurate
      // as an FFT of the same length.
      std::vector<Complex> table(static_cast<std::size_t>(b_));
      const double pi = 3.14159265358979323846;
      for (Index m = 0; m < b_; ++m) {
        const double angle = 2.0 * pi * static_cast<double>(m) / static_cast<double>(b_);
        table[static_cast<std::size_t>(m)].x = static_cast<Scalar>(std::cos(angle));
        table[static_cast<std::size_t>(m)].y = static_cast<Scalar>(std::sin(angle));
      }
      twiddles_.reserve(table.size());
      FFTMAT_CUDA_CHECK(
          cudaMemcpy(twiddles_.data(), table.data(), table.size() * sizeof(Complex), cudaMemcpyHostToDevice));
    }
    // Room for one token either way, so the decode path never allocates.
    reserve_workspace(1);
    FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());  // the copies and the conjugation are done
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
    fftmat::detail::require(T > 0, name, ": the number of tokens T must be positive, got ", T);
    fftmat::detail::require(X != nullptr && Y != nullptr, name, ": null device pointer");
    const Index in_blocks = op == Op::normal ? q_ : p_;
    const Index out_blocks = op == Op::normal ? p_ : q_;
    fftmat::detail::require(T <= INT_MAX / (b_ * std::max(p_, q_)), name, ": T = ", T, " tokens of a ", rows_,
                            "x", cols_, " matrix exceed the 32-bit sizes of cuFFT plans");

    std::lock_guard<std::mutex> lock(mutex_);
    ScopedDevice device(device_);
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    FFTMAT_CUDA_CHECK(cudaStreamIsCapturing(stream, &capture));
    const bool capturing = capture != cudaStreamCaptureStatusNone;

    if (!capturing && has_previous_ && stream != previous_stream_) {
      FFTMAT_CUDA_CHECK(cudaStreamWaitEvent(stream, done_.get(), 0));
    }
    const int in_batch = static_cast<int>(in_blocks * T), out_batch = static_cast<int>(out_blocks * T);
    const bool needs_inverse_plan = !(T == 1 && fused_);
    if (capturing) {
      // Plans and workspace are created by cudaMalloc-ing calls, which a stream capture forbids.
      fftmat::detail::require(T <= workspace_tokens_ && has_plan(in_batch, Direction::forward) &&
                                  (!needs_inverse_plan || has_plan(out_batch, Direction::inverse)),
                              name, ": the first call with T = ", T,
                              " creates plans and workspace; make it outside the stream capture");
    }
    if (T > workspace_tokens_) reserve_workspace(T);

    try {
      enqueue(X, Y, T, stream, op, in_batch, out_batch, !needs_inverse_plan);
    } catch (...) {
      // Part of the call may be queued: later reallocations must still wait for it.
      if (!capturing && cudaEventRecord(done_.get(), stream) == cudaSuccess) {
        previous_stream_ = stream;
        has_previous_ = true;
      }
      throw;
    }
    if (!capturing) mark_done(stream);
  }

 private:
  void mark_done(cudaStream_t stream) {
    FFTMAT_CUDA_CHECK(cudaEventRecord(done_.get(), stream));
    previous_stream_ = stream;
    has_previous_ = true;
  }

  void enqueue(const Scalar* X, Scalar* Y, Index T, cudaStream_t stream, Op op, int in_batch, int out_batch,
               bool fused) {
    const char* name = op == Op::normal ? "apply" : "apply_transpose";
    const Index out_blocks = op == Op::normal ? p_ : q_;
    const int b = static_cast<int>(b_);
    const int p = static_cast<int>(p_), q = static_cast<int>(q_), bins = static_cast<int>(bins_);
    Complex* x_hat = x_hat_.data();
    Complex* y_hat = y_hat_.data();

    // 1. Forward transforms, landing frequency-major.
    forward(X, x_hat, in_batch, stream);

    if (fused) {
      // 2+3. Fused per-bin GEMV and inverse real DFT, one block per output block.
      const std::size_t shared = static_cast<std::size_t>(b_ + bins_) * sizeof(Complex);
      if (op == Op::normal) {
        fused_gemv_irdft<false, Scalar, Complex>
            <<<static_cast<unsigned>(out_blocks), kThreads, shared, stream>>>(spectra_.data(), x_hat, twiddles_.data(), Y, p, q, b);
      } else {
        fused_gemv_irdft<true, Scalar, Complex>
            <<<static_cast<unsigned>(out_blocks), kThreads, shared, stream>>>(spectra_.data(), x_hat, twiddles_.data(), Y, p, q, b);
      }
      FFTMAT_CUDA_CHECK_LAUNCH();
    } else {
      // 2. Per-bin products into y_hat (frequency-major, out_blocks x T per bin).
      if (T == 1) {
        const long long tiles = (out_blocks + kWarps - 1) / kWarps;
        const long long grid = tiles * bins_;
        fftmat::detail::require(grid <= INT_MAX, name, ": too many bins and blocks for one launch");
        if (op == Op::normal) {
          gemv_bins<false><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(spectra_.data(), x_hat, y_hat, p, q);
        } else {
          gemv_bins<true><<<static_cast<unsigned>(grid), kThreads, 0, stream>>>(spectra_.data(), x_hat, y_hat, p, q);
        }
        FFTMAT_CUDA_CHECK_LAUNCH();
      } else {
        FFTMAT_CUBLAS_CHECK(cublasSetStream(blas_.get(), stream));
        const int tokens = static_cast<int>(T);
        const long long bin_stride = static_cast<long long>(p) * q;
        if (op == Op::normal) {
          // Y_f (p x T) = op_T(C_f^T stored q x p, ld q) * X_f (q x T, ld q)
          FFTMAT_CUBLAS_CHECK(Types<Scalar>::gemm_strided_batched(
              blas_.get(), CUBLAS_OP_T, p, tokens, q, spectra_.data(), q, bin_stride, x_hat, q,
              static_cast<long long>(q) * tokens, y_hat, p, static_cast<long long>(p) * tokens, bins));
        } else {
          // Y_f (q x T) = conj(C_f^T) (stored q x p, ld q) * X_f (p x T, ld p)
          FFTMAT_CUBLAS_CHECK(Types<Scalar>::gemm_strided_batched(
              blas_.get(), CUBLAS_OP_N, q, tokens, p, conjugate_spectra_.data(), q, bin_stride, x_hat, p,
              static_cast<long long>(p) * tokens, y_hat, q, static_cast<long long>(q) * tokens, bins));
        }
      }
      // 3. Inverse transforms from the frequency-major layout into Y (C2R consumes y_hat).
      inverse(y_hat, Y, out_batch, stream);
    }
  }

 public:
  /// Frees the cached cuFFT plans (after the object's queued work has finished).
  void clear_plan_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    ScopedDevice device(device_);
    wait_for_previous();
    plans_.clear();
  }

  std::size_t cached_plans() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return plans_.size();
  }

 private:
  bool has_plan(int batch, Direction direction) const {
    return b_ == 1 || plans_.contains(static_cast<int>(b_), batch, direction);
  }

  /// Half spectra of `batch` blocks of b reals (contiguous) into the frequency-major layout.
  void forward(const Scalar* X, Complex* x_hat, int batch, cudaStream_t stream) {
    if (b_ == 1) {
      thrust::transform(thrust::cuda::par_nosync.on(stream), X, X + batch, x_hat, ToComplex<Scalar, Complex>());
      FFTMAT_CUDA_CHECK_LAUNCH();
      return;
    }
    const FftPlan& plan = plans_.get(static_cast<int>(b_), batch, Direction::forward);
    FFTMAT_CUFFT_CHECK(Types<Scalar>::forward(plan.bind(stream), X, x_hat));
  }

  /// Inverse of forward() without the 1/b (folded into the spectra); consumes y_hat.
  void inverse(Complex* y_hat, Scalar* Y, int batch, cudaStream_t stream) {
    if (b_ == 1) {
      thrust::transform(thrust::cuda::par_nosync.on(stream), y_hat, y_hat + batch, Y, RealPart<Scalar, Complex>());
      FFTMAT_CUDA_CHECK_LAUNCH();
      return;
    }
    const FftPlan& plan = plans_.get(static_cast<int>(b_), batch, Direction::inverse);
    FFTMAT_CUFFT_CHECK(Types<Scalar>::inverse(plan.bind(stream), y_hat, Y));
  }

  void wait_for_previous() {
    if (has_previous_) FFTMAT_CUDA_CHECK(cudaEventSynchronize(done_.get()));
  }

  /// Grows both spectra buffers to T tokens. Reallocation frees the old buffers, so it first
  /// waits for the object's previous call (the only work that can still use them).
  void reserve_workspace(Index T) {
    wait_for_previous();
    const Index blocks = std::max(p_, q_);
    x_hat_.reserve(static_cast<std::size_t>(bins_ * blocks * T));
    y_hat_.reserve(static_cast<std::size_t>(bins_ * blocks * T));
    workspace_tokens_ = T;
  }

  Index rows_, cols_, b_, p_, q_, bins_;
  int device_ = 0;
  bool fused_ = false;
  DeviceBuffer<Complex> spectra_, conjugate_spectra_, twiddles_;
  DeviceBuffer<Complex> x_hat_, y_hat_;
  Index workspace_tokens_ = 0;
  PlanCache plans_;
  BlasHandle blas_;
  Event done_;
  cudaStream_t previous_stream_ = nullptr;
  bool has_previous_ = false;
  mutable std::mutex mutex_;
};

}  // namespace detail

/// A block-circulant matrix on the GPU, built from its CPU counterpart (spectra uploaded once, on
/// the device current at construction). Same shapes and semantics as fftmat::BlockCirculant:
/// apply(X, Y, T) computes Y = A X for X n x T and Y m x T column-major on the device (token t's
/// vector contiguous at X + t*n); apply_transpose computes Y = A^T X. X and Y may be the same
/// buffer (m == n): all of X is transformed before Y is written. Calls are asynchronous on
/// `stream`. Scalar: float or double.
template <class Scalar>
class BlockCirculant {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>,
                "fftmat::cuda::BlockCirculant<Scalar>: float or double");

 public:
  using Index = std::ptrdiff_t;

  /// Throws fftmat::invalid_argument for a zero-padded matrix, fftmat::cuda_error when a CUDA,
  /// cuFFT or cuBLAS call fails (no device, out of memory).
  explicit BlockCirculant(const fftmat::BlockCirculant<Scalar>& A)
      : engine_(std::make_unique<detail::Engine<Scalar>>(A)) {}

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

  /// Number of cached cuFFT plans (one per direction and distinct token count used).
  std::size_t cached_plans() const { return engine().cached_plans(); }
  /// Frees the cached cuFFT plans; waits for this object's queued work first. Graphs that captured
  /// calls of this object must not be launched afterwards.
  void clear_plan_cache() { engine().clear_plan_cache(); }

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
