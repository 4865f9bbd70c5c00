#pragma once
// Shared helpers of the Llama tests: temporary directories, reference checkpoints, safetensors files
// built from a JSON header, and the error messages thrown by a callable.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace llama_test {

/// tests/data/llama/<name>.
std::filesystem::path reference_dir(const std::string& name);

/// A fresh directory under the system temp directory, removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// A copy of reference checkpoint `name` in a temporary directory, for corrupting.
std::filesystem::path copy_reference(const std::string& name, const TempDir& dir);

std::string read_file(const std::filesystem::path& path);
void write_file(const std::filesystem::path& path, const std::string& bytes);

/// 8-byte little-endian length, `header_json`, then `data`.
std::string safetensors_bytes(const std::string& header_json, const std::string& data);
/// `header_json` padded with spaces to a multiple of 8 bytes, as safetensors writers align the data.
std::string padded(std::string header_json);

/// Whether `part` occurs in `text` (an error message, a file).
bool contains(const std::string& text, const std::string& part);

/// The message of the llama::error `f` throws ("" when it throws nothing; other exceptions fail).
template <class F>
std::string error_of(F&& f);

}  // namespace llama_test

#include "engine/error.hpp"
#include <doctest/doctest.h>

template <class F>
std::string llama_test::error_of(F&& f) {
  try {
    f();
  } catch (const llama::error& e) {
    return e.what();
  }
  return "";
}
