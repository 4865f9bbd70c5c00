#pragma once
// A Hugging Face checkpoint directory as downloaded: config.json plus either model.safetensors or
// shards listed in model.safetensors.index.json. Every file is memory-mapped and validated when the
// Checkpoint is constructed; tensors are then handed out as views into the mappings.

#include <cstdint>
#include <filesystem>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.hpp"
#include "mapped_file.hpp"
#include "safetensors.hpp"

namespace llama {

/// A tensor inside a mapped file, in its checkpoint dtype (F32, F16 or BF16), aligned to its
/// element size. Valid while the Checkpoint lives.
struct TensorView {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;  // row-major, outermost first
  const std::uint8_t* data = nullptr;
  std::size_t bytes = 0;
};

/// A tensor the model needs and the shape it must have.
struct TensorSpec {
  std::string name;
  std::vector<std::int64_t> shape;
};

class Checkpoint {
 public:
  /// Loads and validates `directory` (config.json and the safetensors files); every F32, F16 and
  /// BF16 tensor is scanned once for NaN and infinity, and the first found is named.
  explicit Checkpoint(const std::filesystem::path& directory);

  const LlamaConfig& config() const noexcept { return config_; }
  const std::filesystem::path& directory() const noexcept { return directory_; }
  bool contains(const std::string& name) const { return locations_.count(name) != 0; }
  /// The mapped safetensors files.
  const std::vector<MappedFile>& files() const noexcept { return files_; }

  /// Throws one error listing every tensor of `specs` that is missing, then checks each present
  /// one's shape and dtype; extra tensors in the files are ignored.
  void require(const std::vector<TensorSpec>& specs) const;
  /// The tensor `spec.name`, which must exist, have `spec.shape` and a supported dtype.
  TensorView tensor(const TensorSpec& spec) const;

 private:
  struct Location {
    std::size_t file;    // index into files_
    std::size_t tensor;  // index into headers_[file].tensors
  };

  void add_file(const std::filesystem::path& path);
  /// The shards that model.safetensors.index.json lists, checked against where it places each tensor.
  void add_shards();
  /// No tensor may belong to a layer at or beyond config.json's num_hidden_layers.
  void require_layers_of_config() const;
  void require_finite_weights() const;

  std::filesystem::path directory_;
  LlamaConfig config_;
  std::vector<MappedFile> files_;
  std::vector<SafetensorsHeader> headers_;
  std::unordered_map<std::string, Location> locations_;
};

}  // namespace llama
