#pragma once
// Per-layer sensitivity, and the configuration "the k least sensitive layers" under a quality budget.
//
// The scan patches each layer alone (at a block size and projection) and measures the student's
// all-position KL on the selection windows (Evaluator::selection_kl: held-out text that neither the
// evaluation prompts, the reported perplexity nor the calibration use). The greedy configuration
// adds layers from the least to the most sensitive, refitting the whole set each time (sequential
// projections then fit each layer on the inputs the already-patched layers produce), and keeps going
// while the selection KL of the set stays within the budget. The choice is therefore made on the
// selection windows only; the evaluation prompts and the perplexity windows report it.

#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "evaluation.hpp"

namespace llama {

/// Layers ordered from the least to the most sensitive by `kl[layer]` (ties: lower layer first).
/// Throws llama::error for a NaN (a layer that cannot be ranked).
std::vector<int> rank_by_sensitivity(const std::vector<double>& kl);

struct GreedyStep {
  std::vector<int> layers;  // sorted
  double selection_kl = 0;
  bool within_budget = false;
};

/// The greedy walk: step k patches the first k layers of `ranking`, measured by `selection_kl`
/// (of a sorted layer set); it stops after the first step over `budget`. The result lists every
/// measured step; the chosen set is the last step within budget (see chosen_layers).
std::vector<GreedyStep> greedy_least_sensitive(const std::vector<int>& ranking, double budget,
                                               const std::function<double(const std::vector<int>&)>& selection_kl);

/// The layers of the last step within budget, or none.
std::vector<int> chosen_layers(const std::vector<GreedyStep>& steps);

struct SensitivityStudy {
  PatchSettings patch;              // block size, projection, damping (layers unused)
  double kl_budget = 0.1;           // on the selection windows' all-position KL
  RowResult original;               // the unpatched model
  std::vector<RowResult> per_layer;  // layer l patched alone, in layer order
  std::vector<double> layer_selection_kl;
  std::vector<int> ranking;
  std::vector<GreedyStep> steps;
  RowResult chosen;                 // the greedy configuration (the original model if none fits)
};

/// The scan, the ranking and the greedy choice; every row is measured on the evaluation prompts
/// and the perplexity windows too. The evaluator needs selection windows.
SensitivityStudy run_sensitivity(Evaluator& evaluator, const PatchSettings& patch, double kl_budget,
                                 const std::function<void(const std::string&)>& stage);

/// The first `count` layers of `ranking`, sorted. Throws llama::error unless 1 <= count <= ranking.size().
std::vector<int> least_sensitive_layers(const std::vector<int>& ranking, int count);

struct GridRow;

/// The sweep's layer choice from selection KLs only: per-layer scans, each measured once per
/// projection, block size, damping and spectra (a scan patches and measures every layer) and shared
/// by the rows that need it.
class SensitivityScans {
 public:
  using SelectionKl = std::function<double(const PatchSettings&)>;  // Evaluator::selection_kl
  SensitivityScans(int num_layers, SelectionKl selection_kl);

  /// Each layer patched alone with `patch` (its layers unused): the selection KLs in layer order.
  const std::vector<double>& layer_kl(const PatchSettings& patch);

  /// The layers `row` patches: its own, the greedy choice of "least-sensitive:BUDGET", or the first
  /// K of the ranking of "least-sensitive-layers:K[:PROJECTION]" (the scan of PROJECTION at the
  /// row's block size, damping and spectra; no scan when K is the layer count).
  std::vector<int> layers_for(const GridRow& row);

 private:
  int num_layers_;
  SelectionKl selection_kl_;
  std::map<std::tuple<Projection, int, double, fftmat::SpectrumPrecision>, std::vector<double>> scans_;
};

/// sensitivity.md, sensitivity.csv (one line per layer) and sensitivity.json (everything,
/// scripts/plot_evaluation.py draws sensitivity.png from it), written as one set.
void write_sensitivity_report(const std::filesystem::path& directory, const SensitivityStudy& study,
                              const EvalSettings& settings, const LlamaConfig& config);

}  // namespace llama
