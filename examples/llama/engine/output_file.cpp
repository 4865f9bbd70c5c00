#include "output_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <csignal>
#include <cstring>
#include <memory>
#include <mutex>
#include <system_error>

#include "error.hpp"

namespace llama {
namespace {

// The temporaries that exist right now, for the signal handler to remove. A handler may only call
// async-signal-safe functions (POSIX.1-2017, section 2.4.3): it reads these slots and calls
// unlink(), rmdir(), sigaction() and raise(), nothing else. A temporary directory takes a slot, and
// so does each entry made in it (TemporaryDirectory::add), so the handler can empty and remove it.
constexpr std::size_t kSlots = 64;
struct Slot {
  std::atomic<bool> used{false};
  char path[4096];
};
std::array<Slot, kSlots> g_temporaries;
// While files are being renamed into place a signal is only noted, and raised again afterwards:
// the handler may run on any thread, so blocking it on the renaming thread would not be enough.
std::atomic<int> g_committing{0};  // sets being renamed into place right now, by any thread
std::atomic<int> g_deferred_signal{0};
struct sigaction g_previous[2];
constexpr int kSignals[2] = {SIGINT, SIGTERM};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free,
              "the signal handler needs lock-free atomics");

// mkstemp creates files readable by their owner only; outputs get the permissions an ordinary
// open(O_CREAT, 0666) would give them. The mask is read (by setting it) before main(), while the
// process has one thread.
const mode_t g_umask = [] {
  const mode_t mask = ::umask(0);
  ::umask(mask);
  return mask;
}();

/// Removes the temporaries, then hands the signal to the action that was installed before: it
/// is restored and the signal raised again, to be delivered when this handler returns.
void remove_temporaries_and_reraise(int signal_number) {
  if (g_committing.load() > 0) {
    g_deferred_signal.store(signal_number);
    return;
  }
  for (Slot& slot : g_temporaries) {
    if (slot.used.load(std::memory_order_acquire)) ::unlink(slot.path);
  }
  // Then the temporary directories, which the first loop has emptied of their registered entries.
  for (Slot& slot : g_temporaries) {
    if (slot.used.load(std::memory_order_acquire)) ::rmdir(slot.path);
  }
  for (int k = 0; k < 2; ++k) {
    if (kSignals[k] == signal_number) ::sigaction(signal_number, &g_previous[k], nullptr);
  }
  ::raise(signal_number);
}

/// Puts the handler in front of whatever handles SIGINT and SIGTERM now (the default action, or a
/// handler of the program's own, which is then chained), unless the signal is ignored.
void install_signal_handlers() {
  static std::mutex mutex;
  const std::lock_guard<std::mutex> lock(mutex);
  for (int k = 0; k < 2; ++k) {
    struct sigaction current {};
    ::sigaction(kSignals[k], nullptr, &current);
    const bool plain = (current.sa_flags & SA_SIGINFO) == 0;
    if (plain && (current.sa_handler == remove_temporaries_and_reraise || current.sa_handler == SIG_IGN)) continue;
    struct sigaction action {};
    action.sa_handler = remove_temporaries_and_reraise;
    sigemptyset(&action.sa_mask);
    g_previous[k] = current;
    ::sigaction(kSignals[k], &action, nullptr);
  }
}

/// Claims a free slot and writes `path` into it, for the handler to remove; `target` names the
/// output in errors.
Slot* claim_slot(const std::string& path, const std::filesystem::path& target) {
  check(path.size() < sizeof(Slot::path), "cannot create a temporary for ", target, ": the path is too long");
  for (Slot& candidate : g_temporaries) {
    bool expected = false;
    if (candidate.used.load() || !candidate.used.compare_exchange_strong(expected, true)) continue;
    std::memcpy(candidate.path, path.c_str(), path.size() + 1);
    return &candidate;
  }
  throw error("cannot create a temporary for " + target.string() + ": more than " + std::to_string(kSlots) +
              " are open");
}

void release_slot(Slot*& slot) {
  if (slot == nullptr) return;
  slot->path[0] = '\0';  // a slot claimed again holds no path until its file exists
  slot->used.store(false, std::memory_order_release);
  slot = nullptr;
}

/// A file of a unique name beside `target`, removed on destruction unless renamed onto it.
class TemporaryFile {
 public:
  explicit TemporaryFile(const std::filesystem::path& target) {
    install_signal_handlers();
    const std::string name =
        (target.parent_path() / ("." + target.filename().string() + ".XXXXXX")).string();
    slot_ = claim_slot(name, target);
    // mkostemp completes the name in the slot itself before it creates the file, so a signal at
    // any moment finds the name of every file that exists.
    fd_ = ::mkostemp(slot_->path, O_CLOEXEC);
    const int mkstemp_errno = errno;
    if (fd_ < 0) {
      release_slot(slot_);
      throw error("cannot create a temporary file beside " + target.string() + ": " + std::strerror(mkstemp_errno));
    }
    path_ = slot_->path;
    if (::fchmod(fd_, 0666 & ~g_umask) != 0) {
      const int chmod_errno = errno;
      ::close(fd_);
      ::unlink(path_.c_str());
      release_slot(slot_);
      throw error("cannot set the permissions of " + path_.string() + ": " + std::strerror(chmod_errno));
    }
  }
  TemporaryFile(const TemporaryFile&) = delete;
  TemporaryFile& operator=(const TemporaryFile&) = delete;

