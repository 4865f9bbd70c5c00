#pragma once
// What the GPU matrices need per (device, stream), shared by every matrix used on that stream:
// two scratch arrays for the activation spectra (layout.hpp), the arrival counters of the
// one-token kernel (kernels.cuh), the cuFFT plans (plan_cache.hpp) and a cuBLAS handle, each
// bound to the stream once.
//
// Why per stream: work queued on one stream runs in order, so all matrices can share one
// workspace there without any event, and two streams never share scratch memory, so calls on
// different streams neither race nor wait for each other. A CUDA graph captured from a stream
// uses that stream's workspace: replay it on that stream, or order the replay with that stream's
// other fftmat work (two things using one workspace at once would race).
//
// Why chunks: a product of T tokens runs as pieces of power-of-two token counts of at most
// chunk_tokens() (next_piece()), so the workspace is sized by the chunk, not by T, and the plan
// cache stays bounded (plan_cache.hpp). prepare() on a matrix sizes everything for the largest T
// the caller declares.
//
// Lifetime: workspace grows by allocating the larger arrays first and swapping them in, so a
// failed allocation leaves the stream usable with its old arrays; the replaced arrays are kept
// (not freed) while the stream's resources live, since a captured graph or queued work may still
// use them. release_stream_resources() / release_all_stream_resources() free them; until then they
// live as long as the process.

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "../error.hpp"
#include "blas_handle.hpp"
#include "buffer.hpp"
#include "error.hpp"
#include "plan_cache.hpp"

namespace fftmat::cuda {

/// The memory and plans one (device, stream) holds for the GPU matrices.
struct StreamResources {
  std::size_t workspace_bytes = 0;  ///< both scratch arrays in use
  std::size_t retired_bytes = 0;    ///< replaced arrays kept for graphs and queued work
  std::size_t counters = 0;         ///< arrival counters of the one-token kernel
  std::size_t plans = 0;            ///< cached cuFFT plans
};

namespace detail {

inline std::atomic<std::ptrdiff_t>& chunk_tokens_setting() {
  static std::atomic<std::ptrdiff_t> tokens{256};
  return tokens;
}

/// Tokens of the next piece of a product with `remaining` tokens left: the chunk while at least a
/// chunk is left, else the largest power of two not above `remaining`. Every piece is a power of
/// two (the chunk is one), so at most log2(chunk) + 1 distinct piece sizes ever occur.
constexpr std::ptrdiff_t next_piece(std::ptrdiff_t remaining, std::ptrdiff_t chunk) noexcept {
  if (remaining >= chunk) return chunk;
  std::ptrdiff_t piece = 1;
  while (piece * 2 <= remaining) piece *= 2;
  return piece;
}

inline bool is_capturing(cudaStream_t stream) {
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  FFTMAT_CUDA_CHECK(cudaStreamIsCapturing(stream, &status));
  return status != cudaStreamCaptureStatusNone;
}

class StreamContext {
 public:
  explicit StreamContext(cudaStream_t stream) : plans_(stream), blas_(stream) {}
  StreamContext(const StreamContext&) = delete;
  StreamContext& operator=(const StreamContext&) = delete;

  /// Held while enqueueing work that uses the workspace, the plans or the handle.
  std::mutex& mutex() noexcept { return mutex_; }
  PlanCache& plans() noexcept { return plans_; }
  cublasHandle_t blas() const noexcept { return blas_.get(); }
  void* input() const noexcept { return input_.data(); }
  void* output() const noexcept { return output_.data(); }
  unsigned* counters() const noexcept { return reinterpret_cast<unsigned*>(counters_.data()); }
  bool workspace_fits(std::size_t bytes) const noexcept { return input_.size() >= bytes; }
  bool counters_fit(std::size_t count) const noexcept { return counters_.size() >= count * sizeof(unsigned); }

  /// Makes both scratch arrays at least `bytes` long (allocate, then swap; see the file comment).
  void reserve_workspace(std::size_t bytes) {
    if (workspace_fits(bytes)) return;
    DeviceBuffer<std::byte> input(bytes), output(bytes);
    retired_.reserve(retired_.size() + 2);  // the last step that can throw
    if (!input_.empty()) retired_.push_back(std::move(input_));
    if (!output_.empty()) retired_.push_back(std::move(output_));
    input_ = std::move(input);
    output_ = std::move(output);
  }

  /// At least `count` arrival counters, zero (set on `stream`, ahead of every kernel that uses
  /// them; each launch leaves them zero again). Allocate, then swap, as for the workspace.
  void reserve_counters(std::size_t count, cudaStream_t stream) {
    if (counters_fit(count)) return;
    DeviceBuffer<std::byte> counters(count * sizeof(unsigned));
    FFTMAT_CUDA_CHECK(cudaMemsetAsync(counters.data(), 0, counters.size(), stream));
    retired_.reserve(retired_.size() + 1);
    if (!counters_.empty()) retired_.push_back(std::move(counters_));
    counters_ = std::move(counters);
  }

  StreamResources resources() const noexcept {
    StreamResources result;
    result.workspace_bytes = input_.size() + output_.size();
    result.counters = counters_.size() / sizeof(unsigned);
    for (const DeviceBuffer<std::byte>& buffer : retired_) result.retired_bytes += buffer.size();
    result.plans = plans_.size();
    return result;
  }

