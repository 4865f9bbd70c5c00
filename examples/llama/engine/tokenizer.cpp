#include "tokenizer.hpp"

#include <sentencepiece_processor.h>

#include <algorithm>
#include <limits>

#include "error.hpp"

namespace llama {

Tokenizer::Tokenizer(const std::filesystem::path& model_path)
    : processor_(std::make_unique<sentencepiece::SentencePieceProcessor>()) {
  std::error_code ec;
  const auto status_of_file = std::filesystem::status(model_path, ec);
  check(std::filesystem::exists(status_of_file), "tokenizer model ", model_path, " does not exist");
  check(!std::filesystem::is_directory(status_of_file), "tokenizer model ", model_path, " is a directory");
  check(std::filesystem::is_regular_file(status_of_file), "tokenizer model ", model_path, " is not a regular file");
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

std::vector<int> parse_token_ids(const std::string& text) {
  check(!text.empty(), "token ids: the list is empty (give e.g. 1,306,4658)");
  std::vector<int> ids;
  std::size_t start = 0;
  while (true) {
    const std::size_t end = std::min(text.find(',', start), text.size());
    const std::string entry = text.substr(start, end - start);
    check(!entry.empty(), "token ids '", text, "': entry ", ids.size() + 1, " (at character ", start + 1,
          ") is empty");
    check(entry.find_first_not_of("0123456789") == std::string::npos, "token ids '", text, "': entry ",
          ids.size() + 1, " '", entry, "' is not a non-negative integer");
    check(entry.size() <= 10 && std::stoll(entry) <= std::numeric_limits<int>::max(), "token ids '", text,
          "': entry ", ids.size() + 1, " ", entry, " is too large");
    ids.push_back(static_cast<int>(std::stoll(entry)));
    if (end == text.size()) return ids;
    start = end + 1;
  }
}

int Tokenizer::bos_id() const { return processor_->bos_id(); }
int Tokenizer::eos_id() const { return processor_->eos_id(); }
int Tokenizer::vocab_size() const { return processor_->GetPieceSize(); }

}  // namespace llama
