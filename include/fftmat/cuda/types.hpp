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
  static constexpr cudaDataType_t complex_type = CUDA_C_32F;  // for cublasGemmStridedBatchedEx
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_32F;
  // cuFFT's out-of-place R2C leaves its input intact; the signature is just not const.
  static cufftResult forward(cufftHandle plan, const float* in, Complex* out) {
    return cufftExecR2C(plan, const_cast<float*>(in), out);
  }
  // Out-of-place C2R may overwrite its input: callers pass scratch.
  static cufftResult inverse(cufftHandle plan, Complex* in, float* out) { return cufftExecC2R(plan, in, out); }
};

template <>
struct Types<double> {
  using Complex = cufftDoubleComplex;
  static constexpr cufftType r2c = CUFFT_D2Z;
  static constexpr cufftType c2r = CUFFT_Z2D;
  static constexpr cudaDataType_t complex_type = CUDA_C_64F;
  static constexpr cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
  static cufftResult forward(cufftHandle plan, const double* in, Complex* out) {
    return cufftExecD2Z(plan, const_cast<double*>(in), out);
  }
  static cufftResult inverse(cufftHandle plan, Complex* in, double* out) { return cufftExecZ2D(plan, in, out); }
};

static_assert(sizeof(Types<float>::Complex) == sizeof(std::complex<float>), "complex layouts differ");
static_assert(sizeof(Types<double>::Complex) == sizeof(std::complex<double>), "complex layouts differ");

}  // namespace fftmat::cuda::detail
