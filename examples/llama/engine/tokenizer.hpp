#pragma once
// Llama-2's SentencePiece tokenizer (tokenizer.model) through libsentencepiece, with the beginning-
// of-sequence token prepended as Hugging Face's LlamaTokenizer does (add_bos_token=True).

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace sentencepiece {
class SentencePieceProcessor;
}

namespace llama {

class Tokenizer {
 public:
  /// Loads a SentencePiece model; throws llama::error when it is missing or malformed.
  explicit Tokenizer(const std::filesystem::path& model_path);
  ~Tokenizer();
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;

  /// Token ids of `text` with BOS first: "I believe" -> 1 306 4658 for Llama-2.
  std::vector<int> encode(const std::string& text) const;
  /// Text of `ids` (special tokens such as BOS produce no text).
  std::string decode(const std::vector<int>& ids) const;
  int bos_id() const;
  int eos_id() const;
  int vocab_size() const;

 private:
  std::unique_ptr<sentencepiece::SentencePieceProcessor> processor_;
};

/// Token ids written as "1,306,4658": decimal integers in [0, 2^31), separated by single commas.
/// Throws llama::error naming the text and the position of an empty list, an empty entry
/// ("1,,2"), a character that is not a digit or a number that is too large.
std::vector<int> parse_token_ids(const std::string& text);

}  // namespace llama
