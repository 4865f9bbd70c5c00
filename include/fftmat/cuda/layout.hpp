#pragma once
// The arguments the GPU backend passes to cuFFT's advanced layout and to cuBLAS's strided batched
// GEMM for one piece of t tokens, in one place, so that the device code and the host test that
// replays them in float64 (tests/cuda/test_layout.cpp) use the same numbers. Host-only, no CUDA.
//
// The frequency-major layout: `blocks * t` blocks of b reals, block k contiguous at k*b (for the
// activations, k = s*blocks + j, so the column-major dim x t matrix is exactly this), and their
// half spectra with bin f of block k at f*batch + k, batch = blocks * t. cuFFT's advanced layout
// addresses element x of transform k at k*dist + x*stride (cuFFT documentation, "Advanced Data
// Layout"), so the forward transform reads with stride 1, dist b and writes with stride batch,
// dist 1; the inverse is the mirror image. Every bin's blocks x t matrix is then contiguous and
// column-major, which one strided batched GEMM over the bins consumes without a transpose pass.

namespace fftmat::cuda::detail {

/// cufftMakePlanMany's layout of a batched length-n real transform.
struct FftLayout {
  int n, batch;
  int istride, idist, ostride, odist;
};

/// R2C of `blocks * tokens` blocks of b reals into the frequency-major half spectra.
constexpr FftLayout forward_layout(int b, int blocks, int tokens) noexcept {
  const int batch = blocks * tokens;
  return FftLayout{b, batch, /*istride=*/1, /*idist=*/b, /*ostride=*/batch, /*odist=*/1};
}

/// C2R of frequency-major half spectra back into `blocks * tokens` contiguous blocks of b reals.
constexpr FftLayout inverse_layout(int b, int blocks, int tokens) noexcept {
  const int batch = blocks * tokens;
  return FftLayout{b, batch, /*istride=*/batch, /*idist=*/1, /*ostride=*/1, /*odist=*/b};
}

/// cublasGemmStridedBatchedEx's arguments (column-major; op(B) is always N) for the per-bin
/// products of one piece: Y_f = C_f X_f (normal) or Y_f = C_f^H X_f (adjoint), f < bins. The
/// spectra are row-major p x q per bin at f*p*q, which cuBLAS sees as C_f^T with ld q: the normal
/// product takes op(A) = T on them; the adjoint takes op(A) = N on the conjugated spectra, since
/// conj(C_f^T) = C_f^H and cuBLAS has no conjugate-without-transpose op.
struct BinProducts {
  bool transpose_a;  ///< op(A) = T (normal) or N (adjoint, on the conjugated spectra)
  int m, n, k;
  int lda;
  long long stride_a;
  int ldb;
  long long stride_b;
  int ldc;
  long long stride_c;
  int batch;
};

constexpr BinProducts bin_products(bool adjoint, int p, int q, int tokens, int bins) noexcept {
  const int rows = adjoint ? q : p, inner = adjoint ? p : q;
  return BinProducts{!adjoint,
                     rows,
                     tokens,
                     inner,
                     /*lda=*/q,
                     /*stride_a=*/static_cast<long long>(p) * q,
                     /*ldb=*/inner,
                     /*stride_b=*/static_cast<long long>(inner) * tokens,
                     /*ldc=*/rows,
                     /*stride_c=*/static_cast<long long>(rows) * tokens,
                     bins};
}

}  // namespace fftmat::cuda::detail
