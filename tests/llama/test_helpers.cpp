#include "test_helpers.hpp"

#include <fstream>
#include <random>
#include <sstream>

namespace llama_test {

std::filesystem::path reference_dir(const std::string& name) {
  return std::filesystem::path(FFTMAT_LLAMA_TEST_DATA) / name;
}

TempDir::TempDir() {
  std::random_device seed;
  path_ = std::filesystem::temp_directory_path() / ("fftmat-llama-test-" + std::to_string(seed()) + std::to_string(seed()));
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::filesystem::path copy_reference(const std::string& name, const TempDir& dir) {
  const std::filesystem::path target = dir.path() / name;
  std::filesystem::copy(reference_dir(name), target, std::filesystem::copy_options::recursive);
  for (const auto& entry : std::filesystem::directory_iterator(target)) {  // git may check files out read-only
    std::filesystem::permissions(entry.path(), std::filesystem::perms::owner_write, std::filesystem::perm_options::add);
  }
  return target;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream bytes;
  bytes << in.rdbuf();
  return bytes.str();
}

void write_file(const std::filesystem::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string safetensors_bytes(const std::string& header_json, const std::string& data) {
  std::string bytes(8, '\0');
  std::uint64_t length = header_json.size();
  for (int k = 0; k < 8; ++k, length >>= 8) bytes[static_cast<std::size_t>(k)] = static_cast<char>(length & 0xff);
  return bytes + header_json + data;
}

std::string padded(std::string header_json) {
  header_json.append((8 - header_json.size() % 8) % 8, ' ');
  return header_json;
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace llama_test
