#include "safetensors.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

#include "error.hpp"

namespace llama {
namespace {

struct DTypeSpec {
  const char* name;
  std::size_t size;
  DType dtype;
};

// Every dtype of the safetensors specification, so that extra tensors of other types validate.
constexpr DTypeSpec kDTypes[] = {
    {"F32", 4, DType::f32},          {"F16", 2, DType::f16},          {"BF16", 2, DType::bf16},
    {"F64", 8, DType::unsupported},  {"I64", 8, DType::unsupported},  {"U64", 8, DType::unsupported},
    {"I32", 4, DType::unsupported},  {"U32", 4, DType::unsupported},  {"I16", 2, DType::unsupported},
    {"U16", 2, DType::unsupported},  {"I8", 1, DType::unsupported},   {"U8", 1, DType::unsupported},
    {"BOOL", 1, DType::unsupported}, {"F8_E4M3", 1, DType::unsupported}, {"F8_E5M2", 1, DType::unsupported},
};

std::uint64_t read_u64_le(const std::uint8_t* bytes) {
  std::uint64_t value = 0;
  for (int k = 7; k >= 0; --k) value = (value << 8) | bytes[k];
  return value;
}

/// A non-negative JSON integer that fits in uint64, or an error naming `what`.
std::uint64_t unsigned_integer(const nlohmann::json& value, const std::string& what) {
  check(value.is_number_unsigned() || (value.is_number_integer() && value.get<std::int64_t>() >= 0), what,
        " must be a non-negative integer, got ", value.dump());
  return value.get<std::uint64_t>();
}

TensorInfo parse_tensor(const std::string& name, const nlohmann::json& entry, std::uint64_t data_size,
                        const std::string& source) {
  const std::string where = source + ": tensor '" + name + "'";
  check(entry.is_object(), where, " is not a JSON object");
  for (const char* key : {"dtype", "shape", "data_offsets"}) check(entry.contains(key), where, " has no \"", key, "\"");

  TensorInfo info;
  info.name = name;
  const nlohmann::json& dtype = entry.at("dtype");
  check(dtype.is_string(), where, " has a dtype that is not a string: ", dtype.dump());
  info.dtype_string = dtype.get<std::string>();
  const auto* spec = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                                  [&](const DTypeSpec& s) { return info.dtype_string == s.name; });
  check(spec != std::end(kDTypes), where, " has unknown dtype \"", info.dtype_string, "\"");
  info.dtype = spec->dtype;
  info.element_size = spec->size;

  const nlohmann::json& shape = entry.at("shape");
  check(shape.is_array(), where, " has a shape that is not an array: ", shape.dump());
  check(shape.size() <= kMaxRank, where, " has rank ", shape.size(), " (at most ", kMaxRank, " accepted)");
  // The byte count must equal end - begin <= data_size, so any partial product beyond data_size
  // already proves the tensor inconsistent: checking that bound also rules out overflow.
  std::uint64_t bytes = info.element_size;
  bool too_large = false;
  for (std::size_t k = 0; k < shape.size(); ++k) {
    const std::uint64_t extent = unsigned_integer(shape[k], where + " shape[" + std::to_string(k) + "]");
    check(extent <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()), where, " shape[", k,
          "] = ", extent, " is too large");
    info.shape.push_back(static_cast<std::int64_t>(extent));
    if (extent == 0) {
      bytes = 0;
    } else if (!too_large && bytes > data_size / extent) {
      too_large = true;
    } else if (!too_large) {
      bytes *= extent;
    }
  }
  if (bytes == 0) too_large = false;  // a zero extent anywhere makes the tensor empty

  const nlohmann::json& offsets = entry.at("data_offsets");
  check(offsets.is_array() && offsets.size() == 2, where, " has data_offsets that are not [begin, end]: ",
        offsets.dump());
  info.begin = unsigned_integer(offsets[0], where + " data_offsets[0]");
  info.end = unsigned_integer(offsets[1], where + " data_offsets[1]");
  check(info.begin <= info.end, where, " has data_offsets [", info.begin, ", ", info.end, "] with begin > end");
  check(info.end <= data_size, where, " has data_offsets [", info.begin, ", ", info.end,
        "] past the end of the data section (", data_size, " bytes; the file may be truncated)");
  check(!too_large && bytes == info.end - info.begin, where, " (", info.dtype_string, ", shape ", shape.dump(),
        ") needs ", too_large ? std::string("more than the data section's") : std::to_string(bytes),
        " bytes but data_offsets [", info.begin, ", ", info.end, "] hold ", info.end - info.begin);
  return info;
}

}  // namespace

