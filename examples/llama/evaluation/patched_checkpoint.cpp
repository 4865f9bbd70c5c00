#include "patched_checkpoint.hpp"

#include <nlohmann/json.hpp>
#include <xxhash.h>

#include <fftmat/block_circulant_layout.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>
#include <string_view>

#include "engine/error.hpp"
#include "engine/mapped_file.hpp"
#include "engine/output_file.hpp"
#include "engine/safetensors.hpp"
#include "engine/shard_index.hpp"

namespace llama {
namespace {

constexpr char kMetadataKey[] = "fftmat_patch";
constexpr int kFormat = 1;
constexpr char kTokenizerFile[] = "tokenizer.model";

std::string xxh3_text(XXH64_hash_t hash) {
  char text[17];
  std::snprintf(text, sizeof text, "%016llx", static_cast<unsigned long long>(hash));
  return text;
}

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string text = "[";
  for (std::size_t k = 0; k < shape.size(); ++k) text += (k ? ", " : "") + std::to_string(shape[k]);
  return text + "]";
}

// ---- Projection kinds: how each kind of Linear is stored and rebuilt --------------------------

/// Throws unless `stored` has exactly the tensors `roles`.
void require_roles(const StoredProjection& stored, const std::vector<std::string>& roles, const std::string& where) {
  std::string expected, found;
  for (const std::string& role : roles) expected += (expected.empty() ? "\"" : ", \"") + role + "\"";
  for (const auto& [role, tensor] : stored.tensors) found += (found.empty() ? "\"" : ", \"") + role + "\"";
  bool same = stored.tensors.size() == roles.size();
  for (const std::string& role : roles) same = same && stored.tensors.count(role) == 1;
  check(same, where, ": a ", stored.kind, " projection has the tensors ", expected, "; this one has ",
        found.empty() ? "none" : found);
}

/// Throws unless tensor `role` of `stored` has the shape `expected`, which `because` explains.
const StoredTensor& shaped(const StoredProjection& stored, const std::string& role,
                           const std::vector<std::int64_t>& expected, const std::string& because,
                           const std::string& where) {
  const StoredTensor& tensor = stored.tensors.at(role);
  check(tensor.shape == expected, where, ": tensor \"", role, "\" has shape ", shape_text(tensor.shape), ", but ",
        because, " needs ", shape_text(expected));
  return tensor;
}

/// Throws naming the first non-finite value of tensor `role` (row-major index).
void require_finite(const StoredProjection& stored, const std::string& role, const std::string& where) {
  const std::vector<float>& values = stored.tensors.at(role).values;
  const auto bad = std::find_if(values.begin(), values.end(), [](float v) { return !std::isfinite(v); });
  if (bad == values.end()) return;
  throw error(concat(where, ", tensor \"", role, "\": value ", bad - values.begin(), " is not finite (", *bad, ")"));
}

/// The layout fields and "parameters" tensor [p, q, b] of a block-circulant matrix.
StoredProjection block_circulant_form(const fftmat::BlockCirculant<float>& matrix) {
  StoredProjection stored;
  stored.layout = fftmat::layout_fields(fftmat::layout_of(matrix));
  const fftmat::BlockCirculant<float>::Vector& parameters = matrix.parameters();
  stored.tensors["parameters"] = {{matrix.block_rows(), matrix.block_cols(), matrix.block_size()},
                                  std::vector<float>(parameters.data(), parameters.data() + parameters.size())};
  return stored;
}

/// The block-circulant matrix of `stored`'s layout fields and "parameters", checked against the
/// weight it replaces.
fftmat::BlockCirculant<float> block_circulant_of(const StoredProjection& stored, const TensorSpec& replaced,
                                                 const std::string& where) {
  fftmat::BlockCirculantLayout layout;
  try {
    layout = fftmat::parse_layout_fields(stored.layout);
  } catch (const fftmat::invalid_argument& e) {
    throw error(where + ": " + e.what());
  }
  check(layout.rows == replaced.shape.at(0) && layout.cols == replaced.shape.at(1), where, ": the layout is ",
        layout.rows, "x", layout.cols, ", but config.json makes '", replaced.name, "' ", replaced.shape.at(0), "x",
        replaced.shape.at(1));
  check(layout.dtype == "F32", where, ": the layout has dtype ", layout.dtype, "; the model's projections are F32");
  const StoredTensor& parameters =
      shaped(stored, "parameters", {layout.block_rows(), layout.block_cols(), layout.block_size}, "its layout", where);
  const Eigen::Map<const Eigen::VectorXf> values(parameters.values.data(),
                                                 static_cast<Eigen::Index>(parameters.values.size()));
  try {
    return fftmat::from_layout<float>(layout, values);
  } catch (const fftmat::invalid_argument& e) {
    throw error(where + ", tensor \"parameters\": " + e.what());
  }
}

/// A block-circulant projection: its layout fields and "parameters" [p, q, b].
std::optional<StoredProjection> store_block_circulant(const Linear& linear) {
  const fftmat::BlockCirculant<float>* matrix = linear.block_circulant();
  if (matrix == nullptr) return std::nullopt;
  return block_circulant_form(*matrix);
}

std::unique_ptr<Linear> load_block_circulant(const StoredProjection& stored, const TensorSpec& replaced,
                                             const std::string& where) {
  require_roles(stored, {"parameters"}, where);
  return std::make_unique<BlockCirculantLinear>(block_circulant_of(stored, replaced, where));
}

using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

StoredTensor row_major_tensor(const Eigen::MatrixXf& matrix) {
  const RowMajor rows = matrix;
  return {{rows.rows(), rows.cols()}, std::vector<float>(rows.data(), rows.data() + rows.size())};
}

/// A low-rank projection U V (m x n, rank r): layout {"rank": r}, "left" = U [m, r] and
/// "right" = V [r, n], row-major as safetensors stores every tensor.
std::optional<StoredProjection> store_low_rank(const Linear& linear) {
  const auto* low_rank = dynamic_cast<const LowRankLinear*>(&linear);
  if (low_rank == nullptr) return std::nullopt;
  const fftmat::LowRank<float>& matrix = low_rank->matrix();
  StoredProjection stored;
  stored.layout = {{"rank", std::to_string(matrix.rank())}};
  stored.tensors["left"] = row_major_tensor(matrix.left());
  stored.tensors["right"] = row_major_tensor(matrix.right());
  return stored;
}

std::unique_ptr<Linear> load_low_rank(const StoredProjection& stored, const TensorSpec& replaced,
                                      const std::string& where) {
  require_roles(stored, {"left", "right"}, where);
  check(stored.layout.size() == 1 && stored.layout.count("rank") == 1, where,
        ": a low_rank layout has exactly one field, \"rank\"");
  const std::string& text = stored.layout.at("rank");
  const bool digits = !text.empty() && text.size() <= 9 &&
                      std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
  check(digits, where, ": layout field \"rank\" = \"", text, "\" is not a decimal integer");
  const std::int64_t rank = std::stoll(text), m = replaced.shape.at(0), n = replaced.shape.at(1);
  check(rank >= 1 && rank <= std::min(m, n), where, ": rank ", rank, " is outside [1, ", std::min(m, n), "] for '",
        replaced.name, "', ", m, "x", n, " in config.json");
  const std::string because = "rank " + std::to_string(rank) + " of the " + std::to_string(m) + "x" +
                              std::to_string(n) + " weight";
  const StoredTensor& left = shaped(stored, "left", {m, rank}, because, where);
  const StoredTensor& right = shaped(stored, "right", {rank, n}, because, where);
  require_finite(stored, "left", where);
  require_finite(stored, "right", where);
  const Eigen::MatrixXf u = Eigen::Map<const RowMajor>(left.values.data(), m, rank);
  const Eigen::MatrixXf v = Eigen::Map<const RowMajor>(right.values.data(), rank, n);
  return std::make_unique<LowRankLinear>(fftmat::LowRank<float>(u, v));
}

/// A scaled block-circulant projection diag(s_out) C diag(s_in): C's layout fields and
/// "parameters" [p, q, b], "input_scale" = s_in [n], "output_scale" = s_out [m].
std::optional<StoredProjection> store_scaled_block_circulant(const Linear& linear) {
  const auto* scaled = dynamic_cast<const ScaledBlockCirculantLinear*>(&linear);
  if (scaled == nullptr) return std::nullopt;
  const fftmat::ScaledBlockCirculant<float>& matrix = scaled->matrix();
  StoredProjection stored = block_circulant_form(matrix.core());
  const auto vector = [](const fftmat::ScaledBlockCirculant<float>::Vector& scale) {
    return StoredTensor{{scale.size()}, std::vector<float>(scale.data(), scale.data() + scale.size())};
  };
  stored.tensors["input_scale"] = vector(matrix.input_scale());
  stored.tensors["output_scale"] = vector(matrix.output_scale());
  return stored;
}

std::unique_ptr<Linear> load_scaled_block_circulant(const StoredProjection& stored, const TensorSpec& replaced,
                                                    const std::string& where) {
  require_roles(stored, {"parameters", "input_scale", "output_scale"}, where);
  fftmat::BlockCirculant<float> core = block_circulant_of(stored, replaced, where);
  const Eigen::Index m = core.rows(), n = core.cols();
  const std::string because = "the " + std::to_string(m) + "x" + std::to_string(n) + " weight";
  const StoredTensor& input = shaped(stored, "input_scale", {n}, because, where);
  const StoredTensor& output = shaped(stored, "output_scale", {m}, because, where);
  require_finite(stored, "input_scale", where);
  require_finite(stored, "output_scale", where);
  using Vector = fftmat::ScaledBlockCirculant<float>::Vector;
  return std::make_unique<ScaledBlockCirculantLinear>(fftmat::ScaledBlockCirculant<float>(
      std::move(core), Eigen::Map<const Vector>(input.values.data(), n), Eigen::Map<const Vector>(output.values.data(), m)));
}

struct ProjectionKind {
  const char* name;
  /// The stored form of `linear` (layout and tensors; `replaces` and `kind` are filled in by the
  /// caller), or nullopt when `linear` is not of this kind.
  std::optional<StoredProjection> (*store)(const Linear& linear);
  /// The projection `stored` describes, checked against the weight it replaces; `where` names it.
  std::unique_ptr<Linear> (*load)(const StoredProjection& stored, const TensorSpec& replaced, const std::string& where);
};

constexpr ProjectionKind kProjectionKinds[] = {
    {"block_circulant", store_block_circulant, load_block_circulant},
    {"low_rank", store_low_rank, load_low_rank},
    {"scaled_block_circulant", store_scaled_block_circulant, load_scaled_block_circulant},
};

/// The kind of the projections each --projection makes; one not listed cannot be saved.
struct SavedProjection {
  Projection projection;
  const char* kind;
};
constexpr SavedProjection kSavedProjections[] = {
    {Projection::frobenius, "block_circulant"},
    {Projection::calibrated, "block_circulant"},
    {Projection::sequential, "block_circulant"},
    {Projection::low_rank, "low_rank"},
    {Projection::low_rank_sequential, "low_rank"},
    {Projection::scaled_sequential, "scaled_block_circulant"},
};

std::string known_kinds() {
  std::string names;
  for (const ProjectionKind& kind : kProjectionKinds) names += (names.empty() ? "" : ", ") + std::string(kind.name);
  return names;
}

std::unique_ptr<Linear> load_projection(const StoredProjection& stored, const TensorSpec& replaced,
                                        const std::string& where) {
  for (const ProjectionKind& kind : kProjectionKinds) {
    if (stored.kind == kind.name) return kind.load(stored, replaced, where);
  }
  throw error(where + ": projection kind '" + stored.kind + "' is not supported (known: " + known_kinds() + ")");
}

// ---- The model's replaceable projections ------------------------------------------------------

/// Every MLP weight of the model by name, with its spec and the slot of the model that holds it.
struct Replaceable {
  TensorSpec spec;
  int layer;
  std::unique_ptr<Linear> Mlp::*slot;
};

std::map<std::string, Replaceable> replaceable_weights(const LlamaConfig& config) {
  std::map<std::string, Replaceable> weights;
  for (int l = 0; l < config.num_hidden_layers; ++l) {
    const LayerSpecs s = layer_specs(config, l);
    weights.emplace(s.gate.name, Replaceable{s.gate, l, &Mlp::gate});
    weights.emplace(s.up.name, Replaceable{s.up, l, &Mlp::up});
    weights.emplace(s.down.name, Replaceable{s.down, l, &Mlp::down});
  }
  return weights;
}

/// "model.layers.0.mlp.gate_proj.weight" -> "model.layers.0.mlp.gate_proj.parameters".
std::string tensor_name(const std::string& replaces, const std::string& role) {
  const std::string suffix = ".weight";
  const bool ends = replaces.size() > suffix.size() &&
                    replaces.compare(replaces.size() - suffix.size(), suffix.size(), suffix) == 0;
  return (ends ? replaces.substr(0, replaces.size() - suffix.size()) : replaces) + "." + role;
}

// ---- The base checkpoint's files --------------------------------------------------------------

/// The files of `checkpoint`'s directory that a PATCHED directory carries, in a fixed order, with
/// their sizes and XXH3-64: config.json, the shard index (if any), the safetensors files,
/// tokenizer.model (if any).
nlohmann::json base_files(const Checkpoint& checkpoint) {
  nlohmann::json files = nlohmann::json::array();
  const auto add = [&](const std::string& name, const std::uint8_t* data, std::size_t size) {
    files.push_back({{"name", name}, {"bytes", size}, {"xxh3", xxh3_text(XXH3_64bits(data, size))}});
  };
  const auto add_file = [&](const std::string& name) {
    const MappedFile file(checkpoint.directory() / name);
    add(name, file.data(), file.size());
  };
  add_file("config.json");
  if (std::filesystem::exists(checkpoint.directory() / kShardIndexFile)) add_file(kShardIndexFile);
  for (const MappedFile& file : checkpoint.files()) add(file.path().filename().string(), file.data(), file.size());
  if (std::filesystem::exists(checkpoint.directory() / kTokenizerFile)) add_file(kTokenizerFile);
  return files;
}

std::string file_list(const nlohmann::json& files) {
  std::string names;
  for (const nlohmann::json& file : files) {
    const bool named = file.is_object() && file.contains("name") && file.at("name").is_string();
    names += (names.empty() ? "" : ", ") + (named ? file.at("name").get<std::string>() : file.dump());
  }
  return names;
}

/// Throws unless the files recorded in the patch are the checkpoint's files now.
void require_same_base(const nlohmann::json& recorded, const Checkpoint& checkpoint, const std::string& source) {
  const nlohmann::json current = base_files(checkpoint);
  const auto same_names = [&] {
    if (recorded.size() != current.size()) return false;
    for (std::size_t k = 0; k < current.size(); ++k) {
      if (!recorded[k].is_object() || !recorded[k].contains("name") || recorded[k].at("name") != current[k].at("name")) {
        return false;
      }
    }
    return true;
  };
  check(same_names(), source, ": the patch was made on a base of the files [", file_list(recorded), "], but ",
        checkpoint.directory().string(), " has [", file_list(current), "]");
  for (std::size_t k = 0; k < current.size(); ++k) {
    const nlohmann::json& now = current[k];
    check(recorded[k] == now, source, ": the base checkpoint changed since the patch was made: ",
          (checkpoint.directory() / now.at("name").get<std::string>()).string(), " has ", now.at("bytes").dump(),
          " bytes and XXH3 ", now.at("xxh3").get<std::string>(), ", the patch recorded ", recorded[k].dump(),
          " (patch the base again)");
  }
}

// ---- The metadata ------------------------------------------------------------------------------

const nlohmann::json& member(const nlohmann::json& object, const char* key, nlohmann::json::value_t type,
                             const std::string& where) {
  check(object.is_object() && object.contains(key), where, " has no \"", key, "\"");
  const nlohmann::json& value = object.at(key);
  const bool fits = value.type() == type ||
                    (type == nlohmann::json::value_t::number_float && value.is_number()) ||
                    (type == nlohmann::json::value_t::number_integer && value.is_number_integer());
  check(fits, where, ": \"", key, "\" has the wrong type: ", value.dump());
  return value;
}

nlohmann::json settings_json(const SavedPatch& patch) {
  const PatchSettings& s = patch.settings;
  return {{"projection", projection_name(s.projection)},
          {"layers", format_layers(s.layers)},
          {"block_size", s.block_size},
          {"damping", s.damping},
          {"spectra", s.spectra == fftmat::SpectrumPrecision::bfloat16 ? "bfloat16" : "full"},
          {"calibration", patch.calibration}};
}

void read_settings(const nlohmann::json& json, const LlamaConfig& config, const std::string& where, SavedPatch& patch) {
  using type = nlohmann::json::value_t;
  PatchSettings& s = patch.settings;
  s.projection = parse_projection(member(json, "projection", type::string, where).get<std::string>());
  s.layers = parse_layers(member(json, "layers", type::string, where).get<std::string>(), config.num_hidden_layers);
  const nlohmann::json& block = member(json, "block_size", type::number_integer, where);
  check(block.is_number_unsigned() && block.get<std::uint64_t>() <= (1u << 30), where, ": \"block_size\" ",
        block.dump(), " is out of range");
  s.block_size = block.get<int>();
  s.damping = member(json, "damping", type::number_float, where).get<double>();
  const std::string spectra = member(json, "spectra", type::string, where).get<std::string>();
  check(spectra == "full" || spectra == "bfloat16", where, ": \"spectra\" is \"", spectra, "\", not full or bfloat16");
  s.spectra = spectra == "bfloat16" ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  patch.calibration = member(json, "calibration", type::string, where).get<std::string>();
  try {
    check_patch_settings(s, config);
  } catch (const error& e) {
    throw error(where + ": " + e.what());
  }
}

}  // namespace

