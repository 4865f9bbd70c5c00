#pragma once
// Replacing the MLP projections (gate, up, down) of chosen layers by block-circulant matrices, or
// by the low-rank baseline at the same parameter budget.
//
//   frobenius   nearest block-circulant matrix to each weight (the study's "no calibration")
//   calibrated  closed-form fit of each projection to the original model's activations on the
//               calibration prompts (fftmat::Calibrator), all layers from one pass of the teacher
//   sequential  layer by layer in order: gate and up fitted on the inputs of the already-patched
//               student against the teacher's gate/up outputs, then down fitted on the student's
//               own hidden silu(g)*u against the teacher's MLP output -- errors do not accumulate
//   lowrank     rank r = floor(m n / (b (m + n))) per projection, so that its factors hold no more
//               parameters than the block-circulant matrix of block size b: the whitened truncation
//               [W S]_r S^-1 on the teacher's activations (fftmat::project_low_rank)
//   lowrank-sequential  the same rank, fitted as `sequential` fits block-circulant matrices
//               (fftmat::LowRankCalibrator)
//   scaled-sequential  the same order and targets, each projection C diag(s_in): a per-channel
//               input scale and C fitted by alternating least squares (fftmat::fit_scaled)
//   bc-lowrank-sequential  the same order and targets, each projection C + U V at the budget of
//               block size b: C of block size 2b (half the parameters) and the largest rank r whose
//               factors fit in the other half, fitted jointly by alternating least squares
//               (fftmat::fit_block_circulant_plus_low_rank)
//   zero        the MLP removed (its output is zero): the reference that shows what a projection
//               keeping ~1/b of the weights' energy amounts to
//
// See docs/evaluation.md for what each one does to the model.

#include <fftmat/block_circulant.hpp>

#include <functional>
#include <string>
#include <vector>

#include "engine/model.hpp"

namespace llama {

enum class Projection { dense, frobenius, calibrated, sequential, low_rank, low_rank_sequential, scaled_sequential,
                        bc_low_rank_sequential, zero };

/// "dense" (nothing patched), "frobenius", "calibrated", "sequential", "lowrank", "lowrank-sequential",
/// "scaled-sequential", "bc-lowrank-sequential" or "zero".
Projection parse_projection(const std::string& name);
const char* projection_name(Projection projection);
/// lowrank or lowrank-sequential: block_size only sets the rank's budget.
bool is_low_rank(Projection projection);
/// Whether the projection is fitted to activations, so that patch_model needs calibration prompts
/// (every one but dense, frobenius and zero).
bool needs_calibration(Projection projection);

/// "0", "0-3", "0,5,9", "0-3,8", "all", or "" / "none" for no layer; sorted, unique, each checked
/// against the model's layer count.
std::vector<int> parse_layers(const std::string& spec, int num_layers);
/// The inverse of parse_layers for reports: "0-3", "0,5,9", "none".
std::string format_layers(const std::vector<int>& layers);

struct PatchSettings {
  std::vector<int> layers;                  // layers whose MLP is replaced
  int block_size = 64;                      // b; must divide hidden_size and intermediate_size (low-rank:
                                            // the budget of block size b, which need not divide them)
  Projection projection = Projection::dense;
  double damping = 1e-2;                    // calibrated/sequential: lambda_f = damping * trace(G_f) / q;
                                            // low-rank: lambda = damping * trace(G) / n
  fftmat::SpectrumPrecision spectra = fftmat::SpectrumPrecision::full;  // what the patched products read
};

/// Throws llama::error (before any long work) if the settings do not fit the model: a block size
/// that does not divide its sizes, layers out of range, layers without a projection.
void check_patch_settings(const PatchSettings& settings, const LlamaConfig& config);

/// Patches `student` (a model over the same checkpoint as `teacher`, with dense MLPs in the chosen
/// layers). `calibration` holds tokenized prompts (BOS first) for the calibrated projections.
/// `progress` receives short status lines.
void patch_model(Model& student, Model& teacher, const PatchSettings& settings,
                 const std::vector<std::vector<int>>& calibration,
                 const std::function<void(const std::string&)>& progress);

}  // namespace llama
