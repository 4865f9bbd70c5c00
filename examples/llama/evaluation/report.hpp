#pragma once
// The sweep: a grid of patch configurations, evaluated one after another, and its report --
// report.md (the study's columns first, then ours), results.csv and results.json, written as one
// set (write_files_atomically): an interrupted run leaves all three of one row count. scripts/plot_evaluation.py turns results.json into PNG plots.

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "evaluation.hpp"

namespace llama {

struct GridRow {
  std::string name;
  PatchSettings settings;
  /// LAYERS "least-sensitive:BUDGET": the layers are chosen when the sweep runs, greedily, the least
  /// sensitive first, while the all-position KL on held-out selection windows stays within BUDGET
  /// (sensitivity.hpp); settings.layers is then a placeholder.
  std::optional<double> least_sensitive_budget;
  /// LAYERS "least-sensitive-layers:K" or "least-sensitive-layers:K:PROJECTION": the K layers whose
  /// selection KL, each patched alone at the row's block size with PROJECTION (default: the row's
  /// own), is least (sensitivity.hpp); naming the ranking's projection patches the same layers with
  /// every family. settings.layers is then a placeholder.
  std::optional<int> least_sensitive_count;
  Projection ranked_by = Projection::dense;  // the scan's projection for least_sensitive_count
};

/// The study's eleven rows (docs/evaluation.md) followed by our own.
std::string default_grid_text();

/// Parses a grid: one row per line, "LAYERS BLOCK PROJECTION NAME...", '#' starts a comment;
/// LAYERS as for --layers ("none" for the original model), "least-sensitive:BUDGET" or
/// "least-sensitive-layers:K[:PROJECTION]", BLOCK "-" where it does not apply.
/// Every row is checked against the model before anything runs.
std::vector<GridRow> parse_grid(const std::string& text, const std::string& source, const LlamaConfig& config);

/// Writes report.md, results.csv and results.json into `directory` (created if needed): all three
/// complete before any replaces its predecessor.
void write_report(const std::filesystem::path& directory, const std::vector<RowResult>& rows,
                  const EvalSettings& settings, const LlamaConfig& config);

/// `value` printed with a printf pattern for one double ("%.3f"): the reports' number format.
std::string format_number(const char* pattern, double value);

/// The markdown table alone (also printed by the eval command).
std::string markdown_table(const std::vector<RowResult>& rows);

}  // namespace llama
