#pragma once
// RAII device memory and the small CUDA runtime objects the backend owns (streams, events, the
// current-device guard). Move-only: each resource has exactly one owner, released in the
// destructor; destructors never throw (a failing free during unwinding is ignored).

#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "error.hpp"

namespace fftmat::cuda::detail {

/// Grow-only device array of T (cudaMalloc). reserve() keeps the contents only when it does not
/// reallocate; callers treat it as scratch.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(std::size_t count) { reserve(count); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), capacity_(std::exchange(other.capacity_, 0)) {}
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      capacity_ = std::exchange(other.capacity_, 0);
    }
    return *this;
  }
  ~DeviceBuffer() { release(); }

  /// Ensures room for `count` elements; returns true when it had to reallocate (the old memory
  /// is freed first, so the caller must be sure no queued work still uses it).
  bool reserve(std::size_t count) {
    if (count <= capacity_) return false;
    release();
    void* raw = nullptr;
    FFTMAT_CUDA_CHECK(cudaMalloc(&raw, count * sizeof(T)));
    data_ = static_cast<T*>(raw);
    capacity_ = count;
    return true;
  }

  T* data() const noexcept { return data_; }
  std::size_t capacity() const noexcept { return capacity_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) cudaFree(data_);
    data_ = nullptr;
    capacity_ = 0;
  }
  T* data_ = nullptr;
  std::size_t capacity_ = 0;
};

/// A CUDA event without timing (cheap to record); used to order one object's calls across streams.
class Event {
 public:
  Event() { FFTMAT_CUDA_CHECK(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming)); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  Event(Event&& other) noexcept : event_(std::exchange(other.event_, nullptr)) {}
  Event& operator=(Event&& other) noexcept {
    if (this != &other) {
      if (event_ != nullptr) cudaEventDestroy(event_);
      event_ = std::exchange(other.event_, nullptr);
    }
    return *this;
  }
  ~Event() {
    if (event_ != nullptr) cudaEventDestroy(event_);
  }
  cudaEvent_t get() const noexcept { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

/// Makes `device` current for a scope and restores the previous device (objects are bound to the
/// device that was current when they were built; calls from a thread on another device still work).
class ScopedDevice {
 public:
  explicit ScopedDevice(int device) {
    FFTMAT_CUDA_CHECK(cudaGetDevice(&previous_));
    if (previous_ != device) FFTMAT_CUDA_CHECK(cudaSetDevice(device));
    device_ = device;
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