const char* saved_kind(Projection projection) {
  for (const SavedProjection& saved : kSavedProjections) {
    if (saved.projection == projection) return saved.kind;
  }
  return nullptr;
}

std::string saved_projections() {
  std::string names;
  for (const SavedProjection& saved : kSavedProjections) {
    names += (names.empty() ? "" : ", ") + std::string(projection_name(saved.projection));
  }
  return names;
}

SavedPatch make_saved_patch(const Model& patched, const PatchSettings& settings, const std::string& calibration) {
  SavedPatch patch{settings, calibration, {}};
  const std::map<std::string, Replaceable> weights = replaceable_weights(patched.config());
  for (const int l : settings.layers) {
    const LayerSpecs s = layer_specs(patched.config(), l);
    for (const TensorSpec* spec : {&s.gate, &s.up, &s.down}) {
      const Linear& linear = *(patched.layers.at(static_cast<std::size_t>(l)).mlp.*weights.at(spec->name).slot);
      std::optional<StoredProjection> stored;
      const ProjectionKind* kind = nullptr;
      for (const ProjectionKind& candidate : kProjectionKinds) {
        if ((stored = candidate.store(linear))) {
          kind = &candidate;
          break;
        }
      }
      check(kind != nullptr, "'", spec->name, "' is not a projection that can be saved (kinds: ", known_kinds(), ")");
      // What read_saved_patch requires: the file must not say another projection made it.
      const char* expected_kind = saved_kind(settings.projection);
      check(expected_kind != nullptr && std::string_view(kind->name) == expected_kind, "'", spec->name, "' is a ",
            kind->name, " projection, but the settings' projection '", projection_name(settings.projection),
            "' makes ", expected_kind != nullptr ? expected_kind : "nothing that is saved");
      stored->replaces = spec->name;
      stored->kind = kind->name;
      patch.projections.push_back(std::move(*stored));
    }
  }
  return patch;
}

