#pragma once
// cuFFT plans for batched length-b real transforms in the frequency-major layout (layout.hpp),
// cached per stream (stream_context.hpp) and shared by every matrix used on that stream.
//
// Products are cut into pieces of power-of-two token counts no larger than the chunk size
// (stream_context.hpp), so the plans a stream ever holds are, per (b, blocks, precision,
// direction), at most log2(chunk) + 1: the cache is bounded by the set of matrix shapes in use,
// whatever token counts the calls bring. Plans are never evicted (a captured CUDA graph may
// reference one); they go with their stream's resources. Each plan is bound to its stream once,
// at creation, and owns its cuFFT work area.

#include <cufft.h>

#include <memory>
#include <utility>
#include <vector>

#include "error.hpp"
#include "layout.hpp"

namespace fftmat::cuda::detail {

/// What identifies a plan: block size, blocks per token, tokens, and the transform type (which
/// gives precision and direction).
struct PlanKey {
  int b;
  int blocks;
  int tokens;
  cufftType type;
  friend bool operator==(const PlanKey& x, const PlanKey& y) noexcept {
    return x.b == y.b && x.blocks == y.blocks && x.tokens == y.tokens && x.type == y.type;
  }
};

inline bool is_forward(cufftType type) noexcept { return type == CUFFT_R2C || type == CUFFT_D2Z; }

/// RAII cufftHandle, planned for `key` and bound to `stream`.
class FftPlan {
 public:
  FftPlan(const PlanKey& key, cudaStream_t stream) {
    FFTMAT_CUFFT_CHECK(cufftCreate(&plan_));
    try {
      make(key, stream);
    } catch (...) {
      cufftDestroy(plan_);  // a throwing constructor runs no destructor
      throw;
    }
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  ~FftPlan() { cufftDestroy(plan_); }
  cufftHandle get() const noexcept { return plan_; }

 private:
  void make(const PlanKey& key, cudaStream_t stream) {
    const bool forward = is_forward(key.type);
    FftLayout layout = forward ? forward_layout(key.b, key.blocks, key.tokens)
                               : inverse_layout(key.b, key.blocks, key.tokens);
    int real_embed[1] = {key.b};
    int complex_embed[1] = {key.b / 2 + 1};
    std::size_t work_size = 0;
    FFTMAT_CUFFT_CHECK(cufftMakePlanMany(plan_, 1, &layout.n, forward ? real_embed : complex_embed, layout.istride,
                                         layout.idist, forward ? complex_embed : real_embed, layout.ostride,
                                         layout.odist, key.type, layout.batch, &work_size));
    FFTMAT_CUFFT_CHECK(cufftSetStream(plan_, stream));
  }
  cufftHandle plan_ = 0;
};

/// The plans of one stream. Not thread-safe: the stream context's lock is held while using it.
class PlanCache {
 public:
  explicit PlanCache(cudaStream_t stream) : stream_(stream) {}

  /// The plan for `key`, or null when it has not been created.
  const FftPlan* find(const PlanKey& key) const noexcept {
    for (const Entry& entry : entries_) {
      if (entry.key == key) return entry.plan.get();
    }
    return nullptr;
  }

  /// The plan for `key`, created on first use (a failed creation leaves the cache as it was).
  const FftPlan& get(const PlanKey& key) {
    if (const FftPlan* plan = find(key)) return *plan;
    auto plan = std::make_unique<FftPlan>(key, stream_);
    entries_.reserve(entries_.size() + 1);  // may throw before the plan changes hands
    entries_.push_back(Entry{key, std::move(plan)});
    return *entries_.back().plan;
  }

  std::size_t size() const noexcept { return entries_.size(); }

 private:
  struct Entry {
    PlanKey key;
    std::unique_ptr<FftPlan> plan;  // stable address while the vector grows
  };
  cudaStream_t stream_;
  std::vector<Entry> entries_;
};

}  // namespace fftmat::cuda::detail
