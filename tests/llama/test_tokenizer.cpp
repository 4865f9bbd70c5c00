// Llama-2's published token ids, checked when FFTMAT_LLAMA2_TOKENIZER names a Llama-2 tokenizer.model
// (CI: ../shared/data/llama2-tokenizer.model); exits 77, which ctest reports as skipped, otherwise.

#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "engine/error.hpp"
#include "engine/tokenizer.hpp"

namespace {
std::string tokenizer_path() {
  const char* path = std::getenv("FFTMAT_LLAMA2_TOKENIZER");
  return path ? path : "";
}
}  // namespace

TEST_CASE("tokenizer: Llama-2 ids with BOS prepended, as Hugging Face's LlamaTokenizer gives them") {
  const llama::Tokenizer tokenizer(tokenizer_path());
  CHECK(tokenizer.vocab_size() == 32000);
  CHECK(tokenizer.bos_id() == 1);
  CHECK(tokenizer.eos_id() == 2);
  CHECK(tokenizer.encode("I believe the meaning of life is") == std::vector<int>{1, 306, 4658, 278, 6593, 310, 2834, 338});
  CHECK(tokenizer.encode("Hello world") == std::vector<int>{1, 15043, 3186});
  CHECK(tokenizer.encode("") == std::vector<int>{1});
  CHECK(tokenizer.decode({1, 306, 4658, 278, 6593, 310, 2834, 338}) == "I believe the meaning of life is");
  CHECK_THROWS_AS(tokenizer.decode({32000}), llama::error);
}

int main(int argc, char** argv) {
  if (tokenizer_path().empty()) {
    std::cout << "FFTMAT_LLAMA2_TOKENIZER is not set: skipping the Llama-2 tokenizer test\n";
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
