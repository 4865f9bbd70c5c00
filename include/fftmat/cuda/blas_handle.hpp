#pragma once
// RAII cuBLAS handle bound to one stream, with a workspace of its own. A handle carries a stream
// and workspace state and must not be used by two host threads at once; its owner (a stream
// context, stream_context.hpp) serialises the calls, so the handle needs no lock of its own.

#include <cublas_v2.h>

#include <cstddef>

#include "buffer.hpp"
#include "error.hpp"

namespace fftmat::cuda::detail {

class BlasHandle {
 public:
  /// cuBLAS's recommended workspace for Hopper (cuBLAS documentation, cublasSetWorkspace()). A
  /// workspace the caller owns, rather than the library's default pool, is what makes the calls
  /// safe to capture into CUDA graphs (same section).
  static constexpr std::size_t kWorkspaceBytes = std::size_t(32) << 20;

  explicit BlasHandle(cudaStream_t stream) : workspace_(kWorkspaceBytes) {
    FFTMAT_CUBLAS_CHECK(cublasCreate(&handle_));
    try {
      FFTMAT_CUBLAS_CHECK(cublasSetStream(handle_, stream));
      FFTMAT_CUBLAS_CHECK(cublasSetWorkspace(handle_, workspace_.data(), workspace_.size()));
    } catch (...) {
      cublasDestroy(handle_);
      throw;
    }
  }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  ~BlasHandle() { cublasDestroy(handle_); }
  cublasHandle_t get() const noexcept { return handle_; }

 private:
  DeviceBuffer<std::byte> workspace_;
  cublasHandle_t handle_ = nullptr;
};

}  // namespace fftmat::cuda::detail
