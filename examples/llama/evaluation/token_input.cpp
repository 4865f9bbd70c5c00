#include "token_input.hpp"

#include <sstream>

#include "engine/error.hpp"
#include "evaluation.hpp"

namespace llama {

TokenInput::TokenInput(const std::filesystem::path& model, bool ids_files, const LlamaConfig& config)
    : vocab_size_(config.vocab_size), bos_id_(config.bos_token_id) {
  if (ids_files) return;
  check(std::filesystem::exists(model / "tokenizer.model"), model.string(), " has no tokenizer.model (SentencePiece); ",
        "for a tokenizer.json, write the inputs as token ids with tools/tokenize_hf.py and pass --ids-input");
  tokenizer_.emplace(model / "tokenizer.model");
  check(tokenizer_->vocab_size() <= config.vocab_size, "tokenizer has ", tokenizer_->vocab_size(),
        " pieces but the model's vocab_size is ", config.vocab_size);
  bos_id_ = tokenizer_->bos_id();
}

std::vector<std::vector<int>> TokenInput::lines(const std::filesystem::path& file) const {
  std::vector<std::vector<int>> sequences;
  const std::vector<std::string> text = read_prompt_file(file);
  for (std::size_t k = 0; k < text.size(); ++k) {
    if (tokenizer_) {
      sequences.push_back(tokenizer_->encode(text[k]));
      continue;
    }
    const std::string where = file.string() + ", sequence " + std::to_string(k + 1) + " (non-blank line)";
    std::vector<int> ids;
    try {
      ids = parse_token_ids(text[k].substr(0, text[k].find_last_not_of(" \t") + 1));
    } catch (const error& e) {
      throw error(where + ": " + e.what());
    }
    for (std::size_t i = 0; i < ids.size(); ++i) {
      check(ids[i] < vocab_size_, where, ": id ", ids[i], " (entry ", i + 1, ") is outside the model's vocabulary of ",
            vocab_size_);
    }
    sequences.push_back(std::move(ids));
  }
  return sequences;
}

std::vector<int> TokenInput::whole(const std::filesystem::path& file) const {
  if (tokenizer_) return tokenizer_->encode(read_text_input(file));
  std::vector<int> ids;
  for (const std::vector<int>& line : lines(file)) ids.insert(ids.end(), line.begin(), line.end());
  return ids;
}

int TokenInput::bos_id() const { return bos_id_; }

}  // namespace llama
