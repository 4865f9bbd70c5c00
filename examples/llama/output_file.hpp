#pragma once
// Outputs are written completely or not at all: each to a temporary file of a unique name
// (mkstemp) beside its target, then renamed over it (rename is atomic within a file system).
// Temporaries are removed on every failure path and when SIGINT or SIGTERM arrives while they
// exist, so neither a failed nor an interrupted run leaves one behind, and two processes writing
// the same target never share one.

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace llama {

/// Writes `bytes` to `path` atomically; throws llama::error naming the file on failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view bytes);

/// Writes every (path, bytes) pair to its temporary first; only when all are complete are they
/// renamed into place, one after another with SIGINT and SIGTERM held back, so that an interrupt
/// leaves either all the old files or all the new ones. A failure to write any of them replaces none.
void write_files_atomically(const std::vector<std::pair<std::filesystem::path, std::string_view>>& files);

/// Creates `directory` if needed and proves that files can be created in it (by creating and
/// removing a temporary), so that an unwritable output fails before the work, not after it.
void require_writable_directory(const std::filesystem::path& directory, const std::string& what);

}  // namespace llama