void check_patched_output(const std::filesystem::path& out) {
  std::error_code ec;
  check(!std::filesystem::exists(std::filesystem::symlink_status(out, ec)), "output directory (--out) ", out,
        " already exists (remove it or choose another)");
  const std::filesystem::path parent = out.has_parent_path() ? out.parent_path() : std::filesystem::path(".");
  require_writable_directory(parent, "the parent of --out,");
}

void save_patched_checkpoint(const Checkpoint& base, const SavedPatch& patch, const std::filesystem::path& out,
                             BaseFiles base_files_as) {
  check(!has_saved_patch(base.directory()), base.directory().string(),
        " is itself a patched checkpoint; patch its base instead");
  std::vector<TensorBytes> tensors;
  nlohmann::json projections = nlohmann::json::array();
  XXH3_state_t* state = XXH3_createState();
  check(state != nullptr, "cannot allocate an xxHash state");
  const std::unique_ptr<XXH3_state_t, XXH_errorcode (*)(XXH3_state_t*)> owned(state, XXH3_freeState);
  XXH3_64bits_reset(state);
  for (const StoredProjection& stored : patch.projections) {
    nlohmann::json names = nlohmann::json::object();
    for (const auto& [role, tensor] : stored.tensors) {
      const std::string name = tensor_name(stored.replaces, role);
      const std::string_view bytes(reinterpret_cast<const char*>(tensor.values.data()), tensor.values.size() * sizeof(float));
      tensors.push_back({name, DType::f32, tensor.shape, bytes});
      XXH3_64bits_update(state, bytes.data(), bytes.size());  // the data section, tensor after tensor
      names[role] = name;
    }
    projections.push_back({{"replaces", stored.replaces}, {"kind", stored.kind}, {"layout", stored.layout}, {"tensors", names}});
  }
  const nlohmann::json files = base_files(base);
  const nlohmann::json metadata{{"format", kFormat},
                                {"base", files},
                                {"settings", settings_json(patch)},
                                {"projections", projections},
                                {"payload_xxh3", xxh3_text(XXH3_64bits_digest(state))}};
  const std::string bytes = safetensors_file(tensors, {{kMetadataKey, metadata.dump()}});

  TemporaryDirectory directory(out);
  for (const nlohmann::json& file : files) {
    const std::string name = file.at("name").get<std::string>();
    const std::filesystem::path source = base.directory() / name, entry = directory.add(name);
    std::error_code ec;
    if (base_files_as == BaseFiles::link) {
      std::filesystem::create_symlink(std::filesystem::canonical(source), entry, ec);
    } else {
      std::filesystem::copy_file(source, entry, ec);
    }
    check(!ec, "cannot ", base_files_as == BaseFiles::link ? "link " : "copy ", source, " to ", entry, ": ", ec.message());
  }
  write_file_atomically(directory.add(kPatchFileName), bytes);
  directory.commit();
}

