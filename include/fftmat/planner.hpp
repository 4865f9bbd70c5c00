#pragma once
// How long FFTW may spend planning a transform layout it has not seen before (FFTW manual, section
// 4.3.2 "Planner Flags"). One process-wide setting, read whenever a new layout is planned; plans
// are cached per layout and effort (detail/fftw.hpp), so the cost is paid once per process.

#include <atomic>

namespace fftmat {

/// `measure` times candidate algorithms (FFTW_MEASURE: slower to plan, faster to run); `estimate`
/// plans instantly from FFTW's heuristics (FFTW_ESTIMATE).
enum class PlannerEffort { estimate, measure };

namespace detail {

inline std::atomic<PlannerEffort>& planner_effort_setting() {
  static std::atomic<PlannerEffort> effort{PlannerEffort::measure};
  return effort;
}

}  // namespace detail

/// Chooses how long FFTW may plan transforms of layouts not seen before (default: measure). Plans
/// made before keep the effort they were made with.
inline void set_planner_effort(PlannerEffort effort) { detail::planner_effort_setting() = effort; }

/// The effort new plans are made with.
inline PlannerEffort planner_effort() noexcept { return detail::planner_effort_setting(); }

}  // namespace fftmat
