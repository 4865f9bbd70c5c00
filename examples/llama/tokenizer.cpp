#include "tokenizer.hpp"

#include <sentencepiece_processor.h>

#include "error.hpp"

namespace llama {

Tokenizer::Tokenizer(const std::filesystem::path& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  check(std::filesystem::is_regular_file(model_path), "tokenizer model ", model_path, " does not exist");
  const auto status = processor_->Load(model_path.string());
  check(status.ok(), "cannot load tokenizer model ", model_path, ": ", status.ToString());
  check(processor_->bos_id() >= 0, "tokenizer model ", model_path, " defines no BOS token");
}

Tokenizer::~Tokenizer() = default;
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;

std::vector<int> Tokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  check(status.ok(), "cannot tokenize the prompt: ", status.ToString());
  ids.insert(ids.begin(), processor_->bos_id());
  return ids;
}

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  for (const int id : ids) {
    check(id >= 0 && id < processor_->GetPieceSize(), "token id ", id, " is outside the tokenizer's vocabulary of ",
          processor_->GetPieceSize());
  }
  std::string text;
  const auto status = processor_->Decode(ids, &text);
  check(status.ok(), "cannot decode token ids: ", status.ToString());
  return text;
}

int Tokenizer::bos_id() const { return processor_->bos_id(); }
int Tokenizer::eos_id() const { return processor_->eos_id(); }
int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace llama
