#include "checkpoint.hpp"

#include <map>
#include <sstream>

#include "error.hpp"
#include "finite.hpp"
#include "kernels.hpp"
#include "shard_index.hpp"

namespace llama {
namespace {

constexpr char kSingleFile[] = "model.safetensors";

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t k = 0; k < shape.size(); ++k) out << (k ? ", " : "") << shape[k];
  out << ']';
  return out.str();
}

/// A file of the checkpoint that is a symbolic link to nothing -- in a PATCHED directory whose base
/// was moved or deleted -- is named with its target, not reported as missing.
void require_link_target(const std::filesystem::path& path) {
  std::error_code ec;
  const bool dangling = std::filesystem::is_symlink(std::filesystem::symlink_status(path, ec)) &&
                        !std::filesystem::exists(path, ec);
  check(!dangling, path, " is a symbolic link to ", std::filesystem::read_symlink(path, ec),
        ", which does not exist (was the base checkpoint moved or deleted?)");
}

}  // namespace

Checkpoint::Checkpoint(const std::filesystem::path& directory) : directory_(directory) {
  check(std::filesystem::is_directory(directory), "model directory ", directory, " does not exist");
  for (const char* name : {"config.json", kSingleFile, kShardIndexFile}) require_link_target(directory / name);
  config_ = load_llama_config(directory / "config.json");

  if (std::filesystem::exists(directory / kSingleFile)) {
    add_file(directory / kSingleFile);
  } else {
    add_shards();
  }
  require_layers_of_config();
  require_finite_weights();
}

void Checkpoint::require_layers_of_config() const {
  // Missing layers are named by require(); layers beyond the count would be silently ignored.
  const std::string prefix = "model.layers.";
  std::map<std::string, std::size_t> beyond;  // sorted, so that the message names the same tensor every run
  for (const auto& [name, location] : locations_) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::size_t digits = name.find_first_not_of("0123456789", prefix.size());
    if (digits == prefix.size() || digits == std::string::npos || digits - prefix.size() > 9) continue;
    if (std::stol(name.substr(prefix.size(), digits - prefix.size())) >= config_.num_hidden_layers) {
      beyond.emplace(name, location.file);
    }
  }
  check(beyond.empty(), directory_ / "config.json", " says num_hidden_layers = ", config_.num_hidden_layers,
        ", but the checkpoint holds ", beyond.size(), " tensors of further layers, such as '",
        beyond.empty() ? "" : beyond.begin()->first, "' in ",
        beyond.empty() ? std::filesystem::path() : files_[beyond.begin()->second].path());
}

void Checkpoint::add_shards() {
  const std::filesystem::path& directory = directory_;
  check(std::filesystem::exists(directory / kShardIndexFile), directory, " has neither ", kSingleFile, " nor ",
        kShardIndexFile);
  const auto weight_map = parse_shard_index(read_text_file(directory / kShardIndexFile, kMaxShardIndexBytes),
                                            (directory / kShardIndexFile).string());
  std::map<std::string, std::size_t> file_index;
  for (const auto& [tensor, file] : weight_map) {
    if (file_index.count(file) == 0) {
      file_index[file] = files_.size();
      add_file(directory / file);
    }
  }
  // The index is the authority on where each tensor lives: a tensor listed for one shard but found
  // only in another (or nowhere) means the download is inconsistent.
  for (const auto& [tensor, file] : weight_map) {
    const auto found = locations_.find(tensor);
    check(found != locations_.end() && found->second.file == file_index.at(file), directory / kShardIndexFile,
          " places '", tensor, "' in ", file, ", which does not contain it");
  }
}

void Checkpoint::require_finite_weights() const {
  for (std::size_t f = 0; f < files_.size(); ++f) {
    const SafetensorsHeader& header = headers_[f];
    for (const TensorInfo& info : header.tensors) {
      if (info.dtype == DType::unsupported) continue;
      const std::uint8_t* data = files_[f].data() + header.data_offset + info.begin;
      const std::size_t count = static_cast<std::size_t>(info.end - info.begin) / info.element_size;
      const std::size_t bad = first_non_finite(data, info.dtype, count);
      if (bad == count) continue;
      std::vector<std::int64_t> position(info.shape.size());
      std::size_t rest = bad;
      for (std::size_t k = info.shape.size(); k-- > 0;) {
        const auto extent = static_cast<std::size_t>(info.shape[k]);
        position[k] = static_cast<std::int64_t>(rest % extent);
        rest /= extent;
      }
      float value = 0;
      to_float(data, info.dtype, bad, 1, &value);
      throw error(files_[f].path().string() + ": tensor '" + info.name + "' (" + info.dtype_string + ", shape " +
                  shape_string(info.shape) + ") holds " + std::to_string(value) + " at element " +
                  shape_string(position) + " (flat index " + std::to_string(bad) + "); weights must be finite");
    }
  }
}

void Checkpoint::add_file(const std::filesystem::path& path) {
  require_link_target(path);
  files_.emplace_back(path);
  const MappedFile& file = files_.back();
  headers_.push_back(parse_safetensors(file.data(), file.size(), path.string()));
  const std::size_t file_number = files_.size() - 1;
  const auto& tensors = headers_.back().tensors;
  for (std::size_t k = 0; k < tensors.size(); ++k) {
    const auto inserted = locations_.emplace(tensors[k].name, Location{file_number, k});
    check(inserted.second, "tensor '", tensors[k].name, "' appears in both ",
          files_[inserted.first->second.file].path(), " and ", path);
  }
}

void Checkpoint::require(const std::vector<TensorSpec>& specs) const {
  std::vector<std::string> missing;
  for (const TensorSpec& spec : specs) {
    if (!contains(spec.name)) missing.push_back(spec.name);
  }
  if (!missing.empty()) {
    std::ostringstream message;
    message << directory_.string() << ": " << missing.size() << " required tensor" << (missing.size() > 1 ? "s are" : " is")
            << " missing: ";
    const std::size_t shown = std::min<std::size_t>(missing.size(), 8);
    for (std::size_t k = 0; k < shown; ++k) message << (k ? ", " : "") << '\'' << missing[k] << '\'';
    if (shown < missing.size()) message << " and " << missing.size() - shown << " more";
    throw error(message.str());
  }
  for (const TensorSpec& spec : specs) tensor(spec);
}

TensorView Checkpoint::tensor(const TensorSpec& spec) const {
  const auto found = locations_.find(spec.name);
  check(found != locations_.end(), directory_.string(), ": required tensor '", spec.name, "' is missing");
  const MappedFile& file = files_[found->second.file];
  const SafetensorsHeader& header = headers_[found->second.file];
  const TensorInfo& info = header.tensors[found->second.tensor];
  check(info.shape == spec.shape, file.path().string(), ": tensor '", spec.name, "' has shape ",
        shape_string(info.shape), ", but config.json implies ", shape_string(spec.shape));
  check(info.dtype != DType::unsupported, file.path().string(), ": tensor '", spec.name, "' has dtype ",
        info.dtype_string, "; weights must be F32, F16 or BF16");
  const std::size_t offset = header.data_offset + static_cast<std::size_t>(info.begin);
  // mmap returns page-aligned memory, so the file offset decides the pointer's alignment.
  check(offset % info.element_size == 0, file.path().string(), ": tensor '", spec.name, "' starts at byte ",
        offset, ", not aligned to its ", info.element_size, "-byte elements");
  return TensorView{spec.name, info.dtype, info.shape, file.data() + offset, static_cast<std::size_t>(info.end - info.begin)};
}

}  // namespace llama
