#pragma once
// The `patch` subcommand of fftmat-llama: patch a checkpoint's MLPs once and save the result as a
// PATCHED checkpoint directory (patched_checkpoint.hpp) that every command accepts as --model.

#include <CLI/CLI.hpp>

#include <functional>

namespace llama {

/// Adds `patch` to the program's command line. Returns the function to call after parsing: it
/// runs the command if it was given (nothing otherwise).
std::function<void()> add_patch_command(CLI::App& app);

}  // namespace llama
