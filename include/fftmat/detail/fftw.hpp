#pragma once
// FFTW plumbing: precision traits, RAII plans, aligned buffers and a thread-safe plan cache.
//
// FFTW's planner is not thread-safe (FFTW manual, section 5.4 "Thread safety"): every call that
// creates or destroys a plan runs under one process-wide mutex. Execution is thread-safe and uses
// the new-array interface (section 4.6), so one cached plan serves every buffer with the same
// layout and alignment. The cache holds its lock only around lookup and insert, as pocketfft does.

#include "internal_header_check.hpp"

#include <fftw3.h>

#include <complex>
#include <cstddef>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

#include "../error.hpp"
#include "../planner.hpp"

namespace fftmat::detail {

inline std::mutex& fftw_planner_mutex() {
  static std::mutex mutex;
  return mutex;
}

template <class Scalar>
struct fftw_traits;

template <>
struct fftw_traits<float> {
  using plan_type = fftwf_plan;
  using complex_type = fftwf_complex;
  static int alignment_of(const float* p) { return fftwf_alignment_of(const_cast<float*>(p)); }
  static plan_type plan_r2c(int n, int howmany, float* in, int idist, complex_type* out, int ostride,
                            int odist, unsigned flags) {
    return fftwf_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, idist, out, nullptr, ostride, odist,
                                   flags);
  }
  static plan_type plan_c2r(int n, int howmany, complex_type* in, int istride, int idist, float* out,
                            int odist, unsigned flags) {
    return fftwf_plan_many_dft_c2r(1, &n, howmany, in, nullptr, istride, idist, out, nullptr, 1, odist,
                                   flags);
  }
  static void execute_r2c(plan_type p, float* in, complex_type* out) { fftwf_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan_type p, complex_type* in, float* out) { fftwf_execute_dft_c2r(p, in, out); }
  static void destroy(plan_type p) { fftwf_destroy_plan(p); }
};

template <>
struct fftw_traits<double> {
  using plan_type = fftw_plan;
  using complex_type = fftw_complex;
  static int alignment_of(const double* p) { return fftw_alignment_of(const_cast<double*>(p)); }
  static plan_type plan_r2c(int n, int howmany, double* in, int idist, complex_type* out, int ostride,
                            int odist, unsigned flags) {
    return fftw_plan_many_dft_r2c(1, &n, howmany, in, nullptr, 1, idist, out, nullptr, ostride, odist,
                                  flags);
  }
  static plan_type plan_c2r(int n, int howmany, complex_type* in, int istride, int idist, double* out,
                            int odist, unsigned flags) {
    return fftw_plan_many_dft_c2r(1, &n, howmany, in, nullptr, istride, idist, out, nullptr, 1, odist,
                                  flags);
  }
  static void execute_r2c(plan_type p, double* in, complex_type* out) { fftw_execute_dft_r2c(p, in, out); }
  static void execute_c2r(plan_type p, complex_type* in, double* out) { fftw_execute_dft_c2r(p, in, out); }
  static void destroy(plan_type p) { fftw_destroy_plan(p); }
};

template <class Scalar>
inline constexpr bool is_supported_scalar_v = std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double>;

/// Move-only owner of an fftw_malloc'ed array (SIMD-aligned as FFTW wants it).
template <class T>
class AlignedBuffer {
 public:
  AlignedBuffer() = default;
  explicit AlignedBuffer(std::size_t count) { resize(count); }
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      release();
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  ~AlignedBuffer() { release(); }

  /// Grows to at least `count` elements; contents are not preserved. Never shrinks.
  void resize(std::size_t count) {
    if (count <= size_) return;
    release();
    data_ = static_cast<T*>(fftw_malloc(count * sizeof(T)));  // same allocator for both precisions
    if (data_ == nullptr) throw std::bad_alloc();
    size_ = count;
  }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

 private:
  void release() noexcept {
    if (data_ != nullptr) fftw_free(data_);
    data_ = nullptr;
    size_ = 0;
  }
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/// RAII owner of one FFTW plan; destruction takes the planner mutex as FFTW requires.
template <class Scalar>
class FftwPlan {
  using traits = fftw_traits<Scalar>;

 public:
  explicit FftwPlan(typename traits::plan_type plan) : plan_(plan) {
    if (plan_ == nullptr) throw error("FFTW could not create a plan");
  }
  FftwPlan(const FftwPlan&) = delete;
  FftwPlan& operator=(const FftwPlan&) = delete;
  ~FftwPlan() {
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    traits::destroy(plan_);
  }
  typename traits::plan_type get() const noexcept { return plan_; }

 private:
  typename traits::plan_type plan_;
};

/// Layout of a batch of 1-D real transforms of length `n`, as FFTW's advanced interface sees it.
/// The real side always has unit stride; `real_dist` separates transforms on the real side,
/// `complex_stride` / `complex_dist` place bins on the complex side.
struct BatchLayout {
  int n;
  int howmany;
  int real_dist;
  int complex_stride;
  int complex_dist;
  bool aligned;  // planned on SIMD-aligned arrays; executed only on arrays with the same alignment
  bool operator<(const BatchLayout& o) const {
    return std::tie(n, howmany, real_dist, complex_stride, complex_dist, aligned) <
           std::tie(o.n, o.howmany, o.real_dist, o.complex_stride, o.complex_dist, o.aligned);
  }
};

enum class Direction { forward, inverse };  // forward: real -> half spectrum; inverse: back

/// Process-wide cache of batched real-FFT plans, keyed by layout, direction and planner effort.
template <class Scalar>
class PlanCache {
  using traits = fftw_traits<Scalar>;
  using complex_type = typename traits::complex_type;
  using Key = std::tuple<BatchLayout, Direction, PlannerEffort>;

