#pragma once
// A zero-initialised array of trivially copyable values whose storage the operating system may back
// with 2 MiB transparent huge pages.
//
// Why: a one-token product streams the packed spectra of a layer once, cold (in a model dozens of
// layers run between two calls of the same one). With 4 KiB pages every 4 KiB of that short stream
// needs its own TLB entry, and the page-table entries are as cold as the data; one 2 MiB page
// covers 512 of them. Arrays of at least kHugePageBytes / 2 are therefore aligned to and rounded up
// to whole huge pages and advised with madvise(MADV_HUGEPAGE) (Linux; the kernel's
// Documentation/admin-guide/mm/transhuge.rst: with the common "madvise" setting only advised ranges
// get huge pages); docs/design.md ("Huge pages for the packed spectra") and docs/benchmarks.md
// have what it saves. The advice is only a hint:
// where it is refused or unavailable the array works the same on small pages. Rounding up costs
// less than one huge page per array.

#include "internal_header_check.hpp"

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace fftmat::detail {

inline constexpr std::size_t kHugePageBytes = std::size_t(2) << 20;

/// Asks the kernel to back the whole 2 MiB pages inside [data, data + bytes) with transparent huge
/// pages (Linux; elsewhere nothing). Call it before the range is first written: pages already
/// faulted in stay small until khugepaged collapses them, if ever. A refusal is not an error.
inline void advise_huge_pages(void* data, std::size_t bytes) noexcept {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const auto begin = reinterpret_cast<std::uintptr_t>(data);
  const std::uintptr_t first = (begin + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  const std::uintptr_t last = (begin + bytes) / kHugePageBytes * kHugePageBytes;
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_HUGEPAGE);
#else
  (void)data;
  (void)bytes;
#endif
}

template <class T>
class HugePageArray {
  static_assert(std::is_trivially_copyable_v<T>, "HugePageArray holds trivially copyable values");

 public:
  HugePageArray() = default;
  /// `count` values, all bits zero.
  explicit HugePageArray(std::size_t count) : size_(count) {
    if (count == 0) return;
    void* storage = ::operator new(capacity(), std::align_val_t(alignment()));
    if (alignment() == kHugePageBytes) advise_huge_pages(storage, capacity());
    std::memset(storage, 0, capacity());
    data_ = static_cast<T*>(storage);
  }
  HugePageArray(const HugePageArray& other) : HugePageArray(other.size_) {
    if (size_ != 0) std::memcpy(data_, other.data_, size_ * sizeof(T));
  }
  HugePageArray(HugePageArray&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)), size_(std::exchange(other.size_, 0)) {}
  HugePageArray& operator=(HugePageArray other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    return *this;
  }
  ~HugePageArray() {
    if (data_ != nullptr) ::operator delete(data_, std::align_val_t(alignment()));
  }

  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  T& operator[](std::size_t k) noexcept { return data_[k]; }
  const T& operator[](std::size_t k) const noexcept { return data_[k]; }

 private:
  std::size_t alignment() const noexcept {
    return size_ * sizeof(T) >= kHugePageBytes / 2 ? kHugePageBytes : std::size_t(64);
  }
  /// Whole huge pages for large arrays (the kernel can only map those huge), cache lines otherwise.
  std::size_t capacity() const noexcept {
    return (size_ * sizeof(T) + alignment() - 1) / alignment() * alignment();
  }

  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace fftmat::detail
