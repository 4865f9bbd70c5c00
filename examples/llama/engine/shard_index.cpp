#include "shard_index.hpp"

#include <nlohmann/json.hpp>

#include <filesystem>

#include "error.hpp"

namespace llama {

std::map<std::string, std::string> parse_shard_index(const std::string& json_text, const std::string& source) {
  nlohmann::json index;
  try {
    index = nlohmann::json::parse(json_text);
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

}  // namespace llama