 public:
  static PlanCache& instance() {
    static PlanCache cache;
    return cache;
  }

  /// Returns the plan for `layout` (creating it on first use). Thread-safe; the returned pointer
  /// stays valid for the life of the process.
  const FftwPlan<Scalar>* get(const BatchLayout& layout, Direction direction) {
    const PlannerEffort effort = planner_effort();
    const Key key{layout, direction, effort};
    {
      std::lock_guard<std::mutex> lock(cache_mutex_);
      if (auto it = plans_.find(key); it != plans_.end()) return it->second.get();
    }
    auto plan = create(layout, direction, effort);  // outside the cache lock: planning may be slow
    std::lock_guard<std::mutex> lock(cache_mutex_);
    auto [it, inserted] = plans_.emplace(key, std::move(plan));
    return it->second.get();  // if another thread won the race, its plan is kept and ours freed
  }

 private:
  static std::unique_ptr<FftwPlan<Scalar>> create(const BatchLayout& l, Direction direction,
                                                  PlannerEffort effort) {
    // Plan on scratch arrays: FFTW_MEASURE overwrites them. The extents cover the whole layout.
    const std::size_t real_extent = static_cast<std::size_t>(l.real_dist) * (l.howmany - 1) + l.n;
    const std::size_t bins = static_cast<std::size_t>(l.n / 2 + 1);
    const std::size_t complex_extent =
        static_cast<std::size_t>(l.complex_dist) * (l.howmany - 1) + l.complex_stride * (bins - 1) + 1;
    // One extra element lets an unaligned plan be made on deliberately misaligned pointers.
    AlignedBuffer<Scalar> real(real_extent + 1);
    AlignedBuffer<std::complex<Scalar>> spectrum(complex_extent + 1);
    Scalar* real_ptr = real.data() + (l.aligned ? 0 : 1);
    auto* complex_ptr = reinterpret_cast<complex_type*>(spectrum.data());
    unsigned flags = effort == PlannerEffort::measure ? FFTW_MEASURE : FFTW_ESTIMATE;
    if (!l.aligned) flags |= FFTW_UNALIGNED;
    std::lock_guard<std::mutex> lock(fftw_planner_mutex());
    if (direction == Direction::forward) {
      return std::make_unique<FftwPlan<Scalar>>(traits::plan_r2c(l.n, l.howmany, real_ptr, l.real_dist,
                                                                 complex_ptr, l.complex_stride,
                                                                 l.complex_dist, flags));
    }
    // c2r overwrites its input; our spectra are scratch, so the faster destroy-input plans are fine.
    return std::make_unique<FftwPlan<Scalar>>(traits::plan_c2r(l.n, l.howmany, complex_ptr,
                                                               l.complex_stride, l.complex_dist,
                                                               real_ptr, l.real_dist,
                                                               flags | FFTW_DESTROY_INPUT));
  }

  std::mutex cache_mutex_;
  std::map<Key, std::unique_ptr<FftwPlan<Scalar>>> plans_;
};

/// A batch of real transforms of one layout. Plans are looked up per alignment: an array that is
/// not SIMD-aligned like the planning arrays runs an FFTW_UNALIGNED plan of the same layout.
template <class Scalar>
class BatchedRealFft {
  using traits = fftw_traits<Scalar>;
  using complex_type = typename traits::complex_type;

 public:
  BatchedRealFft() = default;
  BatchedRealFft(int n, int howmany, int real_dist, int complex_stride, int complex_dist)
      : layout_{n, howmany, real_dist, complex_stride, complex_dist, true} {}

  /// The plan for this layout, for real arrays that are SIMD-aligned or not (see is_aligned). The
  /// complex side is always a buffer of ours with aligned token strides.
  const FftwPlan<Scalar>* plan(bool aligned, Direction direction) const {
    BatchLayout layout = layout_;
    layout.aligned = aligned;
    return PlanCache<Scalar>::instance().get(layout, direction);
  }
  static bool is_aligned(const Scalar* real) { return traits::alignment_of(real) == 0; }
  static void forward(const FftwPlan<Scalar>* plan, const Scalar* real, std::complex<Scalar>* spectrum) {
    // r2c plans never write their input (FFTW manual 4.3.2), so dropping const is safe.
    traits::execute_r2c(plan->get(), const_cast<Scalar*>(real), reinterpret_cast<complex_type*>(spectrum));
  }
  static void inverse(const FftwPlan<Scalar>* plan, std::complex<Scalar>* spectrum, Scalar* real) {
    traits::execute_c2r(plan->get(), reinterpret_cast<complex_type*>(spectrum), real);
  }

 private:
  BatchLayout layout_{};
};

}  // namespace fftmat::detail
