#pragma once
// The fields of a Hugging Face LlamaConfig (config.json) that the forward pass needs.

#include <cstdint>
#include <filesystem>
#include <string>

namespace llama {

struct LlamaConfig {
  int hidden_size = 0;              // d: width of the residual stream
  int intermediate_size = 0;        // width of the SwiGLU hidden layer
  int num_hidden_layers = 0;
  int num_attention_heads = 0;      // query heads
  int num_key_value_heads = 0;      // key/value heads (grouped-query attention); HF default: query heads
  int head_dim = 0;                 // HF default: hidden_size / num_attention_heads
  int vocab_size = 0;
  int max_position_embeddings = 2048;  // HF default
  float rms_norm_eps = 1e-6f;          // HF default
  float rope_theta = 10000.0f;         // HF default
  bool tie_word_embeddings = false;    // HF default
  int bos_token_id = 1;                // HF default
  int eos_token_id = 2;                // HF default (the first one when the config lists several)

  int q_dim() const { return num_attention_heads * head_dim; }    // rows of q_proj
  int kv_dim() const { return num_key_value_heads * head_dim; }   // rows of k_proj and v_proj
};

/// The largest config.json read (real ones are about 1 KB).
inline constexpr std::uintmax_t kMaxConfigBytes = 1 << 20;

/// Parses and validates a config.json text; `source` names it in error messages. Sizes must be
/// positive and bounded, heads must divide evenly, and settings that change the semantics beyond
/// Llama-2 (rope_scaling, biases, another activation) are rejected rather than ignored.
LlamaConfig parse_llama_config(const std::string& json_text, const std::string& source);

/// Reads `path` (at most kMaxConfigBytes) and parses it.
LlamaConfig load_llama_config(const std::filesystem::path& path);

/// Reads a small text file whole, refusing files larger than `max_bytes`.
std::string read_text_file(const std::filesystem::path& path, std::uintmax_t max_bytes);

}  // namespace llama
