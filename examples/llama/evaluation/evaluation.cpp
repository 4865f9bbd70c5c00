#include "evaluation.hpp"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "engine/error.hpp"
#include "engine/finite.hpp"
#include "engine/output_file.hpp"
#include "token_input.hpp"

namespace llama {
namespace {

constexpr char kCacheMagic[8] = {'F', 'F', 'T', 'M', 'T', 'C', 'H', '2'};
constexpr std::uint64_t kMaxCacheHeader = 1 << 20;

/// XXH3-64 in hexadecimal.
std::string hex(XXH64_hash_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

/// XXH3-64 of bytes fed in pieces.
class StreamingHash {
 public:
  StreamingHash() : state_(XXH3_createState()) {
    check(state_ != nullptr, "cannot allocate an xxHash state");
    XXH3_64bits_reset(state_);
  }
  StreamingHash(const StreamingHash&) = delete;
  StreamingHash& operator=(const StreamingHash&) = delete;
  ~StreamingHash() { XXH3_freeState(state_); }

  void add(const void* data, std::size_t bytes) { XXH3_64bits_update(state_, data, bytes); }
  std::string hex_digest() const { return hex(XXH3_64bits_digest(state_)); }

 private:
  XXH3_state_t* state_;
};

/// XXH3-64 of the token ids, each prompt preceded by its length: the prompt set's fingerprint.
std::string fingerprint(const std::vector<std::vector<int>>& prompts) {
  StreamingHash hash;
  for (const auto& ids : prompts) {
    const std::uint64_t length = ids.size();
    hash.add(&length, sizeof length);
    hash.add(ids.data(), ids.size() * sizeof(int));
  }
  return hash.hex_digest();
}

/// XXH3-64 of the logits, prompt after prompt: the checksum of a cache file's payload.
std::string payload_checksum(const std::vector<std::vector<float>>& logits) {
  StreamingHash hash;
  for (const auto& values : logits) hash.add(values.data(), values.size() * sizeof(float));
  return hash.hex_digest();
}

/// What the teacher's outputs depend on: the content of every checkpoint file (config.json and
/// the safetensors files, hashed over their mapped bytes), the tokenized prompts and the length.
nlohmann::json teacher_key(const Checkpoint& checkpoint, const std::vector<std::vector<int>>& prompts, int max_len) {
  nlohmann::json files = nlohmann::json::array();
  const std::string config = read_text_file(checkpoint.directory() / "config.json", kMaxConfigBytes);
  files.push_back({{"name", "config.json"}, {"bytes", config.size()}, {"xxh3", hex(XXH3_64bits(config.data(), config.size()))}});
  for (const MappedFile& file : checkpoint.files()) {
    files.push_back({{"name", file.path().filename().string()},
                     {"bytes", file.size()},
                     {"xxh3", hex(XXH3_64bits(file.data(), file.size()))}});
  }
  return {{"format", 2}, {"files", files}, {"prompts", fingerprint(prompts)}, {"max_len", max_len}};
}

/// Why a stored key differs from `key`: the first field that does not match.
std::string key_difference(const nlohmann::json& stored, const nlohmann::json& key) {
  if (!stored.is_object()) return "its header is not a JSON object";
  for (const auto& [field, value] : key.items()) {
    if (!stored.contains(field) || stored.at(field) != value) {
      if (field == "files") return "the checkpoint's files differ in content (xxh3)";
      if (field == "prompts") return "the tokenized prompts differ";
      return "\"" + field + "\" differs";
    }
  }
  return "";
}

std::vector<double> log_softmax(const float* logits, int vocab) {
  const double top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - top);
  const double log_sum = top + std::log(sum);
  std::vector<double> result(static_cast<std::size_t>(vocab));
  for (int v = 0; v < vocab; ++v) result[v] = double(logits[v]) - log_sum;
  return result;
}

double kl_divergence(const std::vector<double>& log_p, const std::vector<double>& log_q) {
  double kl = 0;
  for (std::size_t v = 0; v < log_p.size(); ++v) kl += std::exp(log_p[v]) * (log_p[v] - log_q[v]);
  // KL >= 0 (Gibbs' inequality): only rounding makes the sum negative. A NaN stays NaN.
  return std::isnan(kl) ? kl : std::max(0.0, kl);
}

std::vector<int> top_k(const float* logits, int vocab, int k) {
  std::vector<int> order(static_cast<std::size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  order.resize(static_cast<std::size_t>(k));
  return order;
}

/// The length of the UTF-8 sequence starting at `text[k]` (RFC 3629, section 4: no overlong
/// forms, no surrogates, nothing above U+10FFFF), or 0 if none starts there.
std::size_t utf8_sequence_length(const std::string& text, std::size_t k) {
  const auto byte = [&](std::size_t i) { return i < text.size() ? static_cast<unsigned char>(text[i]) : 0u; };
  const auto continuation = [&](std::size_t i, unsigned low = 0x80, unsigned high = 0xbf) {
    return byte(i) >= low && byte(i) <= high;
  };
  const unsigned lead = byte(k);
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(k + 1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const unsigned low = lead == 0xe0 ? 0xa0 : 0x80, high = lead == 0xed ? 0x9f : 0xbf;
    return continuation(k + 1, low, high) && continuation(k + 2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const unsigned low = lead == 0xf0 ? 0x90 : 0x80, high = lead == 0xf4 ? 0x8f : 0xbf;
    return continuation(k + 1, low, high) && continuation(k + 2) && continuation(k + 3) ? 4 : 0;
  }
  return 0;
}

/// Throws llama::error naming the line and column of the first byte of `text` that makes it
/// something other than UTF-8 text: invalid UTF-8, or a control character other than tab, CR, LF.
void require_utf8_text(const std::string& text, const std::filesystem::path& path) {
  std::size_t line = 1, line_start = 0;
  for (std::size_t k = 0; k < text.size();) {
    const auto byte = static_cast<unsigned char>(text[k]);
    const std::string where = path.string() + " line " + std::to_string(line) + ", byte " +
                              std::to_string(k - line_start + 1);
    char code[8];
    std::snprintf(code, sizeof code, "0x%02x", byte);
    check(byte >= 0x20 || byte == '\t' || byte == '\r' || byte == '\n', where, ": control character ", code,
          " (a binary file?); the file must be UTF-8 text");
    const std::size_t length = utf8_sequence_length(text, k);
    check(length > 0, where, ": byte ", code, " is not valid UTF-8; the file must be UTF-8 text");
    if (byte == '\n') {
      ++line;
      line_start = k + 1;
    }
    k += length;
  }
}

}  // namespace

PromptMetrics compare_logits(const float* teacher, const float* student, int T, int vocab) {
  PromptMetrics m;
  m.tokens = T;
  const std::size_t V = static_cast<std::size_t>(vocab);
  // Every metric below would turn a NaN into a number (a top-k of NaNs is index 0, a match).
  require_finite_logits(teacher, static_cast<std::size_t>(T), V, "teacher");
  require_finite_logits(student, static_cast<std::size_t>(T), V, "student");
  for (int t = 0; t < T; ++t) {
    const float* tl = teacher + t * V;
    const float* sl = student + t * V;
    const double kl = kl_divergence(log_softmax(tl, vocab), log_softmax(sl, vocab));
    const bool same_top1 = top_k(tl, vocab, 1)[0] == top_k(sl, vocab, 1)[0];
    m.kl_all_positions += kl / T;
    m.top1_all_positions += (same_top1 ? 1.0 : 0.0) / T;
    if (t == T - 1) {
      m.kl = kl;
      m.top1 = same_top1 ? 1.0 : 0.0;
      double dot = 0, tt = 0, ss = 0;
      for (std::size_t v = 0; v < V; ++v) {
        dot += double(tl[v]) * sl[v];
        tt += double(tl[v]) * tl[v];
        ss += double(sl[v]) * sl[v];
      }
      m.cosine = dot / std::sqrt(std::max(tt * ss, 1e-300));
      const int k = std::min(5, vocab);
      const std::vector<int> top_t = top_k(tl, vocab, k), top_s = top_k(sl, vocab, k);
      int shared = 0;
      for (const int id : top_t) shared += std::count(top_s.begin(), top_s.end(), id) > 0 ? 1 : 0;
      m.top5_overlap = double(shared) / k;
    }
  }
  return m;
}

MeanWithError mean_with_error(const std::vector<double>& values) {
  const Moments m = moments(values);
  return {m.mean, std::sqrt(m.variance / double(std::max<std::size_t>(values.size(), 1)))};
}

void check_speed_lengths(const BenchSettings& speed, const LlamaConfig& config, const std::string& prompt_flag,
                         const std::string& generated_flag) {
  const int context = config.max_position_embeddings;
  check(speed.prompt_tokens <= context, prompt_flag, " ", speed.prompt_tokens,
        " prefill tokens exceed the model's context of ", context, " positions (max_position_embeddings)");
  check(speed.generated_tokens <= context, generated_flag, " ", speed.generated_tokens,
        " decoded tokens exceed the model's context of ", context, " positions (max_position_embeddings)");
}

std::string read_text_input(const std::filesystem::path& path) {
  std::string text = read_text_file(path, 100u << 20);
  require_utf8_text(text, path);
  return text;
}

std::vector<std::vector<int>> prompt_tokens(const TokenInput& input, const std::filesystem::path& path, int max_len) {
  std::vector<std::vector<int>> prompts = input.lines(path);
  for (auto& ids : prompts) ids.resize(std::min(ids.size(), std::size_t(max_len)));
  return prompts;
}

std::vector<std::string> read_prompt_file(const std::filesystem::path& path) {
  const std::string text = read_text_input(path);
  std::vector<std::string> lines;
  std::istringstream stream(text);
  std::string line;
  while (std::getline(stream, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) lines.push_back(line);
    check(lines.size() <= 100000, path.string(), " has more than 100000 prompts");
  }
  check(!lines.empty(), "prompt file ", path.string(), " has no prompts (it is empty or only blank lines)");
  return lines;
}

Evaluator::Evaluator(const EvalSettings& settings, Progress progress)
    : settings_(settings),
      progress_(std::move(progress)),
      checkpoint_(std::make_shared<const Checkpoint>(settings.model)),
      teacher_(checkpoint_),
      saved_patch_(read_saved_patch(*checkpoint_)) {
  // 4: a held-out chunk of max_len tokens must have a second half to score (perplexity_chunks).
  check(settings.max_len >= 4 && settings.max_len <= config().max_position_embeddings, "--max-len ",
        settings.max_len, " must be between 4 and the model's max_position_embeddings ",
        config().max_position_embeddings);
  const TokenInput input(settings.model, settings.ids_input, config());
  prompts_ = prompt_tokens(input, settings.prompts, settings.max_len);
  calibration_ = prompt_tokens(input, settings.calibration, settings.max_len);

  // Perplexity windows: BOS followed by max_len - 1 consecutive tokens of the held-out text.
  const std::vector<int> ids = input.whole(settings.heldout);
  const std::size_t body = static_cast<std::size_t>(settings.max_len - 1);
  check(settings.selection_windows >= 0, "the number of selection windows must be >= 0, got ",
        settings.selection_windows);
  // Selection windows come from the end of the text, the perplexity windows and the
  // llama-perplexity chunks from what precedes them: the data a configuration is chosen on is never
  // data it is reported on.
  const std::size_t selection_tokens = std::size_t(settings.selection_windows) * body;
  check(ids.size() >= selection_tokens + 1 + body, "held-out text ", settings.heldout.string(), " has ", ids.size(),
        " tokens: too few for ", settings.selection_windows, " selection windows of ", settings.max_len,
        " tokens and the perplexity windows before them");
  const std::size_t reported_end = ids.size() - selection_tokens;
  auto window_at = [&](std::size_t start) {
    std::vector<int> window{input.bos_id()};
    window.insert(window.end(), ids.begin() + static_cast<std::ptrdiff_t>(start),
                  ids.begin() + static_cast<std::ptrdiff_t>(start + body));
    return window;
  };
  for (std::size_t start = 1; start + body <= reported_end && int(heldout_windows_.size()) < settings.perplexity_windows;
       start += body) {
    heldout_windows_.push_back(window_at(start));
  }
  for (std::size_t start = reported_end; start + body <= ids.size(); start += body) {
    selection_windows_.push_back(window_at(start));
  }
  check(!heldout_windows_.empty(), "held-out text ", settings.heldout.string(), " is shorter than one window of ",
        settings.max_len, " tokens");
  const std::vector<int> reported(ids.begin(), ids.begin() + std::ptrdiff_t(reported_end));
  heldout_chunks_ =
      perplexity_chunks(reported, settings.max_len, input.bos_id(), settings.heldout_chunks, settings.heldout.string());

  load_or_compute_teacher_logits();
  progress_("teacher perplexity on " + std::to_string(heldout_windows_.size()) + " held-out windows");
  teacher_perplexity_ = perplexity(teacher_);
  const std::size_t vocab = std::size_t(config().vocab_size), first = std::size_t(first_scored_position(settings.max_len));
  for (std::size_t k = 0; k < heldout_chunks_.size(); ++k) {
    progress_("teacher logits, held-out chunk " + std::to_string(k + 1) + "/" + std::to_string(heldout_chunks_.size()));
    KvCache kv = teacher_.make_cache(settings.max_len);
    const std::vector<float> logits = teacher_.forward(heldout_chunks_[k], kv, Logits::all);
    teacher_heldout_logits_.emplace_back(logits.begin() + std::ptrdiff_t(first * vocab),
                                         logits.end() - std::ptrdiff_t(vocab));
  }
  for (std::size_t k = 0; k < selection_windows_.size(); ++k) {
    progress_("teacher logits, selection window " + std::to_string(k + 1) + "/" +
              std::to_string(selection_windows_.size()));
    KvCache kv = teacher_.make_cache(static_cast<int>(selection_windows_[k].size()));
    teacher_selection_logits_.push_back(teacher_.forward(selection_windows_[k], kv, Logits::all));
  }

  // The same model without any MLP: what is left of the time is everything but the MLPs.
  Model without_mlp(checkpoint_);
  PatchSettings all_zero;
  all_zero.projection = Projection::zero;
  for (int l = 0; l < config().num_hidden_layers; ++l) all_zero.layers.push_back(l);
  patch_model(without_mlp, teacher_, all_zero, {}, [](const std::string&) {});
  progress_("timing the model without MLPs");
  without_mlp_speed_ = measure_speed(without_mlp, settings_.speed);
}

void Evaluator::load_or_compute_teacher_logits() {
  progress_("hashing the checkpoint for the teacher cache");
  nlohmann::json key = teacher_key(*checkpoint_, prompts_, settings_.max_len);
  const std::filesystem::path cache = settings_.cache_dir / ("teacher-" + fingerprint(prompts_) + ".bin");
  const std::size_t vocab = static_cast<std::size_t>(config().vocab_size);

  // Reuse only a file whose key matches exactly, whose size is consistent with it and whose
  // payload has the checksum its header records.
  if (std::ifstream in{cache, std::ios::binary}) {
    std::string reason = "it is not a teacher cache file";
    char magic[8];
    std::uint64_t header_bytes = 0;
    if (in.read(magic, 8) && std::memcmp(magic, kCacheMagic, 8) == 0 &&
        in.read(reinterpret_cast<char*>(&header_bytes), 8) && header_bytes <= kMaxCacheHeader) {
      std::string header(header_bytes, '\0');
      nlohmann::json stored = in.read(header.data(), std::streamsize(header_bytes))
                                  ? nlohmann::json::parse(header, nullptr, false)
                                  : nlohmann::json();
      const std::string checksum =
          stored.is_object() && stored.contains("payload_xxh3") && stored.at("payload_xxh3").is_string()
              ? stored.at("payload_xxh3").get<std::string>()
              : "";
      if (stored.is_object()) stored.erase("payload_xxh3");
      reason = stored.is_discarded() ? "its header is not valid JSON" : key_difference(stored, key);
      if (reason.empty()) {
        std::vector<std::vector<float>> logits;
        bool complete = true;
        for (const auto& ids : prompts_) {
          std::vector<float> values(ids.size() * vocab);
          complete = complete && bool(in.read(reinterpret_cast<char*>(values.data()),
                                              std::streamsize(values.size() * sizeof(float))));
          logits.push_back(std::move(values));
        }
        if (!complete || in.peek() != std::char_traits<char>::eof()) {
          reason = "its size does not match its header (truncated or appended to)";
        } else if (payload_checksum(logits) != checksum) {
          reason = "its logits do not match the checksum in its header (the file was altered or damaged)";
        } else {
          teacher_logits_ = std::move(logits);
          progress_("teacher logits loaded from " + cache.string() + " (checksum verified)");
          return;
        }
      }
    }
    progress_("teacher cache " + cache.string() + " is not used: " + reason + "; recomputing");
  }

  teacher_logits_.clear();
  for (std::size_t k = 0; k < prompts_.size(); ++k) {
    progress_("teacher logits, prompt " + std::to_string(k + 1) + "/" + std::to_string(prompts_.size()));
    KvCache kv = teacher_.make_cache(static_cast<int>(prompts_[k].size()));
    teacher_logits_.push_back(teacher_.forward(prompts_[k], kv, Logits::all));
    require_finite_logits(teacher_logits_.back().data(), prompts_[k].size(), vocab,
                          "teacher, prompt " + std::to_string(k + 1) + " of " + settings_.prompts.string());
  }
  key["payload_xxh3"] = payload_checksum(teacher_logits_);
  std::string bytes(kCacheMagic, 8);
  const std::string header = key.dump();
  const std::uint64_t header_bytes = header.size();
  bytes.append(reinterpret_cast<const char*>(&header_bytes), 8);
  bytes += header;
  for (const auto& values : teacher_logits_) {
    bytes.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float));
  }
  std::filesystem::create_directories(settings_.cache_dir);
  write_file_atomically(cache, bytes);
}

double Evaluator::perplexity(Model& model) const {
  double nll = 0;
  std::size_t count = 0;
  const int vocab = config().vocab_size;
  for (const auto& window : heldout_windows_) {
    KvCache kv = model.make_cache(static_cast<int>(window.size()));
    const std::vector<float> logits = model.forward(window, kv, Logits::all);
    require_finite_logits(logits.data(), window.size(), std::size_t(vocab),
                          "perplexity window " + std::to_string(&window - heldout_windows_.data() + 1) + " of " +
                              settings_.heldout.string());
    for (std::size_t t = 0; t + 1 < window.size(); ++t) {
      nll -= log_softmax(logits.data() + t * std::size_t(vocab), vocab)[std::size_t(window[t + 1])];
      ++count;
    }
  }
  return std::exp(nll / double(count));
}

double Evaluator::kl_on_selection_windows(Model& student) const {
  check(!selection_windows_.empty(), "no selection windows: EvalSettings::selection_windows is 0");
  double kl = 0;
  for (std::size_t k = 0; k < selection_windows_.size(); ++k) {
    KvCache kv = student.make_cache(static_cast<int>(selection_windows_[k].size()));
    const std::vector<float> logits = student.forward(selection_windows_[k], kv, Logits::all);
    try {
      kl += compare_logits(teacher_selection_logits_[k].data(), logits.data(),
                           static_cast<int>(selection_windows_[k].size()), config().vocab_size)
                .kl_all_positions;
    } catch (const error& e) {
      throw error("selection window " + std::to_string(k + 1) + " of " + settings_.heldout.string() + ", " +
                  e.what());
    }
  }
  return kl / double(selection_windows_.size());  // windows of equal length: the mean over positions
}

double Evaluator::selection_kl(const PatchSettings& patch) {
  Model student(checkpoint_);
  patch_model(student, teacher_, patch, calibration_, progress_);
  progress_("KL on the selection windows");
  return kl_on_selection_windows(student);
}


PerplexityStatistics Evaluator::heldout_statistics(Model& student) const {
  const int first = first_scored_position(settings_.max_len);
  PerplexityAccumulator accumulator;
  for (std::size_t k = 0; k < heldout_chunks_.size(); ++k) {
    KvCache kv = student.make_cache(settings_.max_len);
    const std::vector<float> logits = student.forward(heldout_chunks_[k], kv, Logits::all);
    accumulator.add(teacher_heldout_logits_[k].data(), logits.data() + std::size_t(first) * std::size_t(config().vocab_size),
                    heldout_chunks_[k].data() + first + 1, std::size_t(settings_.max_len - 1 - first),
                    config().vocab_size, "held-out chunk " + std::to_string(k + 1) + " of " + settings_.heldout.string());
  }
  return accumulator.statistics();
}

RowResult Evaluator::evaluate(const std::string& name, const PatchSettings& patch, double* selection_kl) {
  return measure(
      name, patch, [&](Model& student) { patch_model(student, teacher_, patch, calibration_, progress_); },
      selection_kl);
}

RowResult Evaluator::evaluate_saved_patch(const std::string& name) {
  check(saved_patch_.has_value(), settings_.model.string(), " holds no saved patch");
  return measure(
      name, saved_patch_->settings, [&](Model& student) { apply_saved_patch(*saved_patch_, student); }, nullptr);
}

RowResult Evaluator::measure(const std::string& name, const PatchSettings& settings,
                             const std::function<void(Model&)>& patch, double* selection_kl) {
  RowResult row;
  row.name = name;
  row.settings = settings;
  Model student(checkpoint_);
  const auto start = std::chrono::steady_clock::now();
  patch(student);
  row.patch_seconds = seconds_since(start);

  const int vocab = config().vocab_size;
  std::vector<double> cosine, kl, top1, top5, kl_all, top1_all;
  for (std::size_t k = 0; k < prompts_.size(); ++k) {
    progress_("evaluating prompt " + std::to_string(k + 1) + "/" + std::to_string(prompts_.size()));
    KvCache kv = student.make_cache(static_cast<int>(prompts_[k].size()));
    const std::vector<float> logits = student.forward(prompts_[k], kv, Logits::all);
    PromptMetrics m;
    try {
      m = compare_logits(teacher_logits_[k].data(), logits.data(), static_cast<int>(prompts_[k].size()), vocab);
    } catch (const error& e) {
      throw error("prompt " + std::to_string(k + 1) + " of " + settings_.prompts.string() + ", " + e.what());
    }
    row.per_prompt.push_back(m);
    cosine.push_back(m.cosine);
    kl.push_back(m.kl);
    top1.push_back(m.top1);
    top5.push_back(m.top5_overlap);
    kl_all.push_back(m.kl_all_positions);
    top1_all.push_back(m.top1_all_positions);
  }
  row.cosine = mean_with_error(cosine);
  row.kl = mean_with_error(kl);
  row.top1 = mean_with_error(top1);
  row.top5_overlap = mean_with_error(top5);
  row.kl_all_positions = mean_with_error(kl_all);
  row.top1_all_positions = mean_with_error(top1_all);

  if (selection_kl != nullptr) {
    progress_("KL on the selection windows");
    *selection_kl = kl_on_selection_windows(student);
  }
  progress_("perplexity on held-out text");
  row.perplexity_teacher = teacher_perplexity_;
  row.perplexity_student = perplexity(student);
  progress_("llama-perplexity statistics on " + std::to_string(heldout_chunks_.size()) + " held-out chunks");
  row.heldout = heldout_statistics(student);
  progress_("timing prefill and decode");
  row.speed = measure_speed(student, settings_.speed);
  // Time per token t = 1 / rate; the MLPs' share is 1 - t_without_mlp / t.
  row.mlp_share_prefill = std::max(0.0, 1.0 - row.speed.prefill.mean / without_mlp_speed_.prefill.mean);
  row.mlp_share_decode = std::max(0.0, 1.0 - row.speed.decode.mean / without_mlp_speed_.decode.mean);
  for (const Layer& layer : student.layers) {
    row.mlp_parameter_bytes +=
        layer.mlp.gate->parameter_bytes() + layer.mlp.up->parameter_bytes() + layer.mlp.down->parameter_bytes();
  }
  return row;
}

}  // namespace llama
