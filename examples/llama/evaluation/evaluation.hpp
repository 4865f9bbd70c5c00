#pragma once
// Evaluation of a patched model (the student) against the original (the teacher), as the original
// study did it (docs/evaluation.md) and beyond: per prompt, on the last position's logits, cosine similarity,
// KL(teacher || student) in nats, top-1 agreement and top-5 overlap |intersection| / 5; plus KL and
// top-1 agreement over every prompt position, perplexity of both models on held-out text (also
// llama-perplexity's statistics, perplexity.hpp), prefill and decode tokens/s measured separately,
// and the MLPs' share of the time.

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/bench.hpp"
#include "engine/model.hpp"
#include "patched_checkpoint.hpp"
#include "patching.hpp"
#include "perplexity.hpp"
#include "token_input.hpp"

namespace llama {

struct EvalSettings {
  std::filesystem::path model;              // checkpoint directory
  std::filesystem::path prompts;            // evaluation prompts, one per line
  std::filesystem::path calibration;        // calibration prompts, one per line
  std::filesystem::path heldout;            // text for perplexity
  std::filesystem::path cache_dir;          // teacher outputs are cached here
  int max_len = 256;                        // prompts and perplexity windows are cut to this many tokens
  int perplexity_windows = 4;               // windows of max_len tokens taken from the held-out text
  int selection_windows = 0;                // the held-out windows after those, for selection_kl
  BenchSettings speed{128, 32, 3, false};   // pp / tg tokens, repetitions; no bandwidth measurement
  bool ids_input = false;                   // the three files hold token ids (token_input.hpp)
  int heldout_chunks = 0;                   // llama-perplexity chunks of max_len held-out tokens; 0: all
};

/// The study's metrics for one prompt, and ours over all positions.
struct PromptMetrics {
  int tokens = 0;
  double cosine = 0, kl = 0, top1 = 0, top5_overlap = 0;  // last position
  double kl_all_positions = 0, top1_all_positions = 0;    // means over positions
};

struct MeanWithError {
  double mean = 0, standard_error = 0;  // standard error of the mean over prompts
};

struct RowResult {
  std::string name;
  PatchSettings settings;
  MeanWithError cosine, kl, top1, top5_overlap, kl_all_positions, top1_all_positions;
  double perplexity_teacher = 0, perplexity_student = 0;
  PerplexityStatistics heldout;                         // llama-perplexity's statistics on held-out text
  SpeedMeasurement speed;
  double mlp_share_prefill = 0, mlp_share_decode = 0;  // fraction of time spent in the MLPs
  std::size_t mlp_parameter_bytes = 0;                  // bytes the MLPs read per token
  double patch_seconds = 0;                             // projection / calibration time
  std::vector<PromptMetrics> per_prompt;
};

/// Metrics of one prompt from the teacher's and student's logits (T x vocab, row-major). Throws
/// llama::error naming the side ("teacher" or "student"), position and token of a non-finite logit.
PromptMetrics compare_logits(const float* teacher, const float* student, int T, int vocab);

/// Mean and standard error of `values`.
MeanWithError mean_with_error(const std::vector<double>& values);

/// Loads the model, tokenizes the prompt files and computes (or loads from the cache) the teacher's
/// logits once; then evaluates any number of patch settings against them. When settings.model is
/// a PATCHED directory (patched_checkpoint.hpp), the teacher is its base model (the checkpoint's
/// own weights) and its saved patch can be evaluated without calibrating again.
class Evaluator {
 public:
  using Progress = std::function<void(const std::string&)>;
  Evaluator(const EvalSettings& settings, Progress progress);

  /// The saved patch of a PATCHED model, or null for a plain checkpoint.
  const SavedPatch* saved_patch() const { return saved_patch_ ? &*saved_patch_ : nullptr; }
  /// Measures a fresh student with the saved patch applied (which must exist): no calibration.
  RowResult evaluate_saved_patch(const std::string& name);
  /// Patches a fresh student with `settings` and measures it. With `selection_kl`, also stores the
  /// student's selection KL (see selection_kl) there.
  RowResult evaluate(const std::string& name, const PatchSettings& settings, double* selection_kl = nullptr);

  /// Patches a fresh student and returns its mean KL(teacher || student) over every position of the
  /// selection windows: the end of the held-out text, which neither the evaluation
  /// prompts, the perplexity nor the calibration use -- the data to choose a configuration on.
  /// Needs EvalSettings::selection_windows > 0.
  double selection_kl(const PatchSettings& settings);

  const LlamaConfig& config() const { return teacher_.config(); }
  const EvalSettings& settings() const { return settings_; }
  int prompt_count() const { return static_cast<int>(prompts_.size()); }

 private:
  /// Measures a fresh student that `patch` has patched.
  RowResult measure(const std::string& name, const PatchSettings& settings, const std::function<void(Model&)>& patch,
                    double* selection_kl);
  void load_or_compute_teacher_logits();
  double perplexity(Model& model) const;
  /// The student's llama-perplexity statistics against the teacher's held-out logits.
  PerplexityStatistics heldout_statistics(Model& student) const;
  double kl_on_selection_windows(Model& student) const;

  EvalSettings settings_;
  Progress progress_;
  std::shared_ptr<const Checkpoint> checkpoint_;
  Model teacher_;
  std::optional<SavedPatch> saved_patch_;
  std::vector<std::vector<int>> prompts_, calibration_, heldout_windows_, heldout_chunks_, selection_windows_;
  std::vector<std::vector<float>> teacher_selection_logits_;  // per selection window, T x vocab
  std::vector<std::vector<float>> teacher_logits_;  // per prompt, T x vocab
  // Per held-out chunk, the teacher's logits at its scored positions (max_len/2 .. max_len-2):
  // (max_len - 1 - max_len/2) x vocab floats each, all that the statistics need of the teacher.
  std::vector<std::vector<float>> teacher_heldout_logits_;
  double teacher_perplexity_ = 0;
  SpeedMeasurement without_mlp_speed_;              // all MLPs removed: the non-MLP time
};

/// Throws llama::error naming the flag unless `speed`'s prefill and decode lengths each fit the
/// model's context (max_position_embeddings); `prompt_flag` and `generated_flag` are their options.
void check_speed_lengths(const BenchSettings& speed, const LlamaConfig& config, const std::string& prompt_flag,
                         const std::string& generated_flag);

/// A text file (at most 100 MB) that must be UTF-8 text; errors name the file, line and byte.
std::string read_text_input(const std::filesystem::path& path);

/// Non-empty lines of a prompt file (at most 100,000 lines of 100 kB), which must be UTF-8 text;
/// errors name the file and the line.
std::vector<std::string> read_prompt_file(const std::filesystem::path& path);

/// The prompts of a prompt file (text or ids, as `input` reads it), BOS first, each cut to `max_len` tokens.
std::vector<std::vector<int>> prompt_tokens(const TokenInput& input, const std::filesystem::path& path, int max_len);

}  // namespace llama
