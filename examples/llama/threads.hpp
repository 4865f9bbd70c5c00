#pragma once
// The --threads option of every command: bounded, because the OpenMP runtime crashes or hangs when
// asked for tens of thousands of threads instead of reporting an error.

#include <CLI/CLI.hpp>

#include <string>

namespace llama {

/// Accepted thread counts: 1 .. this many per hardware thread.
inline constexpr int kMaxThreadsPerHardwareThread = 4;

/// "" when `threads` lies in [1, 4 x `hardware_threads`], otherwise the message saying why not
/// (CLI11 prefixes it with the option's name).
std::string thread_count_error(long long threads, unsigned hardware_threads);

/// Adds --threads to `command`, storing into `threads` (which stays 0, OpenMP's default of all
/// cores, unless given).
void add_threads_option(CLI::App& command, int& threads);

/// Makes OpenMP use `threads` threads; 0 leaves its default.
void use_threads(int threads);

}  // namespace llama
