#include "patch_command.hpp"

#include <chrono>
#include <iostream>
#include <memory>

#include "engine/bench.hpp"
#include "engine/error.hpp"
#include "evaluation/evaluation.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "evaluation/token_input.hpp"
#include "evaluation_commands.hpp"
#include "threads.hpp"

namespace llama {
namespace {

struct PatchCommandOptions {
  std::filesystem::path model;
  PatchOptions patch;
  bool ids_input = false;
  std::filesystem::path calibration = FFTMAT_LLAMA_DATA "/calibration_prompts.txt";
  int max_len = 256;
  std::filesystem::path out;
  bool copy = false;
  int threads = 0;  // 0: OpenMP's default (all cores)
};

void run_patch(const PatchCommandOptions& o) {
  // Everything the command line says is checked before the calibration, which can take an hour.
  check(!has_saved_patch(o.model), "--model ", o.model, " is a patched checkpoint; patch its base instead");
  const LlamaConfig config = load_llama_config(o.model / "config.json");
  const PatchSettings settings = patch_settings(o.patch, config);
  check(saved_kind(settings.projection) != nullptr, "projection '", o.patch.projection,
        "' cannot be saved: patch saves ", saved_projections(), " (eval --projection ", o.patch.projection,
        " needs no saved patch)");
  check_patched_output(o.out);

  std::vector<std::vector<int>> calibration;
  std::string calibration_description;
  if (needs_calibration(settings.projection)) {
    check(o.max_len >= 2 && o.max_len <= config.max_position_embeddings, "--max-len ", o.max_len,
          " must be between 2 and the model's max_position_embeddings ", config.max_position_embeddings);
    calibration = prompt_tokens(TokenInput(o.model, o.ids_input, config), o.calibration, o.max_len);
    calibration_description = std::to_string(calibration.size()) + " prompts of " + o.calibration.string() +
                              ", at most " + std::to_string(o.max_len) + " tokens each";
  }

  const auto start = std::chrono::steady_clock::now();
  const auto checkpoint = std::make_shared<const Checkpoint>(o.model);
  Model teacher(checkpoint), student(checkpoint);
  patch_model(student, teacher, settings, calibration, [](const std::string& line) { std::cerr << line << '\n'; });
  const SavedPatch patch = make_saved_patch(student, settings, calibration_description);
  save_patched_checkpoint(*checkpoint, patch, o.out, o.copy ? BaseFiles::copy : BaseFiles::link);
  const double seconds = seconds_since(start);
  std::cerr << "wrote " << o.out.string() << ": " << describe(patch) << ", " << patch.projections.size()
            << " projections, base files " << (o.copy ? "copied" : "linked") << ", in " << seconds << " s\n";
}

}  // namespace

std::function<void()> add_patch_command(CLI::App& app) {
  auto options = std::make_shared<PatchCommandOptions>();
  CLI::App* patch = app.add_subcommand(
      "patch", "Replace the MLPs of chosen layers by block-circulant or low-rank matrices once and save the result as a "
               "checkpoint directory (base files linked or copied, the new projections in "
               "fftmat_patch.safetensors) that every command accepts as --model");
  patch->add_option("--model", options->model, "Base checkpoint directory")->required()->check(CLI::ExistingDirectory);
  // --layers and --projection name the patch to save: no default stands in for them.
  for (CLI::Option* option : add_patch_options(*patch, options->patch)) {
    if (option->get_name() == "--layers" || option->get_name() == "--projection") option->required();
  }
  add_ids_input_option(*patch, options->ids_input);
  patch->add_option("--calibration", options->calibration, "calibration prompts, one per line")->capture_default_str();
  patch->add_option("--max-len", options->max_len, "calibration prompts are cut to this many tokens")
      ->capture_default_str();
  patch->add_option("--out", options->out, "the PATCHED directory to create (must not exist)")->required();
  patch->add_flag("--copy", options->copy,
                  "copy the base files instead of linking them (a self-contained directory as large as the base)");
  add_threads_option(*patch, options->threads);
  return [patch, options] {
    if (!*patch) return;
    use_threads(options->threads);
    run_patch(*options);
  };
}

}  // namespace llama
