#pragma once
// RAII cuBLAS handle. One per GPU matrix object: a handle carries a stream and workspace state,
// and cuBLAS handles must not be used by two host threads at once; the owning object serialises
// its calls, so the handle needs no lock of its own.

#include <cublas_v2.h>

#include <utility>

#include "error.hpp"

namespace fftmat::cuda::detail {

class BlasHandle {
 public:
  BlasHandle() { FFTMAT_CUBLAS_CHECK(cublasCreate(&handle_)); }
  BlasHandle(const BlasHandle&) = delete;
  BlasHandle& operator=(const BlasHandle&) = delete;
  BlasHandle(BlasHandle&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  BlasHandle& operator=(BlasHandle&& other) noexcept {
    if (this != &other) {
      if (handle_ != nullptr) cublasDestroy(handle_);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~BlasHandle() {
    if (handle_ != nullptr) cublasDestroy(handle_);
  }
  cublasHandle_t get() const noexcept { return handle_; }

 private:
  cublasHandle_t handle_ = nullptr;
};

}  // namespace fftmat::cuda::detail