const char* dtype_name(DType dtype) noexcept {
  switch (dtype) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::bf16: return "BF16";
    case DType::unsupported: break;
  }
  return "unsupported";
}

SafetensorsHeader parse_safetensors(const std::uint8_t* file, std::size_t file_size, const std::string& source) {
  check(file_size >= 8, source, ": ", file_size, " bytes is too short for a safetensors file (8-byte header length)");
  const std::uint64_t header_size = read_u64_le(file);
  check(header_size <= kMaxHeaderBytes, source, ": header length ", header_size, " exceeds the limit of ",
        kMaxHeaderBytes, " bytes (corrupted or not a safetensors file)");
  check(header_size <= file_size - 8, source, ": header length ", header_size, " runs past the end of the ",
        file_size, "-byte file (truncated?)");

  SafetensorsHeader header;
  header.data_offset = static_cast<std::size_t>(8 + header_size);
  const std::uint64_t data_size = file_size - header.data_offset;

  const auto* json_begin = reinterpret_cast<const char*>(file + 8);
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(json_begin, json_begin + header_size);
  } catch (const nlohmann::json::exception& e) {
    throw error(source + ": header is not valid JSON: " + e.what());
  }
  check(root.is_object(), source, ": header is not a JSON object");

  for (const auto& [name, entry] : root.items()) {
    if (name == "__metadata__") {
      check(entry.is_object(), source, ": __metadata__ is not a JSON object");
      for (const auto& [key, value] : entry.items()) {
        check(value.is_string(), source, ": __metadata__ value for '", key, "' is not a string");
        header.metadata.emplace(key, value.get<std::string>());
      }
      continue;
    }
    header.tensors.push_back(parse_tensor(name, entry, data_size, source));
  }

  // The tensors must tile the data section: sorted by offset, each begins where the previous ends.
  std::vector<const TensorInfo*> by_offset;
  by_offset.reserve(header.tensors.size());
  for (const TensorInfo& tensor : header.tensors) by_offset.push_back(&tensor);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  std::uint64_t covered = 0;
  const TensorInfo* previous = nullptr;
  for (const TensorInfo* tensor : by_offset) {
    check(tensor->begin >= covered, source, ": tensor '", tensor->name, "' [", tensor->begin, ", ", tensor->end,
          ") overlaps tensor '", previous ? previous->name : "", "' [", previous ? previous->begin : 0, ", ",
          covered, ")");
    check(tensor->begin == covered, source, ": bytes [", covered, ", ", tensor->begin,
          ") of the data section belong to no tensor");
    covered = tensor->end;
    previous = tensor;
  }
  check(covered == data_size, source, ": the data section has ", data_size, " bytes but its tensors end at byte ",
        covered);
  return header;
}

std::string safetensors_file(const std::vector<TensorBytes>& tensors, const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::uint64_t offset = 0;
  for (const TensorBytes& tensor : tensors) {
    check(tensor.dtype != DType::unsupported, "cannot write tensor '", tensor.name, "': unsupported dtype");
    check(tensor.name != "__metadata__" && !header.contains(tensor.name), "cannot write tensor '", tensor.name,
          "': the name is reserved or repeated");
    const auto* spec = std::find_if(std::begin(kDTypes), std::end(kDTypes),
                                    [&](const DTypeSpec& s) { return s.dtype == tensor.dtype; });
    std::uint64_t bytes = spec->size;
    for (const std::int64_t extent : tensor.shape) bytes *= static_cast<std::uint64_t>(extent);
    check(bytes == tensor.bytes.size(), "cannot write tensor '", tensor.name, "': its shape needs ", bytes,
          " bytes, ", tensor.bytes.size(), " given");
    header[tensor.name] = {{"dtype", spec->name}, {"shape", tensor.shape}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string file(8, '\0');
  std::uint64_t length = json.size();
  for (int k = 0; k < 8; ++k, length >>= 8) file[static_cast<std::size_t>(k)] = static_cast<char>(length & 0xff);
  file += json;
  file.reserve(file.size() + offset);
  for (const TensorBytes& tensor : tensors) file.append(tensor.bytes);
  return file;
}

}  // namespace llama
