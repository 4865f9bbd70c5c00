#pragma once
// The `eval` and `sweep` subcommands of fftmat-llama (patch, calibrate, evaluate, report).

#include <CLI/CLI.hpp>

#include <functional>

namespace llama {

/// Adds `eval` and `sweep` to the program's command line. Returns the function to call after
/// parsing: it runs whichever of the two was given (nothing otherwise).
std::function<void()> add_evaluation_commands(CLI::App& app);

}  // namespace llama
