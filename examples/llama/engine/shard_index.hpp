#pragma once
// model.safetensors.index.json, the shard index of a Hugging Face checkpoint: {"weight_map":
// {tensor name: shard file name}, "metadata": {...}}.

#include <cstdint>
#include <map>
#include <string>

namespace llama {

/// The index's name in a checkpoint directory.
inline constexpr char kShardIndexFile[] = "model.safetensors.index.json";
/// The largest index accepted (real ones are well under 1 MB).
inline constexpr std::uintmax_t kMaxShardIndexBytes = 64 << 20;

/// The shard each tensor lives in, from the text of an index; every shard name is checked to be a
/// plain file name inside the checkpoint directory. `source` names the file in error messages.
/// Throws llama::error on anything malformed.
std::map<std::string, std::string> parse_shard_index(const std::string& json_text, const std::string& source);

}  // namespace llama
