#pragma once
// A pool of scratch workspaces so that one matrix object can be applied from several threads at
// once without allocating on the hot path: each call leases a workspace (a lock only around taking
// and returning it), grows it on first use with a given size, and returns it for the next call.

#include "internal_header_check.hpp"

#include <memory>
#include <mutex>
#include <vector>

namespace fftmat::detail {

template <class Workspace>
class WorkspacePool {
 public:
  WorkspacePool() = default;
  // Copies and moves of the owning object start with an empty pool: scratch is never shared.
  WorkspacePool(const WorkspacePool&) {}
  WorkspacePool& operator=(const WorkspacePool&) { return *this; }
  WorkspacePool(WorkspacePool&&) noexcept {}
  WorkspacePool& operator=(WorkspacePool&&) noexcept { return *this; }

  class Lease {
   public:
    Lease(WorkspacePool& pool, std::unique_ptr<Workspace> workspace)
        : pool_(pool), workspace_(std::move(workspace)) {}
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease() { pool_.give_back(std::move(workspace_)); }
    Workspace& operator*() const noexcept { return *workspace_; }
    Workspace* operator->() const noexcept { return workspace_.get(); }

   private:
    WorkspacePool& pool_;
    std::unique_ptr<Workspace> workspace_;
  };

  Lease lease() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!idle_.empty()) {
        auto workspace = std::move(idle_.back());
        idle_.pop_back();
        return Lease(*this, std::move(workspace));
      }
    }
    return Lease(*this, std::make_unique<Workspace>());
  }

 private:
  void give_back(std::unique_ptr<Workspace> workspace) noexcept {
    std::lock_guard<std::mutex> lock(mutex_);
    try {
      idle_.push_back(std::move(workspace));
    } catch (...) {  // out of memory while returning scratch: drop it, the next lease makes a new one
    }
  }

  std::mutex mutex_;
  std::vector<std::unique_ptr<Workspace>> idle_;
};

}  // namespace fftmat::detail
