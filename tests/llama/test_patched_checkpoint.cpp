// Saved patches: a patched model written as a PATCHED checkpoint directory and loaded again.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cmath>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>

#include "../scoped_thread_count.hpp"
#include "engine/model.hpp"
#include "engine/output_file.hpp"
#include "engine/tokenizer.hpp"
#include "evaluation/evaluation.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "evaluation/patching.hpp"
#include "test_helpers.hpp"

namespace {

using namespace llama;
using llama_test::contains;
using llama_test::copy_reference;
using llama_test::error_of;
using llama_test::read_file;
using llama_test::reference_dir;
using llama_test::TempDir;
using llama_test::write_file;
namespace fs = std::filesystem;

const auto silent = [](const std::string&) {};
const std::vector<int> kIds{1, 5, 6, 7, 42, 99, 3, 17, 250, 8, 64, 12};

/// Token sequences for the calibrated projections of the reference checkpoints (no tokenizer).
std::vector<std::vector<int>> calibration_ids(int vocab) {
  std::vector<std::vector<int>> prompts;
  for (int p = 0; p < 6; ++p) {
    std::vector<int> ids{1};
    for (int t = 1; t < 20; ++t) ids.push_back((p * 37 + t * 11) % (vocab - 3) + 3);
    prompts.push_back(ids);
  }
  return prompts;
}

std::vector<float> all_logits(Model& model, const std::vector<int>& ids) {
  KvCache cache = model.make_cache(static_cast<int>(ids.size()));
  return model.forward(ids, cache, Logits::all);
}

/// The last-position logits of a token-by-token decode (the matrix-vector path).
std::vector<float> decoded_logits(Model& model, const std::vector<int>& ids) {
  KvCache cache = model.make_cache(static_cast<int>(ids.size()));
  std::vector<float> logits;
  for (const int id : ids) {
    const std::vector<float> step = model.forward({id}, cache, Logits::last);
    logits.insert(logits.end(), step.begin(), step.end());
  }
  return logits;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

PatchSettings patch_settings(std::vector<int> layers, int block, Projection projection,
                       fftmat::SpectrumPrecision spectra = fftmat::SpectrumPrecision::full) {
  PatchSettings s;
  s.layers = std::move(layers);
  s.block_size = block;
  s.projection = projection;
  s.spectra = spectra;
  return s;
}

/// Patches the model of `base` (then `edit` changes it, if given) and saves it as `out`; returns
/// the patched model (in memory).
Model patch_and_save(const fs::path& base, const PatchSettings& s, const fs::path& out, BaseFiles how,
                     const std::vector<std::vector<int>>& calibration = {},
                     const std::function<void(Model&)>& edit = {}) {
  const auto checkpoint = std::make_shared<const Checkpoint>(base);
  Model teacher(checkpoint), student(checkpoint);
  patch_model(student, teacher, s, calibration.empty() ? calibration_ids(teacher.config().vocab_size) : calibration,
              silent);
  if (edit) edit(student);
  save_patched_checkpoint(*checkpoint, make_saved_patch(student, s, "test prompts"), out, how);
  return student;
}

std::string patched_load_error(const fs::path& dir) {
  return error_of([&] { load_model(dir); });
}

/// The patch file's JSON header and data section.
struct PatchFile {
  nlohmann::json header;
  std::string data;
};

PatchFile read_patch(const fs::path& dir) {
  const std::string bytes = read_file(dir / kPatchFileName);
  std::uint64_t length = 0;
  for (int k = 7; k >= 0; --k) length = (length << 8) | static_cast<unsigned char>(bytes[static_cast<std::size_t>(k)]);
  return {nlohmann::json::parse(bytes.substr(8, length)), bytes.substr(8 + length)};
}

void write_patch(const fs::path& dir, const PatchFile& file) {
  write_file(dir / kPatchFileName, llama_test::safetensors_bytes(llama_test::padded(file.header.dump()), file.data));
}

/// Rewrites the patch file's "fftmat_patch" metadata with `edit`.
template <class Edit>
void edit_metadata(const fs::path& dir, Edit edit) {
  PatchFile file = read_patch(dir);
  nlohmann::json metadata = nlohmann::json::parse(file.header["__metadata__"]["fftmat_patch"].get<std::string>());
  edit(metadata);
  file.header["__metadata__"]["fftmat_patch"] = metadata.dump();
  write_patch(dir, file);
}

/// Sets float `index` of tensor `name`'s data to `value`.
void set_parameter(const fs::path& dir, const std::string& name, std::size_t index, float value) {
  PatchFile file = read_patch(dir);
  const std::size_t offset = file.header[name]["data_offsets"][0].get<std::size_t>() + index * sizeof(float);
  std::memcpy(&file.data[offset], &value, sizeof value);
  write_patch(dir, file);
}

/// The names in `directory`, sorted.
std::vector<std::string> entries(const fs::path& directory) {
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(directory)) names.push_back(entry.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("outputs: a directory appears complete or not at all") {
  const TempDir dir;
  const fs::path target = dir.path() / "out";
  {
    TemporaryDirectory building(target);
    write_file(building.add("a.txt"), "a");
    CHECK(!fs::exists(target));
    CHECK(entries(dir.path()).size() == 1);  // the hidden temporary
  }  // not committed: removed with what it holds
  CHECK(entries(dir.path()).empty());

  {
    TemporaryDirectory building(target);
    write_file(building.add("a.txt"), "a");
    fs::create_symlink("a.txt", building.add("b.txt"));
    building.commit();
  }
  CHECK(entries(dir.path()) == std::vector<std::string>{"out"});
  CHECK(entries(target) == std::vector<std::string>{"a.txt", "b.txt"});
  CHECK(read_file(target / "b.txt") == "a");
  CHECK(contains(error_of([&] { TemporaryDirectory again(target); }), "already exists"));
  CHECK(contains(error_of([&] { TemporaryDirectory building(dir.path() / "new"); building.add("../x"); }),
                 "'../x' is not a plain file name"));

  // A target that appears meanwhile is not replaced, and the temporary goes.
  CHECK(contains(error_of([&] {
                   TemporaryDirectory building(dir.path() / "raced");
                   write_file(building.add("mine.txt"), "mine");
                   fs::create_directory(dir.path() / "raced");
                   write_file(dir.path() / "raced" / "theirs.txt", "theirs");
                   building.commit();
                 }),
                 "appeared while it was being written; nothing replaced"));
  CHECK(entries(dir.path() / "raced") == std::vector<std::string>{"theirs.txt"});
  CHECK(entries(dir.path()) == std::vector<std::string>{"out", "raced"});
}

TEST_CASE("outputs: SIGTERM while a directory is built removes it and its entries") {
  const TempDir dir;
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    std::signal(SIGTERM, SIG_DFL);  // not doctest's handler, which would report the signal as a failure
    TemporaryDirectory building(dir.path() / "out");
    write_file(building.add("weights.bin"), std::string(1000, 'w'));
    fs::create_symlink("/nonexistent", building.add("link"));
    ::kill(::getpid(), SIGTERM);
    ::sleep(5);  // the signal arrives before this ends
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGTERM);
  CHECK(entries(dir.path()).empty());
}

TEST_CASE("saved patch: the reloaded model's logits equal the patched model's bit for bit") {
  TempDir dir;
  const fs::path patched_dir = dir.path() / "patched";
  // gate and up are 160x64 (10 block rows: packed kernels, bfloat16 spectra), down 64x160 (4: full).
  const PatchSettings s = patch_settings({0, 1}, 16, Projection::sequential, fftmat::SpectrumPrecision::bfloat16);
  Model patched = patch_and_save(reference_dir("gqa_f32"), s, patched_dir, BaseFiles::link);
  Model reloaded = load_model(patched_dir);

  const std::vector<float> expected = all_logits(patched, kIds);
  CHECK(same_bits(all_logits(reloaded, kIds), expected));
  CHECK(same_bits(decoded_logits(reloaded, kIds), decoded_logits(patched, kIds)));
  Model base = load_model(reference_dir("gqa_f32"));
  CHECK_FALSE(same_bits(all_logits(base, kIds), expected));  // the patch is really applied
  // The checkpoint's own model is the base: the teacher of eval and sweep.
  Model teacher(std::make_shared<const Checkpoint>(patched_dir));
  CHECK(same_bits(all_logits(teacher, kIds), all_logits(base, kIds)));

  const auto* gate = reloaded.layers[1].mlp.gate->block_circulant();
  REQUIRE(gate != nullptr);
  CHECK(gate->spectrum_precision() == fftmat::SpectrumPrecision::bfloat16);
  CHECK(reloaded.layers[1].mlp.down->block_circulant()->spectrum_precision() == fftmat::SpectrumPrecision::full);
  CHECK(dynamic_cast<const DenseLinear*>(reloaded.layers[0].attention.q.get()) != nullptr);

  // The directory: links to the base's files and the patch file, and no temporary beside it.
  for (const char* name : {"config.json", "model.safetensors"}) {
    CHECK(fs::is_symlink(patched_dir / name));
    CHECK(fs::equivalent(patched_dir / name, reference_dir("gqa_f32") / name));
  }
  CHECK(fs::is_regular_file(fs::symlink_status(patched_dir / kPatchFileName)));
  CHECK(std::distance(fs::directory_iterator(dir.path()), fs::directory_iterator()) == 1);
  CHECK(std::distance(fs::directory_iterator(patched_dir), fs::directory_iterator()) == 3);

  const std::optional<SavedPatch> patch = read_saved_patch(*reloaded.checkpoint);
  REQUIRE(patch.has_value());
  CHECK(patch->settings.projection == Projection::sequential);
  CHECK(patch->settings.layers == std::vector<int>{0, 1});
  CHECK(patch->projections.size() == 6);
  CHECK(describe(*patch) == "0-1 sequential, b = 16, bfloat16 spectra (saved)");
}

TEST_CASE("saved patch: copies of a sharded checkpoint reload bit for bit, prefill and decode") {
  TempDir dir;
  const fs::path patched_dir = dir.path() / "patched";
  Model patched = patch_and_save(reference_dir("sharded_f16"), patch_settings({0, 2}, 16, Projection::frobenius),
                                 patched_dir, BaseFiles::copy);
  Model reloaded = load_model(patched_dir);
  CHECK(same_bits(all_logits(reloaded, kIds), all_logits(patched, kIds)));
  CHECK(same_bits(decoded_logits(reloaded, kIds), decoded_logits(patched, kIds)));
  CHECK(dynamic_cast<const DenseLinear*>(reloaded.layers[1].mlp.up.get()) != nullptr);  // layer 1 untouched
  // 8 shards, the index and config.json, copied; the patch file.
  int copies = 0;
  for (const auto& entry : fs::directory_iterator(patched_dir)) copies += fs::is_symlink(entry.path()) ? 100 : 1;
  CHECK(copies == 11);
  CHECK(read_file(patched_dir / "model-00003-of-00008.safetensors") ==
        read_file(reference_dir("sharded_f16") / "model-00003-of-00008.safetensors"));
}

TEST_CASE("saved patch: outputs and inputs that cannot be saved are refused before the work") {
  TempDir dir;
  const fs::path base = reference_dir("gqa_f32");
  const auto checkpoint = std::make_shared<const Checkpoint>(base);
  Model model(checkpoint), teacher(checkpoint);
  CHECK(contains(error_of([&] { check_patched_output(dir.path()); }), "already exists"));
  CHECK(error_of([&] { check_patched_output(dir.path() / "new"); }).empty());
  CHECK(contains(error_of([&] { make_saved_patch(model, patch_settings({0}, 16, Projection::frobenius), ""); }),
                 "'model.layers.0.mlp.gate_proj.weight' is not a projection that can be saved (kinds: block_circulant, "
                 "low_rank, scaled_block_circulant)"));
  {
    Model low_rank(checkpoint);
    patch_model(low_rank, teacher, patch_settings({0}, 16, Projection::low_rank), calibration_ids(teacher.config().vocab_size), silent);
    CHECK(contains(error_of([&] { make_saved_patch(low_rank, patch_settings({0}, 16, Projection::sequential), ""); }),
                   "'model.layers.0.mlp.gate_proj.weight' is a low_rank projection, but the settings' projection "
                   "'sequential' makes block_circulant"));
  }
  patch_model(model, teacher, patch_settings({1}, 16, Projection::zero), {}, silent);
  CHECK(contains(error_of([&] { make_saved_patch(model, patch_settings({1}, 16, Projection::zero), ""); }),
                 "'model.layers.1.mlp.gate_proj.weight' is not a projection that can be saved"));

  const fs::path patched_dir = dir.path() / "patched";
  patch_and_save(base, patch_settings({0}, 16, Projection::frobenius), patched_dir, BaseFiles::link);
  CHECK(contains(error_of([&] {
                   patch_and_save(base, patch_settings({1}, 16, Projection::frobenius), patched_dir, BaseFiles::link);
                 }),
                 "already exists"));
  CHECK(contains(error_of([&] {
                   patch_and_save(patched_dir, patch_settings({1}, 16, Projection::frobenius), dir.path() / "twice",
                                  BaseFiles::link);
                 }),
                 "is itself a patched checkpoint; patch its base instead"));
  CHECK(!fs::exists(dir.path() / "twice"));
}

TEST_CASE("saved patch: a corrupted PATCHED directory is rejected with a message naming the problem") {
  TempDir dir;
  const fs::path base = copy_reference("gqa_f32", dir);  // a base of our own, to change at the end
  int made = 0;
  const auto fresh = [&] {
    const fs::path patched_dir = dir.path() / ("patched" + std::to_string(made++));
    patch_and_save(base, patch_settings({0, 1}, 16, Projection::frobenius), patched_dir, BaseFiles::link);
    REQUIRE(patched_load_error(patched_dir).empty());
    return patched_dir;
  };
  const std::string gate = "model.layers.0.mlp.gate_proj.parameters";

  fs::path p = fresh();
  fs::resize_file(p / kPatchFileName, 100);
  CHECK(contains(patched_load_error(p), "fftmat_patch.safetensors: header length"));

  p = fresh();
  fs::resize_file(p / kPatchFileName, fs::file_size(p / kPatchFileName) - 4);
  CHECK(contains(patched_load_error(p), "past the end of the data section"));

  p = fresh();
  set_parameter(p, gate, 5, 0.25f);  // a finite but changed value: only the checksum sees it
  CHECK(contains(patched_load_error(p), "fftmat_patch.safetensors: the tensors do not match the checksum in the metadata"));

  p = fresh();
  set_parameter(p, gate, 5, std::numeric_limits<float>::quiet_NaN());
  CHECK(contains(patched_load_error(p), "the projection replacing 'model.layers.0.mlp.gate_proj.weight', tensor "
                                "\"parameters\": parameter 5 (block row 0, block column 0, offset 5) is not finite"));

  p = fresh();
  {
    PatchFile file = read_patch(p);
    file.header[gate]["shape"] = {4, 10, 16};  // the same bytes in the wrong shape
    write_patch(p, file);
  }
  CHECK(contains(patched_load_error(p), "tensor \"parameters\" has shape [4, 10, 16], but its layout needs [10, 4, 16]"));

  p = fresh();
  {
    PatchFile file = read_patch(p);
    file.header["model.layers.0.mlp.gate_proj.renamed"] = file.header[gate];
    file.header.erase(gate);
    write_patch(p, file);
  }
  CHECK(contains(patched_load_error(p), "tensor '" + gate + "' (role \"parameters\") is missing from the file"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rows"] = "128"; });
  CHECK(contains(patched_load_error(p), "the layout is 128x64, but config.json makes 'model.layers.0.mlp.gate_proj.weight' 160x64"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["padding"] = "reflect"; });
  CHECK(contains(patched_load_error(p), "block-circulant layout field \"padding\" = \"reflect\" is neither"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][1]["kind"] = "sparse"; });
  CHECK(contains(patched_load_error(p),
                 "projection kind 'sparse' is not supported (known: block_circulant, low_rank, scaled_block_circulant)"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][1]["kind"] = "low_rank"; });
  CHECK(contains(patched_load_error(p), "a low_rank projection has the tensors \"left\", \"right\"; this one has "
                                        "\"parameters\""));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["replaces"] = "model.layers.0.self_attn.q_proj.weight"; });
  CHECK(contains(patched_load_error(p), "'model.layers.0.self_attn.q_proj.weight' is not an MLP projection weight"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][3]["replaces"] = m["projections"][0]["replaces"]; });
  CHECK(contains(patched_load_error(p), "the projection replacing 'model.layers.0.mlp.gate_proj.weight': listed twice"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["settings"]["layers"] = "0"; });
  CHECK(contains(patched_load_error(p), "the projections replace layers 0-1, the settings say 0"));

  p = fresh();
  edit_metadata(p, [](nlohmann::json& m) { m["format"] = 2; });
  CHECK(contains(patched_load_error(p), "format 2 is not supported"));

  p = fresh();
  {
    PatchFile file = read_patch(p);
    file.header.erase("__metadata__");
    write_patch(p, file);
  }
  CHECK(contains(patched_load_error(p), "has no __metadata__ \"fftmat_patch\""));

  // The base changed under the links: one weight of the base file, still finite.
  p = fresh();
  {
    std::string bytes = read_file(base / "model.safetensors");
    bytes[bytes.size() - 3] = static_cast<char>(bytes[bytes.size() - 3] ^ 0x01);
    write_file(base / "model.safetensors", bytes);
  }
  CHECK(contains(patched_load_error(p), "the base checkpoint changed since the patch was made: "));
  CHECK(contains(patched_load_error(p), "model.safetensors has 511328 bytes and XXH3 "));
  // The teacher of eval and sweep is refused too: the Evaluator reads the patch first.
  CHECK(contains(error_of([&] { read_saved_patch(Checkpoint(p)); }), "the base checkpoint changed"));

  // The base moved away: the links name what they point to.
  fs::rename(base, dir.path() / "moved");
  CHECK(contains(patched_load_error(p), "config.json\" is a symbolic link to \"" + base.string() +
                                    "/config.json\", which does not exist (was the base checkpoint moved or deleted?)"));
}

