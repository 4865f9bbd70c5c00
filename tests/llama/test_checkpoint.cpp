// Loading checkpoints: config.json validation and the errors for damaged or inconsistent files.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include "engine/checkpoint.hpp"
#include "engine/config.hpp"
#include "engine/model.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "test_helpers.hpp"

namespace {

using llama_test::copy_reference;
using llama_test::contains;
using llama_test::error_of;
using llama_test::read_file;
using llama_test::TempDir;
using llama_test::write_file;

/// The error loading the model from `dir` gives ("" when it loads).
std::string load_error(const std::filesystem::path& dir) {
  return error_of([&] { llama::load_model(dir); });
}

std::string config_error(const nlohmann::json& config) {
  return error_of([&] { llama::parse_llama_config(config.dump(), "config.json"); });
}

nlohmann::json valid_config() {
  return nlohmann::json::parse(read_file(llama_test::reference_dir("gqa_f32") / "config.json"));
}

/// Rewrites the JSON header of a single-file checkpoint with `edit`, keeping the data section.
template <class Edit>
void edit_header(const std::filesystem::path& file, Edit edit) {
  const std::string bytes = read_file(file);
  std::uint64_t length = 0;
  for (int k = 7; k >= 0; --k) length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  edit(header);
  write_file(file, llama_test::safetensors_bytes(llama_test::padded(header.dump()), bytes.substr(8 + length)));
}

}  // namespace

TEST_CASE("config: fields, Hugging Face defaults and both rope_theta spellings") {
  nlohmann::json config = valid_config();
  llama::LlamaConfig c = llama::parse_llama_config(config.dump(), "config.json");
  CHECK(c.hidden_size == 64);
  CHECK(c.num_key_value_heads == 2);
  CHECK(c.head_dim == 16);
  CHECK(c.rope_theta == 10000.0f);

  config.erase("rope_parameters");
  config["rope_theta"] = 250000.0;
  config.erase("num_key_value_heads");
  config.erase("rms_norm_eps");
  config.erase("head_dim");
  c = llama::parse_llama_config(config.dump(), "config.json");
  CHECK(c.rope_theta == 250000.0f);
  CHECK(c.num_key_value_heads == c.num_attention_heads);
  CHECK(c.rms_norm_eps == 1e-6f);
  CHECK(c.head_dim == 16);
}

TEST_CASE("config: bad values are errors naming the field") {
  auto with = [](const char* key, const nlohmann::json& value) {
    nlohmann::json config = valid_config();
    config[key] = value;
    return config_error(config);
  };
  CHECK(contains(with("hidden_size", 0), "\"hidden_size\" = 0 is out of range"));
  CHECK(contains(with("hidden_size", -64), "\"hidden_size\" = -64 is out of range"));
  CHECK(contains(with("hidden_size", "64"), "\"hidden_size\" must be an integer"));
  CHECK(contains(with("vocab_size", 1e12), "\"vocab_size\" must be an integer"));
  CHECK(contains(with("num_hidden_layers", 123456789012LL), "out of range"));
  CHECK(contains(with("num_key_value_heads", 3), "num_attention_heads 4 is not divisible by num_key_value_heads 3"));
  CHECK(contains(with("rms_norm_eps", -1.0), "\"rms_norm_eps\" = -1.0 must be positive"));
  CHECK(contains(with("hidden_act", "gelu"), "hidden_act \"gelu\" is not supported"));
  CHECK(contains(with("rope_scaling", nlohmann::json{{"type", "linear"}, {"factor", 2.0}}), "rope_scaling"));
  CHECK(contains(with("mlp_bias", true), "\"mlp_bias\": true is not supported"));
  {
    nlohmann::json config = valid_config();
    config.erase("head_dim");
    config["num_attention_heads"] = 6;
    config["num_key_value_heads"] = 6;
    CHECK(contains(config_error(config), "hidden_size 64 is not divisible by num_attention_heads 6"));
  }
  {
    nlohmann::json config = valid_config();
    config.erase("hidden_size");
    CHECK(contains(config_error(config), "missing required field \"hidden_size\""));
  }
  CHECK(contains(error_of([] { llama::parse_llama_config("{\"hidden_size\": 64,", "config.json"); }), "not valid JSON"));
}

TEST_CASE("checkpoint: missing files and directories") {
  const TempDir dir;
  CHECK(contains(load_error(dir.path() / "nope"), "does not exist"));
  CHECK(contains(load_error(dir.path()), "config.json"));
  const auto model = copy_reference("gqa_f32", dir);
  std::filesystem::remove(model / "model.safetensors");
  CHECK(contains(load_error(model), "has neither model.safetensors nor model.safetensors.index.json"));
}

TEST_CASE("checkpoint: truncated weights") {
  const TempDir dir;
  const auto model = copy_reference("gqa_f32", dir);
  const std::string bytes = read_file(model / "model.safetensors");
  for (const std::size_t size : {std::size_t{0}, std::size_t{5}, std::size_t{100}, bytes.size() / 2, bytes.size() - 1}) {
    write_file(model / "model.safetensors", bytes.substr(0, size));
    CHECK(load_error(model) != "");
  }
  write_file(model / "model.safetensors", bytes.substr(0, bytes.size() / 2));
  CHECK(contains(load_error(model), "truncated"));
}

