#include "npy.hpp"

#include <cstdint>
#include <cstring>
#include <regex>
#include <string>

#include "error.hpp"
#include "mapped_file.hpp"
#include "output_file.hpp"

namespace llama {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicBytes = 6;

std::string shape_tuple(const std::vector<std::size_t>& shape) {
  std::string text = "(";
  for (std::size_t k = 0; k < shape.size(); ++k) text += (k ? ", " : "") + std::to_string(shape[k]);
  if (shape.size() == 1) text += ",";
  return text + ")";
}

}  // namespace

void write_npy(const std::filesystem::path& path, const float* values, const std::vector<std::size_t>& shape) {
  std::size_t count = 1;
  for (const std::size_t extent : shape) count *= extent;
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_tuple(shape) + ", }";
  // Pad with spaces so that magic + version + length + header + '\n' is a multiple of 64 bytes.
  const std::size_t preamble = kMagicBytes + 2 + 2;
  header.append(63 - (preamble + header.size()) % 64, ' ');
  header += '\n';
  check(header.size() <= 0xffff, "npy header too long for format 1.0");

  const unsigned char version_and_length[4] = {1, 0, static_cast<unsigned char>(header.size() & 0xff),
                                               static_cast<unsigned char>(header.size() >> 8)};
  static_assert(sizeof(float) == 4, "float32");
  std::string bytes(kMagic, kMagicBytes);
  bytes.append(reinterpret_cast<const char*>(version_and_length), 4);
  bytes += header;
  bytes.append(reinterpret_cast<const char*>(values), count * sizeof(float));
  write_file_atomically(path, bytes);
}

FloatArray read_npy(const std::filesystem::path& path) {
  const MappedFile file(path);
  const std::uint8_t* bytes = file.data();
  const std::string source = path.string();
  check(file.size() >= kMagicBytes + 4 && std::memcmp(bytes, kMagic, kMagicBytes) == 0, source, ": not a .npy file");
  check(bytes[6] == 1 && bytes[7] == 0, source, ": only .npy format version 1.0 is read");
  const std::size_t header_length = bytes[8] | (std::size_t{bytes[9]} << 8);
  const std::size_t data_offset = kMagicBytes + 4 + header_length;
  check(data_offset <= file.size(), source, ": header runs past the end of the file");
  const std::string header(reinterpret_cast<const char*>(bytes + 10), header_length);

  std::smatch match;
  check(std::regex_search(header, std::regex("'descr':\\s*'<f4'")), source, ": dtype is not little-endian float32");
  check(std::regex_search(header, std::regex("'fortran_order':\\s*False")), source, ": array is not in C order");
  check(std::regex_search(header, match, std::regex("'shape':\\s*\\(([0-9,\\s]*)\\)")), source, ": no shape");
  FloatArray array;
  std::size_t count = 1;
  const std::string dims = match[1].str();
  const std::regex number("[0-9]+");
  for (auto it = std::sregex_iterator(dims.begin(), dims.end(), number); it != std::sregex_iterator(); ++it) {
    check(it->str().size() <= 12, source, ": shape entry ", it->str(), " is too large");
    const std::size_t extent = std::stoull(it->str());
    check(extent == 0 || count <= (file.size() / sizeof(float)) / extent, source, ": shape ", match[1].str(),
          " does not fit in the file");
    array.shape.push_back(extent);
    count *= extent;
  }
  check(file.size() - data_offset == count * sizeof(float), source, ": shape (", match[1].str(), ") needs ",
        count * sizeof(float), " data bytes, the file has ", file.size() - data_offset);
  array.values.resize(count);
  std::memcpy(array.values.data(), bytes + data_offset, count * sizeof(float));
  return array;
}

}  // namespace llama