TEST_CASE("saved patch: low-rank and scaled block-circulant projections reload bit for bit, prefill and decode") {
  struct Case {
    Projection projection;
    fftmat::SpectrumPrecision spectra;
    const char* kind;
  };
  // gate and up are 160x64: rank 2 at the budget of b = 16; 10 block rows read bfloat16 spectra.
  for (const Case& c : {Case{Projection::low_rank, fftmat::SpectrumPrecision::full, "low_rank"},
                        Case{Projection::low_rank_sequential, fftmat::SpectrumPrecision::full, "low_rank"},
                        Case{Projection::scaled_sequential, fftmat::SpectrumPrecision::bfloat16,
                             "scaled_block_circulant"}}) {
    CAPTURE(projection_name(c.projection));
    TempDir dir;
    const fs::path patched_dir = dir.path() / "patched";
    CHECK(std::string(saved_kind(c.projection)) == c.kind);
    // scaled-sequential fits no output scale (it stays 1): layer 1's gate gets one, so that the
    // round trip of every stored tensor shows in the logits.
    const auto give_output_scale = [](Model& model) {
      auto& gate = model.layers[1].mlp.gate;
      const auto* fitted = dynamic_cast<const ScaledBlockCirculantLinear*>(gate.get());
      if (fitted == nullptr) return;
      const fftmat::ScaledBlockCirculant<float>& m = fitted->matrix();
      CHECK(m.output_scale().isOnes());
      const Eigen::VectorXf scale = Eigen::VectorXf::LinSpaced(m.rows(), 0.5f, 1.5f);
      gate = std::make_unique<ScaledBlockCirculantLinear>(
          fftmat::ScaledBlockCirculant<float>(m.core(), m.input_scale(), scale));
    };
    Model patched = patch_and_save(reference_dir("gqa_f32"), patch_settings({0, 1}, 16, c.projection, c.spectra),
                                   patched_dir, BaseFiles::link, {}, give_output_scale);
    Model reloaded = load_model(patched_dir);
    const std::vector<float> expected = all_logits(patched, kIds);
    CHECK(same_bits(all_logits(reloaded, kIds), expected));
    CHECK(same_bits(decoded_logits(reloaded, kIds), decoded_logits(patched, kIds)));
    Model base = load_model(reference_dir("gqa_f32"));
    CHECK_FALSE(same_bits(all_logits(base, kIds), expected));  // the patch is really applied

    for (const int l : {0, 1}) {
      const Mlp& was = patched.layers[static_cast<std::size_t>(l)].mlp;
      const Mlp& now = reloaded.layers[static_cast<std::size_t>(l)].mlp;
      for (const Linear* projection : {now.gate.get(), now.up.get(), now.down.get()}) {
        const bool low_rank = dynamic_cast<const LowRankLinear*>(projection) != nullptr;
        const bool scaled = dynamic_cast<const ScaledBlockCirculantLinear*>(projection) != nullptr;
        CHECK(low_rank == (std::string(c.kind) == "low_rank"));
        CHECK(scaled == (std::string(c.kind) == "scaled_block_circulant"));
      }
      CHECK(now.gate->parameter_bytes() == was.gate->parameter_bytes());
      CHECK(now.down->parameter_bytes() == was.down->parameter_bytes());
    }
    if (c.projection == Projection::scaled_sequential) {
      const auto& gate = dynamic_cast<const ScaledBlockCirculantLinear&>(*reloaded.layers[1].mlp.gate).matrix();
      CHECK(gate.core().spectrum_precision() == fftmat::SpectrumPrecision::bfloat16);
      CHECK(gate.output_scale()[0] == 0.5f);
    } else {
      CHECK(dynamic_cast<const LowRankLinear&>(*reloaded.layers[1].mlp.gate).matrix().rank() == 2);
    }

    const std::optional<SavedPatch> patch = read_saved_patch(*reloaded.checkpoint);
    REQUIRE(patch.has_value());
    CHECK(patch->settings.projection == c.projection);
    REQUIRE(patch->projections.size() == 6);
    for (const StoredProjection& stored : patch->projections) CHECK(stored.kind == c.kind);
  }
}

