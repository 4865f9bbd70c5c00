#pragma once
// Where the token ids of the evaluation's text inputs (prompts, calibration prompts, held-out text)
// come from: the checkpoint's SentencePiece tokenizer.model, or -- for models whose tokenizer is not
// SentencePiece (Llama-3, SmolLM, Mistral's tokenizer.json) -- files of token ids written by
// tools/tokenize_hf.py with the model's own tokenizer: one sequence per line, decimal ids separated
// by commas, BOS included ("128000,791,6864"). Byte-level BPE is the `tokenizers` package's job,
// not ours.

#include <filesystem>
#include <optional>
#include <vector>

#include "engine/config.hpp"
#include "engine/tokenizer.hpp"

namespace llama {

class TokenInput {
 public:
  /// `ids_files`: every input is a file of token ids; otherwise MODEL/tokenizer.model is loaded
  /// (and checked against the model's vocabulary).
  TokenInput(const std::filesystem::path& model, bool ids_files, const LlamaConfig& config);

  /// One sequence per non-blank line, BOS first: a prompt file through the tokenizer, or an ids
  /// file as written. Errors name the file and line (an id outside the vocabulary included).
  std::vector<std::vector<int>> lines(const std::filesystem::path& file) const;
  /// The whole file as one sequence, BOS first: a text tokenized once, or the lines of an ids file
  /// one after another.
  std::vector<int> whole(const std::filesystem::path& file) const;
  /// The beginning-of-sequence id: the tokenizer's, or config.json's bos_token_id for ids files.
  int bos_id() const;

 private:
  std::optional<Tokenizer> tokenizer_;
  int vocab_size_;
  int bos_id_;
};

}  // namespace llama
