#pragma once
// RAII device memory and the small CUDA runtime objects the backend owns (streams, the
// current-device guard). Move-only: each resource has exactly one owner, released in the
// destructor; destructors never throw (a failing release during unwinding is ignored).

#include <cuda_runtime_api.h>

#include <cstddef>
#include <new>
#include <utility>

#include "error.hpp"

namespace fftmat::cuda::detail {

/// A fixed-size device array of T (cudaMalloc). Growing means allocating a new buffer and
/// swapping it in, so a failed allocation leaves the old buffer (and its owner) untouched.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) {
    if (count == 0) return;
    void* raw = nullptr;
    FFTMAT_CUDA_CHECK(cudaMalloc(&raw, count * sizeof(T)));
    data_ = static_cast<T*>(raw);
    size_ = count;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }

 private:
  void release() noexcept {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// A non-blocking stream (it never synchronises with the legacy default stream).
class Stream {
 public:
  Stream() { FFTMAT_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_ != nullptr) cudaStreamDestroy(stream_);
  }
  cudaStream_t get() const noexcept { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

/// Makes `device` current for a scope and restores the previous device (objects are bound to the
/// device that was current when they were built; calls from a thread on another device still work).
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) : device_(device) {
    FFTMAT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) FFTMAT_CUDA_CHECK(cudaSetDevice(device));
  }
  /// For destructors: switches when it can and otherwise leaves the current device alone.
  ScopedDevice(int device, std::nothrow_t) noexcept : device_(device) {
    if (cudaGetDevice(&previous_) != cudaSuccess || (previous_ != device && cudaSetDevice(device) != cudaSuccess)) {
      previous_ = device;  // nothing to restore
    }
  }
  ScopedDevice(const ScopedDevice&) = delete;
  ScopedDevice& operator=(const ScopedDevice&) = delete;
  ~ScopedDevice() {
    if (previous_ != device_) cudaSetDevice(previous_);
  }

 private:
  int previous_ = 0;
  int device_ = 0;
};

}  // namespace fftmat::cuda::detail
