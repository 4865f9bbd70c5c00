#pragma once
// cuFFT plans for batched length-b real transforms in the frequency-major layout, cached per
// (b, batch, direction) by the object that owns them.
//
// Layout (DESIGN.md section 2). `batch` blocks of b reals, block k contiguous at k*b (for the
// activations, k = t*blocks + j, so the column-major dim x T matrix is exactly this), and their
// half spectra stored frequency-major: bin f of block k at f*batch + k. With cuFFT's advanced
// layout that is, forward, istride 1, idist b, ostride batch, odist 1; inverse the mirror image.
// Every bin's (blocks x T) matrix is then contiguous and column-major, which is what one strided
// batched GEMM over the bins consumes, and no separate transpose pass is needed.
//
// Plans depend on T (through batch and the stride), so an object holds one pair per distinct
// token count it has seen; a plan is created on the first call with a given T and never evicted
// (a graph a user captured may still reference it), until clear() or destruction. A plan is
// bound to the caller's stream at every execution (cufftSetStream); the owning object serialises
// calls, so plans need no lock of their own. Each plan owns its cuFFT work area (auto-allocated).

#include <cufft.h>

#include <memory>
#include <utility>
#include <vector>

#include "error.hpp"

namespace fftmat::cuda::detail {

enum class Direction { forward, inverse };

/// RAII cufftHandle.
class FftPlan {
 public:
  FftPlan() = default;
  FftPlan(int b, int batch, Direction direction, cufftType type) {
    FFTMAT_CUFFT_CHECK(cufftCreate(&plan_));
    valid_ = true;  // from here on the destructor releases the handle, even if planning throws
    const int bins = b / 2 + 1;
    int size[1] = {b};
    int real_embed[1] = {b};
    int complex_embed[1] = {bins};
    std::size_t work_size = 0;
    if (direction == Direction::forward) {
      FFTMAT_CUFFT_CHECK(cufftMakePlanMany(plan_, 1, size, real_embed, /*istride=*/1, /*idist=*/b, complex_embed,
                                           /*ostride=*/batch, /*odist=*/1, type, batch, &work_size));
    } else {
      FFTMAT_CUFFT_CHECK(cufftMakePlanMany(plan_, 1, size, complex_embed, /*istride=*/batch, /*idist=*/1,
                                           real_embed, /*ostride=*/1, /*odist=*/b, type, batch, &work_size));
    }
  }
  FftPlan(const FftPlan&) = delete;
  FftPlan& operator=(const FftPlan&) = delete;
  FftPlan(FftPlan&& other) noexcept : plan_(other.plan_), valid_(std::exchange(other.valid_, false)) {}
  FftPlan& operator=(FftPlan&& other) noexcept {
    if (this != &other) {
      reset();
      plan_ = other.plan_;
      valid_ = std::exchange(other.valid_, false);
    }
    return *this;
  }
  ~FftPlan() { reset(); }

  /// The handle, bound to `stream` for the next execution.
  cufftHandle bind(cudaStream_t stream) const {
    FFTMAT_CUFFT_CHECK(cufftSetStream(plan_, stream));
    return plan_;
  }

 private:
  void reset() noexcept {
    if (valid_) cufftDestroy(plan_);
    valid_ = false;
  }
  cufftHandle plan_ = 0;
  bool valid_ = false;
};

/// The plans of one object. Not thread-safe: the owner holds its lock while using it.
class PlanCache {
 public:
  explicit PlanCache(cufftType r2c = CUFFT_R2C, cufftType c2r = CUFFT_C2R) : r2c_(r2c), c2r_(c2r) {}

  /// The plan for `batch` blocks of length b in `direction`, created on first use.
  const FftPlan& get(int b, int batch, Direction direction) {
    for (const Entry& entry : entries_) {
      if (entry.b == b && entry.batch == batch && entry.direction == direction) return *entry.plan;
    }
    auto plan = std::make_unique<FftPlan>(b, batch, direction, direction == Direction::forward ? r2c_ : c2r_);
    entries_.push_back(Entry{b, batch, direction, std::move(plan)});
    return *entries_.back().plan;
  }

  bool contains(int b, int batch, Direction direction) const noexcept {
    for (const Entry& entry : entries_) {
      if (entry.b == b && entry.batch == batch && entry.direction == direction) return true;
    }
    return false;
  }

  std::size_t size() const noexcept { return entries_.size(); }
  /// Destroys every plan (the caller makes sure no queued work still uses them).
  void clear() noexcept { entries_.clear(); }

 private:
  struct Entry {
    int b;
    int batch;
    Direction direction;
    std::unique_ptr<FftPlan> plan;  // stable address while the vector grows
  };
  cufftType r2c_, c2r_;
  std::vector<Entry> entries_;
};

}  // namespace fftmat::cuda::detail
