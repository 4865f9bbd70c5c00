// libFuzzer entry point for the parsers of untrusted checkpoint files: every input is given whole
// to the safetensors parser, the config.json parser and the shard index parser. Each must either
// accept it or throw llama::error; any other exception, crash, leak or undefined behaviour is a
// finding. (The JSON parsers reject a safetensors file at its first byte, and the other way
// round, so each input exercises one parser deeply.)

#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/config.hpp"
#include "engine/error.hpp"
#include "engine/safetensors.hpp"
#include "engine/shard_index.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    llama::parse_safetensors(data, size, "fuzz input");
  } catch (const llama::error&) {
    // rejected with a message: the expected outcome for malformed input
  }
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    llama::parse_llama_config(text, "fuzz config.json");
  } catch (const llama::error&) {
  }
  try {
    llama::parse_shard_index(text, "fuzz model.safetensors.index.json");
  } catch (const llama::error&) {
  }
  return 0;
}