bool has_saved_patch(const std::filesystem::path& directory) {
  std::error_code ec;
  return std::filesystem::exists(std::filesystem::symlink_status(directory / kPatchFileName, ec));
}

std::optional<SavedPatch> read_saved_patch(const Checkpoint& checkpoint) {
  if (!has_saved_patch(checkpoint.directory())) return std::nullopt;
  using type = nlohmann::json::value_t;
  const std::filesystem::path path = checkpoint.directory() / kPatchFileName;
  const std::string source = path.string();
  const MappedFile file(path);
  const SafetensorsHeader header = parse_safetensors(file.data(), file.size(), source);

  const auto text = header.metadata.find(kMetadataKey);
  check(text != header.metadata.end(), source, " has no __metadata__ \"", kMetadataKey,
        "\": it is not a patch written by fftmat-llama patch");
  const nlohmann::json root = nlohmann::json::parse(text->second, nullptr, false);
  check(!root.is_discarded() && root.is_object(), source, ": __metadata__ \"", kMetadataKey, "\" is not a JSON object");
  const std::string where = source + " (__metadata__ \"" + kMetadataKey + "\")";
  check(member(root, "format", type::number_integer, where).get<std::int64_t>() == kFormat, where, ": format ",
        root.at("format").dump(), " is not supported (this program reads format ", kFormat, ")");
  require_same_base(member(root, "base", type::array, where), checkpoint, source);

  SavedPatch patch;
  read_settings(member(root, "settings", type::object, where), checkpoint.config(), where + " settings", patch);

  std::map<std::string, const TensorInfo*> file_tensors;
  for (const TensorInfo& info : header.tensors) file_tensors.emplace(info.name, &info);
  std::set<std::string> used_tensors;
  const std::map<std::string, Replaceable> weights = replaceable_weights(checkpoint.config());
  std::set<int> layers;
  for (const nlohmann::json& entry : member(root, "projections", type::array, where)) {
    const std::string entry_where = where + " projection " + std::to_string(patch.projections.size());
    StoredProjection stored;
    stored.replaces = member(entry, "replaces", type::string, entry_where).get<std::string>();
    const auto weight = weights.find(stored.replaces);
    check(weight != weights.end(), entry_where, ": '", stored.replaces,
          "' is not an MLP projection weight of this model (", checkpoint.config().num_hidden_layers, " layers)");
    const std::string projection_where = source + ", the projection replacing '" + stored.replaces + "'";
    for (const StoredProjection& earlier : patch.projections) {
      check(earlier.replaces != stored.replaces, projection_where, ": listed twice");
    }
    stored.kind = member(entry, "kind", type::string, projection_where).get<std::string>();
    for (const auto& [key, value] : member(entry, "layout", type::object, projection_where).items()) {
      check(value.is_string(), projection_where, ": layout field \"", key, "\" is not a string");
      stored.layout.emplace(key, value.get<std::string>());
    }
    for (const auto& [role, name_json] : member(entry, "tensors", type::object, projection_where).items()) {
      check(name_json.is_string(), projection_where, ": tensor of role \"", role, "\" is not named by a string");
      const std::string name = name_json.get<std::string>();
      const auto found = file_tensors.find(name);
      check(found != file_tensors.end(), projection_where, ": tensor '", name, "' (role \"", role,
            "\") is missing from the file");
      check(used_tensors.insert(name).second, projection_where, ": tensor '", name, "' is used twice");
      const TensorInfo& info = *found->second;
      check(info.dtype == DType::f32, source, ": tensor '", name, "' has dtype ", info.dtype_string, ", not F32");
      StoredTensor& tensor = stored.tensors[role];
      tensor.shape = info.shape;
      tensor.values.resize(static_cast<std::size_t>(info.end - info.begin) / sizeof(float));
      std::memcpy(tensor.values.data(), file.data() + header.data_offset + info.begin, info.end - info.begin);
    }
    load_projection(stored, weight->second.spec, projection_where);  // validates everything; built again on use
    const char* expected_kind = saved_kind(patch.settings.projection);
    check(expected_kind != nullptr && stored.kind == expected_kind, projection_where, ": its kind is ", stored.kind,
          ", but the settings' projection '", projection_name(patch.settings.projection), "' makes ",
          expected_kind != nullptr ? expected_kind : "nothing that is saved");
    layers.insert(weight->second.layer);
    patch.projections.push_back(std::move(stored));
  }
  for (const TensorInfo& info : header.tensors) {
    check(used_tensors.count(info.name) == 1, source, ": tensor '", info.name, "' belongs to no projection");
  }
  check(std::vector<int>(layers.begin(), layers.end()) == patch.settings.layers, where, ": the projections replace layers ",
        format_layers(std::vector<int>(layers.begin(), layers.end())), ", the settings say ",
        format_layers(patch.settings.layers));
  // Last, so that each check above names its own problem: any other change to the data is caught here.
  const std::string payload = xxh3_text(XXH3_64bits(file.data() + header.data_offset, file.size() - header.data_offset));
  check(payload == member(root, "payload_xxh3", type::string, where).get<std::string>(), source,
        ": the tensors do not match the checksum in the metadata (XXH3 ", payload, ", recorded ",
        root.at("payload_xxh3").get<std::string>(), "): the file was altered or damaged");
  return patch;
}

void apply_saved_patch(const SavedPatch& patch, Model& model) {
  const std::map<std::string, Replaceable> weights = replaceable_weights(model.config());
  const std::string source = (model.checkpoint->directory() / kPatchFileName).string();
  for (const StoredProjection& stored : patch.projections) {
    const Replaceable& weight = weights.at(stored.replaces);
    model.layers.at(static_cast<std::size_t>(weight.layer)).mlp.*weight.slot =
        load_projection(stored, weight.spec, source + ", the projection replacing '" + stored.replaces + "'");
  }
}

Model load_model(const std::filesystem::path& directory) {
  Model model(std::make_shared<const Checkpoint>(directory));
  if (const std::optional<SavedPatch> patch = read_saved_patch(*model.checkpoint)) apply_saved_patch(*patch, model);
  return model;
}

std::string describe(const SavedPatch& patch) {
  const PatchSettings& s = patch.settings;
  return format_layers(s.layers) + " " + projection_name(s.projection) + ", b = " + std::to_string(s.block_size) +
         (s.spectra == fftmat::SpectrumPrecision::bfloat16 ? ", bfloat16 spectra" : "") + " (saved)";
}

}  // namespace llama
