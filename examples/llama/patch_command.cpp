#include "patch_command.hpp"

#include <chrono>
#include <iostream>
#include <memory>

#include "error.hpp"
#include "evaluation.hpp"
#include "patched_checkpoint.hpp"
#include "threads.hpp"
#include "tokenizer.hpp"

namespace llama {
namespace {

struct PatchOptions {
  std::filesystem::path model;
  std::string layers;
  int block = 64;
  std::string projection;
  double damping = 1e-2;
  std::string spectra = "full";
  std::filesystem::path calibration = FFTMAT_LLAMA_DATA "/calibration_prompts.txt";
  int max_len = 256;
  std::filesystem::path out;
  bool copy = false;
  int threads = 0;  // 0: OpenMP's default (all cores)
};

void run_patch(const PatchOptions& o) {
  // Everything the command line says is checked before the calibration, which can take an hour.
  check(!has_saved_patch(o.model), "--model ", o.model, " is a patched checkpoint; patch its base instead");
  const LlamaConfig config = load_llama_config(o.model / "config.json");
  PatchSettings settings;
  settings.layers = parse_layers(o.layers, config.num_hidden_layers);
  settings.block_size = o.block;
  settings.projection = parse_projection(o.projection);
  settings.damping = o.damping;
  settings.spectra = o.spectra == "bfloat16" ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  check(settings.projection != Projection::dense && settings.projection != Projection::zero, "projection '",
        o.projection, "' leaves nothing to save: patch with frobenius, calibrated or sequential (eval --projection ",
        o.projection, " needs no saved patch)");
  check_patch_settings(settings, config);
  check_patched_output(o.out);

  std::vector<std::vector<int>> calibration;
  std::string calibration_description;
  if (settings.projection == Projection::calibrated || settings.projection == Projection::sequential) {
    check(o.max_len >= 2 && o.max_len <= config.max_position_embeddings, "--max-len ", o.max_len,
          " must be between 2 and the model's max_position_embeddings ", config.max_position_embeddings);
    const Tokenizer tokenizer(o.model / "tokenizer.model");
    check(tokenizer.vocab_size() <= config.vocab_size, "tokenizer has ", tokenizer.vocab_size(),
          " pieces but the model's vocab_size is ", config.vocab_size);
    calibration = tokenize_prompt_file(tokenizer, o.calibration, o.max_len);
    calibration_description = std::to_string(calibration.size()) + " prompts of " + o.calibration.string() +
                              ", at most " + std::to_string(o.max_len) + " tokens each";
  }

  const auto start = std::chrono::steady_clock::now();
  const auto checkpoint = std::make_shared<const Checkpoint>(o.model);
  Model teacher(checkpoint), student(checkpoint);
  patch_model(student, teacher, settings, calibration, [](const std::string& line) { std::cerr << line << '\n'; });
  const SavedPatch patch = make_saved_patch(student, settings, calibration_description);
  save_patched_checkpoint(*checkpoint, patch, o.out, o.copy ? BaseFiles::copy : BaseFiles::link);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cerr << "wrote " << o.out.string() << ": " << describe(patch) << ", " << patch.projections.size()
            << " projections, base files " << (o.copy ? "copied" : "linked") << ", in " << seconds << " s\n";
}

}  // namespace

std::function<void()> add_patch_command(CLI::App& app) {
  auto options = std::make_shared<PatchOptions>();
  CLI::App* patch = app.add_subcommand(
      "patch", "Replace the MLPs of chosen layers by block-circulant matrices once and save the result as a "
               "checkpoint directory (base files linked or copied, the new projections in "
               "fftmat_patch.safetensors) that every command accepts as --model");
  patch->add_option("--model", options->model, "Base checkpoint directory")->required()->check(CLI::ExistingDirectory);
  patch->add_option("--layers", options->layers, "layers to patch: 0, 0-3, 0,5,9 or all")->required();
  patch->add_option("--block", options->block, "block size b (must divide hidden and intermediate sizes)")
      ->capture_default_str();
  patch->add_option("--projection", options->projection,
                    "frobenius (nearest in Frobenius norm), calibrated (closed-form fit on the base model's "
                    "activations), sequential (layer by layer on the patched model's inputs)")
      ->required();
  patch->add_option("--damping", options->damping, "calibration damping, relative to trace(G_f)/q per frequency bin")
      ->capture_default_str();
  patch->add_option("--spectra", options->spectra, "precision of the spectra the products read: full or bfloat16")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "bfloat16"}));
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
