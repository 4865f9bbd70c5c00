#pragma once
// The `perplexity` subcommand of fftmat-llama: llama-perplexity --kl-divergence for a student
// (a second checkpoint, or the model patched in memory) against its base (perplexity.hpp).

#include <CLI/CLI.hpp>

#include <functional>

namespace llama {

/// Adds `perplexity` to the program's command line. Returns the function to call after parsing:
/// it runs the command if it was given (nothing otherwise).
std::function<void()> add_perplexity_command(CLI::App& app);

}  // namespace llama
