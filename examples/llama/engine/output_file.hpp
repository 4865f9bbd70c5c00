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

/// A directory built under a unique temporary name beside `target` (mkdtemp) and renamed onto it
/// by commit(), so that `target` appears complete or not at all. `target` must not exist, neither
/// now nor at commit(); nothing is ever replaced. Until commit() the temporary directory is removed
/// with everything in it on destruction, and on SIGINT/SIGTERM together with the entries made
/// through add().
class TemporaryDirectory {
 public:
  explicit TemporaryDirectory(const std::filesystem::path& target);
  ~TemporaryDirectory();
  TemporaryDirectory(const TemporaryDirectory&) = delete;
  TemporaryDirectory& operator=(const TemporaryDirectory&) = delete;

  /// The temporary directory.
  const std::filesystem::path& path() const noexcept { return path_; }
  /// The path of entry `name` (a plain file name) inside it, registered for removal on a signal:
  /// call before creating the entry (a file, a symbolic link).
  std::filesystem::path add(const std::string& name);
  /// Renames the directory onto the target; throws llama::error if the target exists by now.
  void commit();

 private:
  void remove();
  void release_slots();
  std::filesystem::path target_, path_;
  std::vector<void*> slots_;  // the signal handler's registrations: the directory, then its entries
  bool committed_ = false;
};

/// Creates `directory` if needed and proves that files can be created in it (by creating and
/// removing a temporary), so that an unwritable output fails before the work, not after it.
void require_writable_directory(const std::filesystem::path& directory, const std::string& what);

}  // namespace llama