 private:
  std::mutex mutex_;
  PlanCache plans_;
  BlasHandle blas_;
  DeviceBuffer<std::byte> input_, output_, counters_;
  std::vector<DeviceBuffer<std::byte>> retired_;
};

/// Every stream context of the process, keyed by device and stream id. Stream ids
/// (cudaStreamGetId) are unique for the life of the process, unlike handles, which the runtime
/// may hand out again after a stream is destroyed.
class StreamRegistry {
 public:
  static StreamRegistry& instance() {
    static StreamRegistry registry;
    return registry;
  }

  /// The context of `stream` on `device` (the current device), created on first use. Creation
  /// allocates, which a stream capture forbids: then it is an invalid_argument naming `caller`.
  std::shared_ptr<StreamContext> get(int device, cudaStream_t stream, bool capturing, const char* caller) {
    std::lock_guard<std::mutex> lock(mutex_);
    const std::optional<Key> key = key_of(device, stream, capturing);
    if (key) {
      auto it = contexts_.find(*key);
      if (it != contexts_.end()) return it->second;
    }
    fftmat::detail::require(!capturing, caller,
                            ": the first call on this stream allocates its workspace, plans and cuBLAS handle; "
                            "make it (or prepare()) before the stream capture begins");
    auto context = std::make_shared<StreamContext>(stream);
    contexts_.emplace(*key, context);
    return context;
  }

  StreamResources resources(int device, cudaStream_t stream) {
    const bool capturing = is_capturing(stream);
    std::shared_ptr<StreamContext> context;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      const std::optional<Key> key = key_of(device, stream, capturing);
      auto it = key ? contexts_.find(*key) : contexts_.end();
      if (it == contexts_.end()) return {};
      context = it->second;
    }
    std::lock_guard<std::mutex> lock(context->mutex());
    return context->resources();
  }

  void release(int device, cudaStream_t stream) {
    FFTMAT_CUDA_CHECK(cudaStreamSynchronize(stream));
    std::shared_ptr<StreamContext> context;  // destroyed outside the lock (it frees memory)
    std::lock_guard<std::mutex> lock(mutex_);
    const Key key = *key_of(device, stream, false);
    ids_.erase({device, stream});
    auto it = contexts_.find(key);
    if (it == contexts_.end()) return;
    context = std::move(it->second);
    contexts_.erase(it);
  }

  void release_all() {
    std::map<Key, std::shared_ptr<StreamContext>> contexts;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (const auto& entry : contexts_) {
        ScopedDevice device(entry.first.first);
        FFTMAT_CUDA_CHECK(cudaDeviceSynchronize());
      }
      contexts.swap(contexts_);
      ids_.clear();
    }
    for (auto& entry : contexts) {
      ScopedDevice device(entry.first.first);
      entry.second.reset();
    }
  }

 private:
  using Key = std::pair<int, unsigned long long>;  // device, stream id

  /// With mutex_ held. Outside a capture: the stream's id, recorded for its handle. Inside one:
  /// the id recorded at the handle's last call outside a capture, or none. The id is not queried
  /// while capturing, where any call the capture does not permit invalidates it; the recorded id
  /// serves. A handle that a new stream reuses is queried afresh at that stream's first call
  /// outside a capture.
  std::optional<Key> key_of(int device, cudaStream_t stream, bool capturing) {
    const auto handle = std::make_pair(device, stream);
    if (capturing) {
      const auto it = ids_.find(handle);
      if (it == ids_.end()) return std::nullopt;
      return Key{device, it->second};
    }
    unsigned long long id = 0;
    FFTMAT_CUDA_CHECK(cudaStreamGetId(stream, &id));
    ids_[handle] = id;
    return Key{device, id};
  }

  std::mutex mutex_;
  std::map<Key, std::shared_ptr<StreamContext>> contexts_;
  std::map<std::pair<int, cudaStream_t>, unsigned long long> ids_;  // (device, handle) -> id
};

inline int current_device() {
  int device = 0;
  FFTMAT_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

}  // namespace detail

/// Tokens per piece of a product (default 256): products of more tokens run chunk by chunk, and
/// the per-stream workspace is sized for one chunk of the largest matrix. A power of two in
/// [1, 65536]; throws fftmat::invalid_argument otherwise. Set it before the first product: plans
/// and workspace made for another chunk size stay until their stream's resources are released.
inline void set_chunk_tokens(std::ptrdiff_t tokens) {
  fftmat::detail::require(tokens >= 1 && tokens <= 65536 && (tokens & (tokens - 1)) == 0,
                          "set_chunk_tokens: the chunk must be a power of two in [1, 65536], got ", tokens);
  detail::chunk_tokens_setting().store(tokens);
}
inline std::ptrdiff_t chunk_tokens() noexcept { return detail::chunk_tokens_setting().load(); }

/// The workspace and plans held for `stream` on the current device (all zero before its first use).
inline StreamResources stream_resources(cudaStream_t stream) {
  return detail::StreamRegistry::instance().resources(detail::current_device(), stream);
}

/// Waits for `stream` (which must still exist) and frees what fftmat holds for it on the current
/// device. Graphs that captured fftmat calls on it must not be launched afterwards. Call it before
/// destroying a stream in a program that creates many streams; otherwise it is optional.
inline void release_stream_resources(cudaStream_t stream) {
  detail::StreamRegistry::instance().release(detail::current_device(), stream);
}

/// Waits for every device fftmat used and frees all per-stream resources (the same conditions).
inline void release_all_stream_resources() { detail::StreamRegistry::instance().release_all(); }

}  // namespace fftmat::cuda
