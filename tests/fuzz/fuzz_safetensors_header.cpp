// libFuzzer entry point: any input is a whole safetensors file. The parser must either accept it
// or throw llama::error; any other exception, crash, leak or undefined behaviour is a finding.

#include <cstddef>
#include <cstdint>

#include "error.hpp"
#include "safetensors.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    llama::parse_safetensors(data, size, "fuzz input");
  } catch (const llama::error&) {
    // rejected with a message: the expected outcome for malformed input
  }
  return 0;
}
