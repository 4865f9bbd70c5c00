#pragma once
// Status checks for the CUDA runtime, cuFFT and cuBLAS. Every call the GPU backend makes goes
// through one of the FFTMAT_*_CHECK macros, which throw fftmat::cuda_error naming the call, the
// file and line, and the decoded status. Host-only: usable from any C++ compiler that sees the
// CUDA headers.

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <cufft.h>

#include <string>

#include "../error.hpp"

namespace fftmat {

/// A failed CUDA runtime, cuFFT or cuBLAS call (or a kernel launch). what() names the call, the
/// source location and the library's status; status() is the raw numeric status code.
class cuda_error : public error {
 public:
  cuda_error(const std::string& message, int status) : error(message), status_(status) {}
  int status() const noexcept { return status_; }

 private:
  int status_;
};

namespace cuda::detail {

/// cuFFT has no status-to-string function; the names follow cufft.h.
inline const char* cufft_status_name(cufftResult status) noexcept {
  switch (status) {
    case CUFFT_SUCCESS: return "CUFFT_SUCCESS";
    case CUFFT_INVALID_PLAN: return "CUFFT_INVALID_PLAN";
    case CUFFT_ALLOC_FAILED: return "CUFFT_ALLOC_FAILED";
    case CUFFT_INVALID_TYPE: return "CUFFT_INVALID_TYPE";
    case CUFFT_INVALID_VALUE: return "CUFFT_INVALID_VALUE";
    case CUFFT_INTERNAL_ERROR: return "CUFFT_INTERNAL_ERROR";
    case CUFFT_EXEC_FAILED: return "CUFFT_EXEC_FAILED";
    case CUFFT_SETUP_FAILED: return "CUFFT_SETUP_FAILED";
    case CUFFT_INVALID_SIZE: return "CUFFT_INVALID_SIZE";
    case CUFFT_UNALIGNED_DATA: return "CUFFT_UNALIGNED_DATA";
    case CUFFT_INVALID_DEVICE: return "CUFFT_INVALID_DEVICE";
    case CUFFT_NO_WORKSPACE: return "CUFFT_NO_WORKSPACE";
    case CUFFT_NOT_IMPLEMENTED: return "CUFFT_NOT_IMPLEMENTED";
    case CUFFT_NOT_SUPPORTED: return "CUFFT_NOT_SUPPORTED";
#if defined(CUFFT_VERSION) && CUFFT_VERSION >= 12000
    case CUFFT_MISSING_DEPENDENCY: return "CUFFT_MISSING_DEPENDENCY";
    case CUFFT_NVRTC_FAILURE: return "CUFFT_NVRTC_FAILURE";
    case CUFFT_NVJITLINK_FAILURE: return "CUFFT_NVJITLINK_FAILURE";
    case CUFFT_NVSHMEM_FAILURE: return "CUFFT_NVSHMEM_FAILURE";
#endif
    default: return "unknown cufftResult";
  }
}

[[noreturn]] inline void throw_status(const char* call, const char* file, int line, const char* name,
                                      const char* description, int status) {
  throw cuda_error(fftmat::detail::concat(call, " failed at ", file, ":", line, ": ", name, " (", description,
                                          ", status ", status, ")"),
                   status);
}

// One checker per status type, taking exactly that type: an argument of another status type (or
// a plain int) does not convert, so a call checked with the wrong macro fails to compile.

inline void check_cuda(cudaError_t status, const char* call, const char* file, int line) {
  if (status != cudaSuccess) {
    // The runtime also keeps a failed call's status as the thread's "last error"; consumed here so
    // that a later launch check (cudaGetLastError) reports that launch, not this call. A sticky
    // error (a faulted context) stays and is reported again by every later call.
    static_cast<void>(cudaGetLastError());
    throw_status(call, file, line, cudaGetErrorName(status), cudaGetErrorString(status), static_cast<int>(status));
  }
}

inline void check_cufft(cufftResult status, const char* call, const char* file, int line) {
  if (status != CUFFT_SUCCESS) {
    throw_status(call, file, line, cufft_status_name(status), "cuFFT", static_cast<int>(status));
  }
}

inline void check_cublas(cublasStatus_t status, const char* call, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw_status(call, file, line, cublasGetStatusName(status), cublasGetStatusString(status),
                 static_cast<int>(status));
  }
}

}  // namespace cuda::detail
}  // namespace fftmat

/// Throws fftmat::cuda_error unless the CUDA runtime call (a cudaError_t) returns cudaSuccess.
#define FFTMAT_CUDA_CHECK(call) ::fftmat::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
/// Throws fftmat::cuda_error unless the cuFFT call (a cufftResult) returns CUFFT_SUCCESS.
#define FFTMAT_CUFFT_CHECK(call) ::fftmat::cuda::detail::check_cufft((call), #call, __FILE__, __LINE__)
/// Throws fftmat::cuda_error unless the cuBLAS call (a cublasStatus_t) returns CUBLAS_STATUS_SUCCESS.
#define FFTMAT_CUBLAS_CHECK(call) ::fftmat::cuda::detail::check_cublas((call), #call, __FILE__, __LINE__)
/// Checks the launch of the kernel just issued (configuration errors surface here; faults inside
/// the kernel surface at the next synchronising call).
#define FFTMAT_CUDA_CHECK_LAUNCH() FFTMAT_CUDA_CHECK(cudaGetLastError())
