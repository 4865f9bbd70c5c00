#pragma once
// A read-only memory map of a whole file (RAII, move-only). Checkpoint weights are used in place:
// the kernel pages them in on first touch and may drop them under memory pressure, so a 13.5 GB
// fp16 model never needs 13.5 GB of anonymous memory.

#include <cstddef>
#include <cstdint>
#include <filesystem>

namespace llama {

class MappedFile {
 public:
  /// Maps `path`; throws llama::error naming the file when it cannot be opened, is not a regular
  /// file or is empty.
  explicit MappedFile(const std::filesystem::path& path);
  MappedFile(MappedFile&& other) noexcept;
  MappedFile& operator=(MappedFile&& other) noexcept;
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  const std::uint8_t* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::filesystem::path& path() const noexcept { return path_; }

 private:
  std::filesystem::path path_;
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace llama