TEST_CASE("checkpoint: a missing tensor is named, all of them are listed") {
  const TempDir dir;
  const auto model = copy_reference("gqa_f32", dir);
  edit_header(model / "model.safetensors", [](nlohmann::json& header) {
    // Renaming keeps the data section tiled exactly; the model then lacks the original names.
    header["renamed.q"] = header["model.layers.1.self_attn.q_proj.weight"];
    header.erase("model.layers.1.self_attn.q_proj.weight");
    header["renamed.norm"] = header["model.norm.weight"];
    header.erase("model.norm.weight");
  });
  const std::string message = load_error(model);
  CHECK(contains(message, "2 required tensors are missing"));
  CHECK(contains(message, "'model.layers.1.self_attn.q_proj.weight'"));
  CHECK(contains(message, "'model.norm.weight'"));
}

TEST_CASE("checkpoint: shapes must match config.json") {
  const TempDir dir;
  const auto model = copy_reference("gqa_f32", dir);
  nlohmann::json config = nlohmann::json::parse(read_file(model / "config.json"));
  config["intermediate_size"] = 128;
  write_file(model / "config.json", config.dump());
  CHECK(contains(load_error(model), "tensor 'model.layers.0.mlp.gate_proj.weight' has shape [160, 64], but config.json "
                                    "implies [128, 64]"));
}

TEST_CASE("checkpoint: weights of an unsupported dtype are named") {
  const TempDir dir;
  const auto model = copy_reference("gqa_f32", dir);
  edit_header(model / "model.safetensors", [](nlohmann::json& header) {
    header["model.norm.weight"]["dtype"] = "I32";  // same size, so the file still validates
  });
  CHECK(contains(load_error(model), "tensor 'model.norm.weight' has dtype I32"));
}

TEST_CASE("checkpoint: extra tensors are ignored; misaligned tensors are errors") {
  const TempDir dir;
  const auto model = copy_reference("gqa_f32", dir);
  const std::string bytes = read_file(model / "model.safetensors");
  std::uint64_t length = 0;
  for (int k = 7; k >= 0; --k) length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  nlohmann::json header = nlohmann::json::parse(bytes.substr(8, length));
  const std::string data = bytes.substr(8 + length);
  header["model.layers.0.self_attn.rotary_emb.inv_freq"] = {
      {"dtype", "I64"}, {"shape", {2}}, {"data_offsets", {data.size(), data.size() + 16}}};
  write_file(model / "model.safetensors",
             llama_test::safetensors_bytes(llama_test::padded(header.dump()), data + std::string(16, '\0')));
  CHECK(load_error(model) == "");

  // The same file with its header one byte longer: every tensor starts at an odd address.
  write_file(model / "model.safetensors",
             llama_test::safetensors_bytes(llama_test::padded(header.dump()) + " ", data + std::string(16, '\0')));
  CHECK(contains(load_error(model), "not aligned to its 4-byte elements"));
}

TEST_CASE("checkpoint: sharded index problems") {
  const TempDir dir;
  const auto model = copy_reference("sharded_f16", dir);
  const auto index_path = model / "model.safetensors.index.json";
  const nlohmann::json index = nlohmann::json::parse(read_file(index_path));
  auto with_index = [&](const nlohmann::json& edited) {
    write_file(index_path, edited.dump());
    return load_error(model);
  };
  CHECK(with_index(index) == "");
  {
    nlohmann::json edited = index;
    edited["weight_map"]["model.norm.weight"] = "../model-00001-of-00008.safetensors";
    CHECK(contains(with_index(edited), "not a file name in the checkpoint directory"));
  }
  {
    nlohmann::json edited = index;
    edited["weight_map"]["model.norm.weight"] = "model-00009-of-00008.safetensors";
    CHECK(contains(with_index(edited), "cannot open"));
  }
  {
    nlohmann::json edited = index;
    const std::string norm_file = index["weight_map"]["model.norm.weight"];
    const std::string other = norm_file == "model-00001-of-00008.safetensors" ? "model-00002-of-00008.safetensors"
                                                                               : "model-00001-of-00008.safetensors";
    edited["weight_map"]["model.norm.weight"] = other;
    CHECK(contains(with_index(edited), "places 'model.norm.weight' in " + other + ", which does not contain it"));
  }
  {
    // Dropping every entry of the embedding's shard leaves that shard unread.
    nlohmann::json edited = index;
    const std::string shard = index["weight_map"]["model.embed_tokens.weight"];
    for (const auto& [tensor, file] : index["weight_map"].items()) {
      if (file == shard) edited["weight_map"].erase(tensor);
    }
    CHECK(contains(with_index(edited), "'model.embed_tokens.weight'"));
  }
  CHECK(contains(with_index(nlohmann::json{{"metadata", {}}}), "has no \"weight_map\""));
  write_file(index_path, "{\"weight_map\": ");
  CHECK(contains(load_error(model), "not valid JSON"));
}
