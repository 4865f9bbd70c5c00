#pragma once
// A patched checkpoint (docs/llama.md, "Saved patches"): a model whose MLP projections in chosen
// layers were replaced, saved once by `fftmat-llama patch` and loaded by every command as --model.
//
//   PATCHED/config.json, tokenizer.model (when the base has one), model.safetensors or
//           model.safetensors.index.json and its shards
//                 the base checkpoint's files: symbolic links to their absolute paths, or copies
//   PATCHED/fftmat_patch.safetensors
//                 one F32 tensor per stored array of each replacing projection, named
//                 "<replaced weight without .weight>.<role>" (e.g.
//                 "model.layers.0.mlp.gate_proj.parameters"); __metadata__ "fftmat_patch" is a
//                 JSON text: {"format": 1, "base": [{"name", "bytes", "xxh3"} of every file
//                 above], "settings": how the patch was made, "projections": [{"replaces",
//                 "kind", "layout", "tensors": {role: tensor name}}], "payload_xxh3": of the data
//                 section}
//
// The kinds, for a replaced weight of m x n (config.json), tensors row-major:
//
//   block_circulant         layout: fftmat's layout fields (block_circulant_layout.hpp)
//                           "parameters" [p, q, b]
//   low_rank                layout: {"rank": r}, 1 <= r <= min(m, n)
//                           "left" U [m, r], "right" V [r, n]; the projection is U V
//   scaled_block_circulant  layout: the core C's layout fields, as block_circulant
//                           "parameters" [p, q, b] of C, "input_scale" s_in [n], "output_scale"
//                           s_out [m]; the projection is diag(s_out) C diag(s_in)
//
// Which kind a --projection makes is fixed (saved_kind), and the reader requires it. The format
// number is 1 for every kind: a reader refuses a kind (or a --projection) it does not know by
// name, so a file holding a kind that a reader predates is refused, never misread. The number
// changes only with a change that an older reader would misread.
//
// So a PATCHED directory is a checkpoint (Checkpoint reads the base's files through the links,
// and they are the teacher of eval and sweep) plus the patch, which load_model applies. Reading
// the patch checks it completely before anything is replaced: the base files' sizes and XXH3-64
// against the ones it was made on, every projection's kind, layout and tensors against
// config.json, finite values, and the payload checksum.
//
// A projection kind is one entry of kProjectionKinds (patched_checkpoint.cpp): a name, a function
// from a Linear to its stored form (layout fields and role -> tensor) and one back; the
// --projection that makes it is an entry of kSavedProjections.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/model.hpp"
#include "patching.hpp"

namespace llama {

inline constexpr char kPatchFileName[] = "fftmat_patch.safetensors";

/// How a PATCHED directory holds the base checkpoint's files.
enum class BaseFiles {
  link,  ///< symbolic links to the base files' absolute paths: no disk, but the base must stay put
  copy,  ///< copies: a self-contained directory, as large as the base
};

/// A float tensor of a stored projection (row-major, outermost first).
struct StoredTensor {
  std::vector<std::int64_t> shape;
  std::vector<float> values;
};

/// A replacing projection as the patch file stores it.
struct StoredProjection {
  std::string replaces;                          // e.g. "model.layers.0.mlp.gate_proj.weight"
  std::string kind;                              // e.g. "block_circulant"
  std::map<std::string, std::string> layout;     // the kind's description (text fields)
  std::map<std::string, StoredTensor> tensors;   // by role, e.g. "parameters"
};

/// A patch: how it was made and what it replaces.
struct SavedPatch {
  PatchSettings settings;       // projection, layers, block size, damping, spectra
  std::string calibration;      // what the calibrated projections were fitted on ("" for none)
  std::vector<StoredProjection> projections;
};

/// The kind of stored projection that `projection` makes ("block_circulant", "low_rank" or
/// "scaled_block_circulant"), or nullptr for one whose result is not saved (dense, zero).
const char* saved_kind(Projection projection);
/// The projections that have a saved kind, for messages: "frobenius, calibrated, ...".
std::string saved_projections();

/// The stored form of the MLP projections that `settings.layers` of `patched` hold (three per
/// layer). Throws llama::error naming a projection of no storable kind (dense, zero).
SavedPatch make_saved_patch(const Model& patched, const PatchSettings& settings, const std::string& calibration);

/// Throws llama::error unless `out` can become a PATCHED directory: it must not exist and its
/// parent must be writable. Run it before the work that produces the patch.
void check_patched_output(const std::filesystem::path& out);

/// Writes PATCHED = `out` over the checkpoint of `base` (the directory `patch` read): the base
/// files linked or copied, and the patch file. The directory is built under a unique temporary
/// name beside `out` and renamed onto it when complete (output_file.hpp); `out` must not exist.
void save_patched_checkpoint(const Checkpoint& base, const SavedPatch& patch, const std::filesystem::path& out,
                             BaseFiles base_files);

/// Whether `directory` holds a patch file (is a PATCHED directory).
bool has_saved_patch(const std::filesystem::path& directory);

/// The patch in `checkpoint`'s directory, checked against it (see above), or nullopt when there is
/// none. Throws llama::error naming the file and the problem.
std::optional<SavedPatch> read_saved_patch(const Checkpoint& checkpoint);

/// Replaces the projections `patch` lists in `model` (a model over the checkpoint it was read
/// from) by new ones built from the stored tensors.
void apply_saved_patch(const SavedPatch& patch, Model& model);

/// The model of a checkpoint directory (config.json + safetensors); when it is a PATCHED directory,
/// with its saved patch applied. Every command's --model goes through here.
Model load_model(const std::filesystem::path& directory);

/// "0-3 sequential, b = 64 (saved)": a patch's name in reports.
std::string describe(const SavedPatch& patch);

}  // namespace llama
