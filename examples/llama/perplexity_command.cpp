#include "perplexity_command.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>

#include "engine/bench.hpp"
#include "engine/error.hpp"
#include "engine/output_file.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "evaluation/perplexity.hpp"
#include "evaluation/token_input.hpp"
#include "evaluation_commands.hpp"
#include "threads.hpp"

namespace llama {
namespace {

struct PerplexityOptions {
  std::filesystem::path model = FFTMAT_DEFAULT_MODEL;
  std::filesystem::path student;  // a second checkpoint; empty: patch the model in memory
  std::filesystem::path file;
  std::filesystem::path calibration = FFTMAT_LLAMA_DATA "/calibration_prompts.txt";
  std::filesystem::path out;
  int ctx = 512;
  int chunks = 0;  // 0: all
  bool ids_input = false;
  int threads = 0;
  PatchOptions patch;
};

std::string minutes_and_seconds(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%d:%02d", int(seconds) / 60, int(seconds) % 60);
  return text;
}

void run_perplexity(const PerplexityOptions& o) {
  // Everything the command line says is checked before a model is built or a token scored.
  const LlamaConfig config = load_llama_config(o.model / "config.json");
  check(o.ctx <= config.max_position_embeddings, "--ctx ", o.ctx, " exceeds the model's context of ",
        config.max_position_embeddings, " positions (max_position_embeddings)");
  if (!o.out.empty()) {
    require_writable_directory(o.out.parent_path().empty() ? "." : o.out.parent_path(), "output directory (--out)");
  }
  const bool patch_in_memory = o.student.empty();
  PatchSettings patch;
  if (patch_in_memory) {
    patch = patch_settings(o.patch, config);
  } else {
    const LlamaConfig student_config = load_llama_config(o.student / "config.json");
    check(student_config.vocab_size == config.vocab_size, "--student ", o.student.string(), " has a vocabulary of ",
          student_config.vocab_size, " but --model has ", config.vocab_size);
  }
  const TokenInput input(o.model, o.ids_input, config);
  const std::vector<std::vector<int>> chunks =
      perplexity_chunks(input.whole(o.file), o.ctx, input.bos_id(), o.chunks, o.file.string());
  const auto progress = progress_printer(std::make_shared<std::string>("[perplexity] "));

  auto checkpoint = std::make_shared<const Checkpoint>(o.model);
  Model base(checkpoint);
  Model student = patch_in_memory ? Model(checkpoint) : load_model(o.student);
  if (patch_in_memory) {
    std::vector<std::vector<int>> calibration;
    if (needs_calibration(patch.projection)) {
      calibration = input.lines(o.calibration);
      for (auto& prompt : calibration) prompt.resize(std::min(prompt.size(), std::size_t(o.ctx)));
    }
    patch_model(student, base, patch, calibration, progress);
  }

  const int first = first_scored_position(o.ctx);
  const std::size_t vocab = std::size_t(config.vocab_size), scored = std::size_t(o.ctx - 1 - first);
  PerplexityAccumulator accumulator;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t k = 0; k < chunks.size(); ++k) {
    // Base and student side by side, one chunk at a time: two chunks of logits is all the memory.
    KvCache base_cache = base.make_cache(o.ctx), student_cache = student.make_cache(o.ctx);
    const std::vector<float> base_logits = base.forward(chunks[k], base_cache, Logits::all);
    const std::vector<float> student_logits = student.forward(chunks[k], student_cache, Logits::all);
    accumulator.add(base_logits.data() + std::size_t(first) * vocab, student_logits.data() + std::size_t(first) * vocab,
                    chunks[k].data() + first + 1, scored, config.vocab_size,
                    "chunk " + std::to_string(k + 1) + " of " + o.file.string());
    const double elapsed = seconds_since(start);
    std::string line = "chunk " + std::to_string(k + 1) + "/" + std::to_string(chunks.size());
    if (accumulator.tokens() >= 2) {
      const PerplexityStatistics so_far = accumulator.statistics();
      char numbers[160];
      std::snprintf(numbers, sizeof numbers, ": PPL(Q) %.4f, PPL(base) %.4f, mean KLD %.5f, same top p %.2f%%",
                    so_far.ppl_q.value, so_far.ppl_base.value, so_far.kld.value, 100 * so_far.same_top.value);
      line += numbers;
    }
    progress(line + ", ETA " + minutes_and_seconds(elapsed / double(k + 1) * double(chunks.size() - k - 1)));
  }
  finish_progress_line();

  const PerplexityStatistics statistics = accumulator.statistics();
  std::cout << "perplexity of " << (patch_in_memory ? "the patched model" : o.student.string()) << " (Q) against "
            << o.model.string() << " (base) on " << o.file.string() << ": " << chunks.size() << " chunks of " << o.ctx
            << " tokens, positions " << first << ".." << o.ctx - 2 << " of each scored\n\n";
  statistics.print(std::cout);
  if (!o.out.empty()) {
    nlohmann::json document = {{"model", o.model.string()},
                               {"file", o.file.string()},
                               {"ctx", o.ctx},
                               {"chunks", chunks.size()},
                               {"first_scored_position", first},
                               {"statistics", statistics.to_json()}};
    if (patch_in_memory) {
      document["patch"] = {{"layers", format_layers(patch.layers)}, {"block_size", patch.block_size},
                           {"projection", projection_name(patch.projection)}, {"damping", patch.damping}};
    } else {
      document["student"] = o.student.string();
    }
    write_file_atomically(o.out, document.dump(2) + "\n");
    std::cerr << "wrote " << o.out.string() << '\n';
  }
}

}  // namespace

std::function<void()> add_perplexity_command(CLI::App& app) {
  auto o = std::make_shared<PerplexityOptions>();
  CLI::App* command = app.add_subcommand(
      "perplexity", "llama-perplexity --kl-divergence on the CPU: the text tokenized once, cut into chunks of --ctx "
                    "tokens (each starts with BOS, its second half scored); PPL of the student (Q) and the base with "
                    "standard errors, ln(PPL(Q)/PPL(base)), KL(base || Q) and Δp statistics with percentiles, "
                    "same top p");
  command->add_option("--model", o->model, "the base: Hugging Face Llama checkpoint directory")
      ->capture_default_str()->check(CLI::ExistingDirectory);
  auto* student = command->add_option("--student", o->student, "the student: a second checkpoint directory, "
                                      "instead of patching --model in memory with the options below")
                      ->check(CLI::ExistingDirectory);
  command->add_option("--file", o->file, "the text to score (UTF-8; with --ids-input, a file of token ids)")
      ->required();
  command->add_option("--ctx", o->ctx, "tokens per chunk (llama-perplexity's -c)")
      ->capture_default_str()->check(CLI::Range(4, 1 << 20));
  command->add_option("--chunks", o->chunks, "score at most this many chunks (default: all that fit)")
      ->check(CLI::Range(1, 1 << 30));
  command->add_option("--calibration", o->calibration, "calibration prompts for the calibrated projections")
      ->capture_default_str();
  add_ids_input_option(*command, o->ids_input);
  for (CLI::Option* option : add_patch_options(*command, o->patch)) option->excludes(student);
  command->add_option("--out", o->out, "also write the statistics as JSON to this file");
  add_threads_option(*command, o->threads);
  return [o, command] {
    if (!*command) return;
    use_threads(o->threads);
    run_perplexity(*o);
  };
}

}  // namespace llama
