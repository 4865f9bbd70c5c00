#include "config.hpp"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "error.hpp"

namespace llama {
namespace {

using nlohmann::json;

/// The integer `key`, which must lie in [1, max_value]; `fallback` when absent (or null, as HF
/// writes num_key_value_heads: null) if the key has a default, otherwise an error.
int positive_int(const json& config, const char* key, long long max_value, const std::string& source,
                 const int* fallback = nullptr) {
  if (!config.contains(key) || config.at(key).is_null()) {
    check(fallback != nullptr, source, ": missing required field \"", key, "\"");
    return *fallback;
  }
  const json& value = config.at(key);
  check(value.is_number_integer(), source, ": \"", key, "\" must be an integer, got ", value.dump());
  // nlohmann stores non-negative integers as unsigned, negative ones as signed.
  const bool in_range = value.is_number_unsigned() && value.get<std::uint64_t>() >= 1 &&
                        value.get<std::uint64_t>() <= static_cast<std::uint64_t>(max_value);
  check(in_range, source, ": \"", key, "\" = ", value.dump(), " is out of range [1, ", max_value, "]");
  return static_cast<int>(value.get<long long>());
}

float positive_float(const json& config, const char* key, float fallback, const std::string& source) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  const json& value = config.at(key);
  check(value.is_number(), source, ": \"", key, "\" must be a number, got ", value.dump());
  const double number = value.get<double>();
  check(std::isfinite(number) && number > 0 && number < 1e30, source, ": \"", key, "\" = ", value.dump(),
        " must be positive and finite");
  return static_cast<float>(number);
}

bool boolean(const json& config, const char* key, bool fallback, const std::string& source) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  check(config.at(key).is_boolean(), source, ": \"", key, "\" must be true or false, got ", config.at(key).dump());
  return config.at(key).get<bool>();
}

/// Optional token id: an integer, or a list whose first entry is used (Llama-3 style eos lists).
int token_id(const json& config, const char* key, int fallback, int vocab_size, const std::string& source) {
  if (!config.contains(key) || config.at(key).is_null()) return fallback;
  json value = config.at(key);
  if (value.is_array() && !value.empty()) value = value.front();
  check(value.is_number_integer() && value.get<long long>() >= 0 && value.get<long long>() < vocab_size, source,
        ": \"", key, "\" = ", config.at(key).dump(), " is not a token id below vocab_size ", vocab_size);
  return static_cast<int>(value.get<long long>());
}

}  // namespace

LlamaConfig parse_llama_config(const std::string& json_text, const std::string& source) {
  json config;
  try {
    config = json::parse(json_text);
  } catch (const json::exception& e) {
    throw error(source + ": not valid JSON: " + e.what());
  }
  check(config.is_object(), source, ": not a JSON object");

  if (config.contains("model_type") && !config.at("model_type").is_null()) {
    check(config.at("model_type") == "llama", source, ": model_type ", config.at("model_type").dump(),
          " is not \"llama\"");
  }
  if (config.contains("hidden_act") && !config.at("hidden_act").is_null()) {
    check(config.at("hidden_act") == "silu", source, ": hidden_act ", config.at("hidden_act").dump(),
          " is not supported (only \"silu\")");
  }
  for (const char* key : {"attention_bias", "mlp_bias"}) {
    check(!boolean(config, key, false, source), source, ": \"", key, "\": true is not supported");
  }
  check(!config.contains("rope_scaling") || config.at("rope_scaling").is_null(), source,
        ": rope_scaling is not supported (Llama-2 has none)");

  LlamaConfig c;
  // Generous bounds: they only stop absurd values from reaching allocations.
  c.hidden_size = positive_int(config, "hidden_size", 1 << 16, source);
  c.intermediate_size = positive_int(config, "intermediate_size", 1 << 18, source);
  c.num_hidden_layers = positive_int(config, "num_hidden_layers", 1 << 10, source);
  c.num_attention_heads = positive_int(config, "num_attention_heads", 1 << 10, source);
  c.num_key_value_heads = positive_int(config, "num_key_value_heads", 1 << 10, source, &c.num_attention_heads);
  c.vocab_size = positive_int(config, "vocab_size", 1 << 22, source);
  const int default_positions = 2048;
  c.max_position_embeddings = positive_int(config, "max_position_embeddings", 1 << 24, source, &default_positions);

  check(c.hidden_size % c.num_attention_heads == 0 || config.contains("head_dim"), source, ": hidden_size ",
        c.hidden_size, " is not divisible by num_attention_heads ", c.num_attention_heads);
  const int default_head_dim = c.hidden_size / c.num_attention_heads;
  c.head_dim = positive_int(config, "head_dim", 1 << 12, source, &default_head_dim);
  check(c.head_dim % 2 == 0, source, ": head_dim ", c.head_dim, " must be even for rotary embeddings");
  check(c.num_attention_heads % c.num_key_value_heads == 0, source, ": num_attention_heads ",
        c.num_attention_heads, " is not divisible by num_key_value_heads ", c.num_key_value_heads);
  check(static_cast<long long>(c.num_attention_heads) * c.head_dim <= (1 << 18), source, ": num_attention_heads x head_dim = ",
        static_cast<long long>(c.num_attention_heads) * c.head_dim, " is too large");

  c.rms_norm_eps = positive_float(config, "rms_norm_eps", 1e-6f, source);
  // transformers >= 5 writes rope_parameters {"rope_type", "rope_theta"}; older versions rope_theta.
  if (config.contains("rope_parameters") && !config.at("rope_parameters").is_null()) {
    const json& rope = config.at("rope_parameters");
    check(rope.is_object(), source, ": rope_parameters is not a JSON object");
    if (rope.contains("rope_type")) {
      check(rope.at("rope_type") == "default", source, ": rope_type ", rope.at("rope_type").dump(),
            " is not supported (only \"default\")");
    }
    c.rope_theta = positive_float(rope, "rope_theta", 10000.0f, source);
  } else {
    c.rope_theta = positive_float(config, "rope_theta", 10000.0f, source);
  }
  c.tie_word_embeddings = boolean(config, "tie_word_embeddings", false, source);
  c.bos_token_id = token_id(config, "bos_token_id", 1, c.vocab_size, source);
  c.eos_token_id = token_id(config, "eos_token_id", 2, c.vocab_size, source);
  return c;
}

std::string read_text_file(const std::filesystem::path& path, std::uintmax_t max_bytes) {
  std::error_code ec;
  const std::uintmax_t size = std::filesystem::file_size(path, ec);
  check(!ec, "cannot read ", path, ": ", ec.message());
  check(size <= max_bytes, path, " is ", size, " bytes, more than the ", max_bytes, " accepted");
  std::ifstream in(path, std::ios::binary);
  check(in.good(), "cannot open ", path);
  std::ostringstream text;
  text << in.rdbuf();
  check(!in.bad(), "error reading ", path);
  return text.str();
}

LlamaConfig load_llama_config(const std::filesystem::path& path) {
  return parse_llama_config(read_text_file(path, kMaxConfigBytes), path.string());
}

}  // namespace llama
