#pragma once
// The `eval` and `sweep` subcommands of fftmat-llama (patch, calibrate, evaluate, report), and the
// options and status lines they share with `perplexity`.

#include <CLI/CLI.hpp>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "evaluation/patching.hpp"

namespace llama {

/// Adds `eval` and `sweep` to the program's command line. Returns the function to call after
/// parsing: it runs whichever of the two was given (nothing otherwise).
std::function<void()> add_evaluation_commands(CLI::App& app);

/// The patch options as given on the command line, with eval's defaults.
struct PatchOptions {
  std::string layers = "0";
  int block = 64;
  std::string projection = "calibrated";
  double damping = 1e-2;
  std::string spectra = "full";
};
/// Adds --layers, --block, --projection, --damping and --spectra; returns them.
std::vector<CLI::Option*> add_patch_options(CLI::App& command, PatchOptions& options);
/// The settings `options` describe, checked against the model (check_patch_settings).
PatchSettings patch_settings(const PatchOptions& options, const LlamaConfig& config);

/// Adds --ids-input: the command's text files hold token ids instead (token_input.hpp).
void add_ids_input_option(CLI::App& command, bool& ids_input);

/// Status lines on stderr, after `*prefix`: rewritten in place on a terminal, one per line in a log.
std::function<void(const std::string&)> progress_printer(std::shared_ptr<std::string> prefix);
/// Clears the status line on a terminal.
void finish_progress_line();

}  // namespace llama
