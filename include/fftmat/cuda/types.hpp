#pragma once
// Per-precision names of the cuFFT and cuBLAS entry points, so the GPU matrix types are written
// once for float and double. The complex types are CUDA's float2 / double2 (cufftComplex is
// cuComplex is float2), laid out like std::complex, so spectra upload with a plain copy.

#include <cublas_v2.h>
#include <cufft.h>

#include <complex>

namespace fftmat::cuda::detail {

template <class Scalar>
struct Types;

template <>
struct Types<float> {
  using Complex = cufftComplex;
  static constexpr cufftType r2c = CUFFT_R2C;
  static constexpr cufftType c2r = CUFFT_C2R;
  // cuFFT's out-of-place R2C leaves its input intact; the signature is just not const.
  static cufftResult forward(cufftHandle plan, const float* in, Complex* out) {
    return cufftExecR2C(plan, const_cast<float*>(in), out);
  }
  // Out-of-place C2R may overwrite its input: callers pass scratch.
  static cufftResult inverse(cufftHandle plan, Complex* in, float* out) { return cufftExecC2R(plan, in, out); }
  static cublasStatus_t gemm_strided_batched(cublasHandle_t handle, cublasOperation_t op_a, int m, int n, int k,
                                             const Complex* A, int lda, long long stride_a, const Complex* B, int ldb,
                                             long long stride_b, Complex* C, int ldc, long long stride_c, int batch) {
    const Complex one{1.0f, 0.0f}, zero{0.0f, 0.0f};
    return cublasCgemmStridedBatched(handle, op_a, CUBLAS_OP_N, m, n, k, &one, A, lda, stride_a, B, ldb, stride_b,
                                     &zero, C, ldc, stride_c, batch);
  }
};

template <>
struct Types<double> {
  using Complex = cufftDoubleComplex;
  static constexpr cufftType r2c = CUFFT_D2Z;
  static constexpr cufftType c2r = CUFFT_Z2D;
  static cufftResult forward(cufftHandle plan, const double* in, Complex* out) {
    return cufftExecD2Z(plan, const_cast<double*>(in), out);
  }
  static cufftResult inverse(cufftHandle plan, Complex* in, double* out) { return cufftExecZ2D(plan, in, out); }
  static cublasStatus_t gemm_strided_batched(cublasHandle_t handle, cublasOperation_t op_a, int m, int n, int k,
                                             const Complex* A, int lda, long long stride_a, const Complex* B, int ldb,
                                             long long stride_b, Complex* C, int ldc, long long stride_c, int batch) {
    const Complex one{1.0, 0.0}, zero{0.0, 0.0};
    return cublasZgemmStridedBatched(handle, op_a, CUBLAS_OP_N, m, n, k, &one, A, lda, stride_a, B, ldb, stride_b,
                                     &zero, C, ldc, stride_c, batch);
  }
};

static_assert(sizeof(Types<float>::Complex) == sizeof(std::complex<float>), "complex layouts differ");
static_assert(sizeof(Types<double>::Complex) == sizeof(std::complex<double>), "complex layouts differ");

}  // namespace fftmat::cuda::detail