  ~TemporaryFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(path_.c_str());
    release_slot(slot_);
  }

  void write(std::string_view bytes) {
    std::size_t written = 0;
    while (written < bytes.size()) {
      const ssize_t count = ::write(fd_, bytes.data() + written, bytes.size() - written);
      if (count < 0 && errno == EINTR) continue;
      check(count > 0, "error writing ", path_, ": ", std::strerror(errno));
      written += static_cast<std::size_t>(count);
    }
    const int status = ::close(fd_);
    fd_ = -1;
    check(status == 0, "error writing ", path_, ": ", std::strerror(errno));
  }

  void rename_to(const std::filesystem::path& target) {
    std::error_code ec;
    std::filesystem::rename(path_, target, ec);
    check(!ec, "cannot rename ", path_, " to ", target, ": ", ec.message());
    renamed_ = true;
  }

 private:
  Slot* slot_ = nullptr;
  int fd_ = -1;
  std::filesystem::path path_;
  bool renamed_ = false;
};

}  // namespace

TemporaryDirectory::TemporaryDirectory(const std::filesystem::path& target) : target_(target) {
  install_signal_handlers();
  std::error_code ec;
  check(!std::filesystem::exists(std::filesystem::symlink_status(target, ec)), "output directory ", target,
        " already exists (remove it or choose another)");
  Slot* slot = claim_slot((target.parent_path() / ("." + target.filename().string() + ".XXXXXX")).string(), target);
  if (::mkdtemp(slot->path) == nullptr) {  // completes the name in the slot before it creates the directory
    const int mkdtemp_errno = errno;
    release_slot(slot);
    throw error("cannot create a temporary directory beside " + target.string() + ": " + std::strerror(mkdtemp_errno));
  }
  path_ = slot->path;
  slots_.push_back(slot);
  if (::chmod(path_.c_str(), 0777 & ~g_umask) != 0) {
    const int chmod_errno = errno;
    remove();
    throw error("cannot set the permissions of " + path_.string() + ": " + std::strerror(chmod_errno));
  }
}

TemporaryDirectory::~TemporaryDirectory() {
  if (!committed_) remove();
}

std::filesystem::path TemporaryDirectory::add(const std::string& name) {
  const std::filesystem::path entry = path_ / name;
  check(std::filesystem::path(name).filename() == name && name != "." && name != "..", "'", name,
        "' is not a plain file name");
  slots_.push_back(claim_slot(entry.string(), target_));
  return entry;
}

void TemporaryDirectory::commit() {
  ++g_committing;
  // rename(2) onto an existing non-empty directory fails, and onto an empty one would replace it:
  // the target must still not exist.
  std::error_code ec;
  const bool exists = std::filesystem::exists(std::filesystem::symlink_status(target_, ec));
  if (!exists) std::filesystem::rename(path_, target_, ec);
  --g_committing;
  check(!exists, "output directory ", target_, " appeared while it was being written; nothing replaced");
  check(!ec, "cannot rename ", path_, " to ", target_, ": ", ec.message());
  committed_ = true;
  release_slots();
  if (g_committing == 0) {
    if (const int deferred = g_deferred_signal.exchange(0); deferred != 0) remove_temporaries_and_reraise(deferred);
  }
}

void TemporaryDirectory::remove() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
  release_slots();
}

void TemporaryDirectory::release_slots() {
  for (void* registered : slots_) {
    Slot* slot = static_cast<Slot*>(registered);
    release_slot(slot);
  }
  slots_.clear();
}

void write_files_atomically(const std::vector<std::pair<std::filesystem::path, std::string_view>>& files) {
  std::vector<std::unique_ptr<TemporaryFile>> temporaries;
  for (const auto& [path, bytes] : files) {
    temporaries.push_back(std::make_unique<TemporaryFile>(path));
    temporaries.back()->write(bytes);
  }
  ++g_committing;
  try {
    for (std::size_t k = 0; k < files.size(); ++k) temporaries[k]->rename_to(files[k].first);
  } catch (...) {
    --g_committing;
    throw;
  }
  if (--g_committing == 0) {
    if (const int deferred = g_deferred_signal.exchange(0); deferred != 0) {
      temporaries.clear();
      remove_temporaries_and_reraise(deferred);
    }
  }
}

void write_file_atomically(const std::filesystem::path& path, std::string_view bytes) {
  write_files_atomically({{path, bytes}});
}

void require_writable_directory(const std::filesystem::path& directory, const std::string& what) {
  std::error_code ec;
  check(!std::filesystem::exists(directory, ec) || std::filesystem::is_directory(directory, ec), what, " ",
        directory, " is not a directory");
  std::filesystem::create_directories(directory, ec);
  check(!ec, what, " ", directory, " cannot be created: ", ec.message());
  try {
    const TemporaryFile probe(directory / "write-test");
  } catch (const error& e) {
    throw error(what + " " + directory.string() + " is not writable (" + e.what() + ")");
  }
}

}  // namespace llama
