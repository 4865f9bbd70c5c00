#pragma once
// Outputs are written completely or not at all: to a temporary file beside the target, then
// renamed over it (rename is atomic within a file system).

#include <filesystem>
#include <string_view>

namespace llama {

/// Writes `bytes` to `path` atomically; throws llama::error naming the file on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

}  // namespace llama