TEST_CASE("saved patch: corrupted low-rank and scaled projections are rejected with a message naming the problem") {
  TempDir dir;
  int made = 0;
  std::map<Projection, fs::path> originals;  // one fit per projection, copied for each corruption
  const auto fresh = [&](Projection projection) {
    fs::path& original = originals[projection];
    if (original.empty()) {
      original = dir.path() / ("original-" + std::string(projection_name(projection)));
      patch_and_save(reference_dir("gqa_f32"), patch_settings({0, 1}, 16, projection), original, BaseFiles::link);
    }
    const fs::path patched_dir = dir.path() / ("patched" + std::to_string(made++));
    fs::copy(original, patched_dir, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
    REQUIRE(patched_load_error(patched_dir).empty());
    return patched_dir;
  };
  const std::string gate = "model.layers.0.mlp.gate_proj";
  const auto set_shape = [](const fs::path& p, const std::string& name, std::vector<std::int64_t> shape) {
    PatchFile file = read_patch(p);
    file.header[name]["shape"] = shape;  // the same bytes in another shape
    write_patch(p, file);
  };

  SUBCASE("low-rank") {
    // gate is 160x64, stored as left [160, 2] and right [2, 64]; projection 0 is layer 0's gate.
    fs::path p = fresh(Projection::low_rank);
    set_shape(p, gate + ".left", {2, 160});
    CHECK(contains(patched_load_error(p), "the projection replacing '" + gate + ".weight': tensor \"left\" has shape "
                                          "[2, 160], but rank 2 of the 160x64 weight needs [160, 2]"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rank"] = "3"; });  // tensors say 2
    CHECK(contains(patched_load_error(p), "tensor \"left\" has shape [160, 2], but rank 3 of the 160x64 weight needs "
                                          "[160, 3]"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rank"] = "65"; });
    CHECK(contains(patched_load_error(p), "rank 65 is outside [1, 64] for '" + gate + ".weight', 160x64 in config.json"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rank"] = "0"; });
    CHECK(contains(patched_load_error(p), "rank 0 is outside [1, 64]"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rank"] = "-2"; });
    CHECK(contains(patched_load_error(p), "layout field \"rank\" = \"-2\" is not a decimal integer"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["rows"] = "160"; });
    CHECK(contains(patched_load_error(p), "a low_rank layout has exactly one field, \"rank\""));

    p = fresh(Projection::low_rank);
    set_parameter(p, gate + ".right", 3, std::numeric_limits<float>::infinity());
    CHECK(contains(patched_load_error(p), "the projection replacing '" + gate + ".weight', tensor \"right\": value 3 "
                                          "is not finite (inf)"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["tensors"].erase("right"); });
    CHECK(contains(patched_load_error(p), "a low_rank projection has the tensors \"left\", \"right\"; this one has "
                                          "\"left\""));

    p = fresh(Projection::low_rank);
    {
      PatchFile file = read_patch(p);
      file.header[gate + ".renamed"] = file.header[gate + ".left"];
      file.header.erase(gate + ".left");
      write_patch(p, file);
    }
    CHECK(contains(patched_load_error(p), "tensor '" + gate + ".left' (role \"left\") is missing from the file"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["settings"]["projection"] = "sequential"; });
    CHECK(contains(patched_load_error(p), "its kind is low_rank, but the settings' projection 'sequential' makes "
                                          "block_circulant"));

    p = fresh(Projection::low_rank);
    edit_metadata(p, [](nlohmann::json& m) { m["settings"]["projection"] = "zero"; });
    CHECK(contains(patched_load_error(p), "its kind is low_rank, but the settings' projection 'zero' makes nothing "
                                          "that is saved"));
  }

  SUBCASE("scaled block-circulant") {
    fs::path p = fresh(Projection::scaled_sequential);
    set_shape(p, gate + ".output_scale", {160, 1});
    CHECK(contains(patched_load_error(p), "the projection replacing '" + gate + ".weight': tensor \"output_scale\" has "
                                          "shape [160, 1], but the 160x64 weight needs [160]"));

    p = fresh(Projection::scaled_sequential);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["block_size"] = "32"; });
    CHECK(contains(patched_load_error(p), "tensor \"parameters\" has shape [10, 4, 16], but its layout needs [5, 2, 32]"));

    p = fresh(Projection::scaled_sequential);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["layout"]["cols"] = "128"; });
    CHECK(contains(patched_load_error(p), "the layout is 160x128, but config.json makes '" + gate + ".weight' 160x64"));

    p = fresh(Projection::scaled_sequential);
    set_parameter(p, gate + ".input_scale", 7, std::numeric_limits<float>::quiet_NaN());
    CHECK(contains(patched_load_error(p), "the projection replacing '" + gate + ".weight', tensor \"input_scale\": "
                                          "value 7 is not finite (nan)"));

    p = fresh(Projection::scaled_sequential);
    set_parameter(p, gate + ".output_scale", 0, -std::numeric_limits<float>::infinity());
    CHECK(contains(patched_load_error(p), "tensor \"output_scale\": value 0 is not finite (-inf)"));

    p = fresh(Projection::scaled_sequential);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["tensors"].erase("input_scale"); });
    CHECK(contains(patched_load_error(p), "a scaled_block_circulant projection has the tensors \"parameters\", "
                                          "\"input_scale\", \"output_scale\"; this one has \"output_scale\", "
                                          "\"parameters\""));

    p = fresh(Projection::scaled_sequential);
    edit_metadata(p, [](nlohmann::json& m) { m["projections"][0]["kind"] = "block_circulant"; });
    CHECK(contains(patched_load_error(p), "a block_circulant projection has the tensors \"parameters\"; this one has "
                                          "\"input_scale\", \"output_scale\", \"parameters\""));

    p = fresh(Projection::scaled_sequential);
    edit_metadata(p, [](nlohmann::json& m) { m["settings"]["projection"] = "lowrank"; });
    CHECK(contains(patched_load_error(p), "its kind is scaled_block_circulant, but the settings' projection 'lowrank' "
                                          "makes low_rank"));
  }
}

TEST_CASE("saved patch: eval of a PATCHED model measures its saved patch against its base, without calibrating") {
  // Equality is tested here, not speed: one thread, because the evaluator's timing loops with a
  // team of two spinning at barriers take ten times longer on a loaded machine.
  const fftmat::test::ScopedThreadCount one_thread(1);
  TempDir dir;
  const fs::path model = fs::path(FFTMAT_SHIPPED_MODEL), patched_dir = dir.path() / "patched";
  write_file(dir.path() / "prompts.txt", "To be, or not to be, that is the question:\nWhat light through yonder window breaks?\n"
                                         "Now is the winter of our discontent\n");
  EvalSettings e{patched_dir, dir.path() / "prompts.txt", dir.path() / "prompts.txt",
                 fs::path(FFTMAT_LLAMA_EXAMPLE_DATA) / "heldout_shakespeare.txt", dir.path() / "cache"};
  e.max_len = 24;
  e.perplexity_windows = 1;
  e.heldout_chunks = 4;  // not all of the held-out text: equality needs only a few
  e.speed = BenchSettings{4, 2, 1, false};
  // One kind per subcase; the base as the teacher is checked once.
  Projection projection = Projection::calibrated;
  SUBCASE("calibrated (block_circulant)") {}
  SUBCASE("lowrank (low_rank)") { projection = Projection::low_rank; }
  SUBCASE("scaled-sequential (scaled_block_circulant)") { projection = Projection::scaled_sequential; }
  const PatchSettings s = patch_settings({0, 3}, 64, projection);
  const TokenInput input(model, false, load_llama_config(model / "config.json"));
  patch_and_save(model, s, patched_dir, BaseFiles::link, prompt_tokens(input, e.calibration, e.max_len));

  Evaluator evaluator(e, silent);
  REQUIRE(evaluator.saved_patch() != nullptr);
  if (projection == Projection::calibrated) {
    CHECK(evaluator.evaluate("original", PatchSettings{}).kl.mean == 0.0);  // the teacher is the base
  }
  const RowResult saved = evaluator.evaluate_saved_patch("saved");
  const RowResult recalibrated = evaluator.evaluate("recalibrated", s);  // the same fit, done again
  CHECK(saved.kl.mean > 1e-4);
  CHECK(saved.settings.projection == projection);
  CHECK(saved.settings.layers == s.layers);
  CHECK(saved.kl.mean == recalibrated.kl.mean);
  CHECK(saved.kl_all_positions.mean == recalibrated.kl_all_positions.mean);
  CHECK(saved.perplexity_student == recalibrated.perplexity_student);
  CHECK(saved.mlp_parameter_bytes == recalibrated.mlp_parameter_bytes);
}
