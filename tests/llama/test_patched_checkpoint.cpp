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
#include <limits>
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

/// Patches the model of `base` and saves it as `out`; returns the patched model (in memory).
Model patch_and_save(const fs::path& base, const PatchSettings& s, const fs::path& out, BaseFiles how,
                     const std::vector<std::vector<int>>& calibration = {}) {
  const auto checkpoint = std::make_shared<const Checkpoint>(base);
  Model teacher(checkpoint), student(checkpoint);
  patch_model(student, teacher, s, calibration.empty() ? calibration_ids(teacher.config().vocab_size) : calibration,
              silent);
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
                 "'model.layers.0.mlp.gate_proj.weight' is not a projection that can be saved (kinds: block_circulant)"));
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
  edit_metadata(p, [](nlohmann::json& m) { m["projections"][1]["kind"] = "low_rank"; });
  CHECK(contains(patched_load_error(p), "projection kind 'low_rank' is not supported (known: block_circulant)"));

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
  e.speed = BenchSettings{4, 2, 1, false};
  const PatchSettings s = patch_settings({0, 3}, 64, Projection::calibrated);
  const TokenInput input(model, false, load_llama_config(model / "config.json"));
  patch_and_save(model, s, patched_dir, BaseFiles::link, prompt_tokens(input, e.calibration, e.max_len));

  Evaluator evaluator(e, silent);
  REQUIRE(evaluator.saved_patch() != nullptr);
  const RowResult original = evaluator.evaluate("original", PatchSettings{});
  const RowResult saved = evaluator.evaluate_saved_patch("saved");
  const RowResult recalibrated = evaluator.evaluate("recalibrated", s);  // the same fit, done again
  CHECK(original.kl.mean == 0.0);  // the teacher is the base
  CHECK(saved.kl.mean > 1e-4);
  CHECK(saved.settings.projection == Projection::calibrated);
  CHECK(saved.settings.layers == s.layers);
  CHECK(saved.kl.mean == recalibrated.kl.mean);
  CHECK(saved.kl_all_positions.mean == recalibrated.kl_all_positions.mean);
  CHECK(saved.perplexity_student == recalibrated.perplexity_student);
  CHECK(saved.mlp_parameter_bytes == recalibrated.mlp_parameter_bytes);
}
