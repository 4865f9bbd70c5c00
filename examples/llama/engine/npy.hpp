#pragma once
// NumPy .npy files of float32 (format version 1.0, little-endian '<f4', C order):
// https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html

#include <cstddef>
#include <filesystem>
#include <vector>

namespace llama {

struct FloatArray {
  std::vector<std::size_t> shape;
  std::vector<float> values;  // row-major
};

/// Writes values (row-major, product of shape floats) atomically (output_file.hpp).
void write_npy(const std::filesystem::path& path, const float* values, const std::vector<std::size_t>& shape);

/// Reads a float32 C-order .npy file, validating its header against the file size.
FloatArray read_npy(const std::filesystem::path& path);

}  // namespace llama
