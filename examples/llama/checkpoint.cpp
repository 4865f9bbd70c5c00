#include "checkpoint.hpp"

#include <nlohmann/json.hpp>

#include <map>
#include <sstream>

#include "error.hpp"

namespace llama {
namespace {

constexpr char kSingleFile[] = "model.safetensors";
constexpr char kShardIndex[] = "model.safetensors.index.json";
constexpr std::uintmax_t kMaxIndexBytes = 64 << 20;

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::ostringstream out;
  out << '[';
  for (std::size_t k = 0; k < shape.size(); ++k) out << (k ? ", " : "") << shape[k];
  out << ']';
  return out.str();
}

/// The shard file names of an index, each checked to be a plain name inside the directory, with
/// the shard each tensor lives in.
std::map<std::string, std::string> read_weight_map(const std::filesystem::path& index_path) {
  const std::string source = index_path.string();
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(read_text_file(index_path, kMaxIndexBytes));
  } catch (const nlohmann::json::exception& e) {
    throw error(source + ": not valid JSON: " + e.what());
  }
  check(index.is_object() && index.contains("weight_map") && index.at("weight_map").is_object(), source,
        ": has no \"weight_map\" object");
  std::map<std::string, std::string> weight_map;
  for (const auto& [tensor, file] : index.at("weight_map").items()) {
    check(file.is_string(), source, ": weight_map entry for '", tensor, "' is not a file name");
    const std::string name = file.get<std::string>();
    const std::filesystem::path as_path(name);
    check(!name.empty() && as_path.filename() == as_path && name != "." && name != "..", source,
          ": weight_map names '", name, "' for '", tensor, "', which is not a file name in the checkpoint directory");
    weight_map.emplace(tensor, name);
  }
  check(!weight_map.empty(), source, ": weight_map is empty");
  return weight_map;
}

}  // namespace

Checkpoint::Checkpoint(const std::filesystem::path& directory) : directory_(directory) {
  check(std::filesystem::is_directory(directory), "model directory ", directory, " does not exist");
  config_ = load_llama_config(directory / "config.json");

  if (std::filesystem::exists(directory / kSingleFile)) {
    add_file(directory / kSingleFile);
    return;
  }
  check(std::filesystem::exists(directory / kShardIndex), directory, " has neither ", kSingleFile, " nor ",
        kShardIndex);
  const auto weight_map = read_weight_map(directory / kShardIndex);
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
    check(found != locations_.end() && found->second.file == file_index.at(file), directory / kShardIndex,
          " places '", tensor, "' in ", file, ", which does not contain it");
  }
}

void Checkpoint::add_file(const std::filesystem::path& path) {
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
