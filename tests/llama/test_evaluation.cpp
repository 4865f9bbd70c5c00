// Patching, metrics and the sweep's grid (examples/llama: patching, evaluation, report).
#include <doctest/doctest.h>

#include <cmath>

#include "../reference.hpp"
#include "evaluation/evaluation.hpp"
#include "evaluation/patching.hpp"
#include "evaluation/report.hpp"
#include "test_helpers.hpp"

using namespace llama;
using llama_test::error_of;

namespace {

LlamaConfig config_of(int layers, int hidden, int intermediate) {
  LlamaConfig c;
  c.num_hidden_layers = layers;
  c.hidden_size = hidden;
  c.intermediate_size = intermediate;
  return c;
}

// Wrapped-diagonal averages of W (out x in): the tests' reference of the Frobenius projection.
Eigen::VectorXd frobenius_reference(const Eigen::MatrixXf& W, int b) {
  return fftmat::test::wrapped_diagonal_averages(W.cast<double>(), b);
}

// KL(teacher || student) of the last position, averaged over a few fixed prompts.
double mean_last_kl(Model& teacher, Model& student, const std::vector<std::vector<int>>& prompts) {
  double total = 0;
  const int vocab = teacher.config().vocab_size;
  for (const auto& ids : prompts) {
    KvCache a = teacher.make_cache(int(ids.size())), b = student.make_cache(int(ids.size()));
    const std::vector<float> t = teacher.forward(ids, a, Logits::all), s = student.forward(ids, b, Logits::all);
    total += compare_logits(t.data(), s.data(), int(ids.size()), vocab).kl;
  }
  return total / double(prompts.size());
}

}  // namespace

TEST_CASE("layer lists: ranges, lists, all, and errors that name the problem") {
  CHECK(parse_layers("0", 8) == std::vector<int>{0});
  CHECK(parse_layers("0-3", 8) == std::vector<int>{0, 1, 2, 3});
  CHECK(parse_layers("5,0,9", 10) == std::vector<int>{0, 5, 9});
  CHECK(parse_layers("0-1,3,1", 8) == std::vector<int>{0, 1, 3});
  CHECK(parse_layers("all", 3) == std::vector<int>{0, 1, 2});
  CHECK(parse_layers("none", 3).empty());
  CHECK(format_layers({0, 1, 2, 3, 5, 7, 8}) == "0-3,5,7-8");
  CHECK(format_layers({}) == "none");
  CHECK(error_of([] { parse_layers("8", 8); }) == "layer 8 is out of range: the model has 8 layers (0..7)");
  CHECK(error_of([] { parse_layers("3-1", 8); }) == "bad layer range '3-1' in '3-1'");
  CHECK(error_of([] { parse_layers("x", 8); }).find("bad layer list 'x'") == 0);
  CHECK(error_of([] { parse_layers("-1", 8); }).find("bad layer list") == 0);
}

TEST_CASE("patch settings are checked against the model before any work") {
  const LlamaConfig c = config_of(8, 256, 768);
  PatchSettings s;
  s.projection = Projection::frobenius;
  s.layers = {0};
  s.block_size = 96;
  CHECK(error_of([&] { check_patch_settings(s, c); }) == "block size 96 does not divide hidden_size 256");
  s.block_size = 512;
  CHECK(error_of([&] { check_patch_settings(s, config_of(8, 512, 768)); }) ==
        "block size 512 does not divide intermediate_size 768");
  s.block_size = 64;
  s.layers = {9};
  CHECK(error_of([&] { check_patch_settings(s, c); }) == "layer 9 is out of range: the model has 8 layers");
  s.layers = {};
  CHECK(error_of([&] { check_patch_settings(s, c); }) == "projection 'frobenius' needs --layers");
  CHECK(error_of([] { parse_projection("fft"); }).find("unknown projection 'fft'") == 0);
  s.layers = {0, 7};
  CHECK(error_of([&] { check_patch_settings(s, c); }).empty());
}

TEST_CASE("the default grid holds the study's eleven rows first, and bad grids name the line") {
  const std::vector<GridRow> grid = parse_grid(default_grid_text(), "default", config_of(8, 256, 768));
  REQUIRE(grid.size() >= 11);
  CHECK(grid[0].settings.projection == Projection::dense);
  CHECK(grid[1].settings.projection == Projection::frobenius);
  CHECK(grid[1].settings.block_size == 64);
  CHECK(grid[10].settings.layers == parse_layers("0-7", 8));
  CHECK(grid[10].settings.projection == Projection::calibrated);
  CHECK(grid[10].settings.block_size == 128);
  CHECK(error_of([] { parse_grid("0 64 frobenius ok\n0-3 96 frobenius bad\n", "g.txt", config_of(8, 256, 768)); }) ==
        "g.txt line 2: block size 96 does not divide hidden_size 256");
  CHECK(error_of([] { parse_grid("0 64\n", "g.txt", config_of(8, 256, 768)); }) ==
        "g.txt line 1: expected LAYERS BLOCK PROJECTION NAME");
  CHECK(error_of([] { parse_grid("# nothing\n", "g.txt", config_of(8, 256, 768)); }) == "g.txt has no rows");
}

TEST_CASE("logit metrics against values computed by hand") {
  // Two positions, vocabulary of 7. Position 1 (the last): teacher p = softmax(0, ..., 0, log 3)...
  const float log3 = std::log(3.0f);
  const std::vector<float> teacher = {1, 2, 3, 4, 5, 6, 7, /* last: */ 0, 0, 0, 0, 0, 0, 0};
  const std::vector<float> student = {7, 6, 5, 4, 3, 2, 1, /* last: */ log3, 0, 0, 0, 0, 0, 0};
  const PromptMetrics m = compare_logits(teacher.data(), student.data(), 2, 7);
  // KL(uniform_7 || q) with q = (3, 1, 1, 1, 1, 1, 1) / 9: sum_v (1/7) log((1/7) / q_v).
  const double kl_last = (1.0 / 7) * std::log((1.0 / 7) / (3.0 / 9)) + (6.0 / 7) * std::log((1.0 / 7) / (1.0 / 9));
  CHECK(m.kl == doctest::Approx(kl_last).epsilon(1e-6));  // float logits
  CHECK(m.cosine == doctest::Approx(0.0));  // the teacher's last logits are all zero: no direction
  CHECK(m.top1 == 1.0);                     // ties broken towards the lower id on both sides: token 0
  CHECK(m.top5_overlap == doctest::Approx(1.0));  // top-5 = {0..4} on both sides (ties by id)
  CHECK(m.top1_all_positions == doctest::Approx(0.5));  // position 0: argmax 6 against 0
  const PromptMetrics same = compare_logits(teacher.data(), teacher.data(), 2, 7);
  CHECK(same.kl == doctest::Approx(0.0));
  CHECK(same.kl_all_positions == doctest::Approx(0.0));
  const std::vector<float> a = {1, 2, 3}, b = {2, 4, 6.5f};
  const double cosine = (2 + 8 + 19.5) / std::sqrt(14.0 * (4 + 16 + 42.25));
  CHECK(compare_logits(a.data(), b.data(), 1, 3).cosine == doctest::Approx(cosine).epsilon(1e-9));
  const MeanWithError stat = mean_with_error({1, 2, 3, 4});
  CHECK(stat.mean == doctest::Approx(2.5));
  CHECK(stat.standard_error == doctest::Approx(std::sqrt(5.0 / 3.0) / 2.0));
}

TEST_CASE("patching a reference checkpoint: Frobenius weights, zero MLPs, calibrated beats Frobenius") {
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint);
  const int b = 16;  // divides hidden 64 and intermediate 160
  const std::vector<std::vector<int>> prompts = {{1, 5, 9, 13, 40, 2, 7, 7}, {1, 100, 3, 250, 17, 18, 19},
                                                 {1, 42, 43, 44, 45, 46, 47, 48, 49, 50}};
  const auto quiet = [](const std::string&) {};

  Model frobenius(checkpoint);
  PatchSettings s;
  s.layers = {0, 1};
  s.block_size = b;
  s.projection = Projection::frobenius;
  patch_model(frobenius, teacher, s, {}, quiet);
  const auto* gate = dynamic_cast<const DenseLinear*>(teacher.layers[1].mlp.gate.get());
  REQUIRE(gate != nullptr);
  const fftmat::BlockCirculant<float>* patched = frobenius.layers[1].mlp.gate->block_circulant();
  REQUIRE(patched != nullptr);
  const Eigen::VectorXd expected = frobenius_reference(gate->to_float(), b);
  CHECK((patched->parameters().cast<double>() - expected).norm() < 1e-5 * expected.norm());
  CHECK(error_of([&] { patch_model(frobenius, teacher, s, {}, quiet); }) == "layer 0 gate_proj is already patched");

  // bfloat16 spectra: the same parameters; gate and up (160 x 64, p = 10) read bfloat16, down
  // (64 x 160, p = 4: no packed kernels) keeps float; the logits move, but only by rounding.
  Model rounded(checkpoint);
  s.spectra = fftmat::SpectrumPrecision::bfloat16;
  patch_model(rounded, teacher, s, {}, quiet);
  s.spectra = fftmat::SpectrumPrecision::full;
  const fftmat::BlockCirculant<float>* rounded_gate = rounded.layers[1].mlp.gate->block_circulant();
  REQUIRE(rounded_gate != nullptr);
  CHECK(rounded_gate->spectrum_precision() == fftmat::SpectrumPrecision::bfloat16);
  CHECK(rounded_gate->parameters() == patched->parameters());
  CHECK(rounded.layers[1].mlp.down->block_circulant()->spectrum_precision() == fftmat::SpectrumPrecision::full);
  const double kl_rounding = mean_last_kl(frobenius, rounded, prompts);
  MESSAGE("mean last-token KL of bfloat16 against float spectra (Frobenius, layers 0-1): ", kl_rounding);
  CHECK(kl_rounding > 0.0);
  CHECK(kl_rounding < 1e-4);

  Model zero(checkpoint);
  s.projection = Projection::zero;
  patch_model(zero, teacher, s, {}, quiet);
  struct MlpOutputs : MlpObserver {
    double largest = 0;
    void observe(const MlpActivations& a) override {
      for (int k = 0; k < a.tokens * 64; ++k) largest = std::max(largest, double(std::abs(a.output[k])));
    }
  } outputs;
  zero.mlp_observer = &outputs;
  KvCache cache = zero.make_cache(8);
  zero.forward(prompts[0], cache, Logits::last);
  CHECK(outputs.largest == 0.0);

  Model calibrated(checkpoint), sequential(checkpoint);
  s.projection = Projection::calibrated;
  patch_model(calibrated, teacher, s, prompts, quiet);
  s.projection = Projection::sequential;
  patch_model(sequential, teacher, s, prompts, quiet);
  const double kl_frobenius = mean_last_kl(teacher, frobenius, prompts);
  const double kl_calibrated = mean_last_kl(teacher, calibrated, prompts);
  const double kl_sequential = mean_last_kl(teacher, sequential, prompts);
  MESSAGE("mean last-token KL on the calibration prompts: frobenius ", kl_frobenius, ", calibrated ", kl_calibrated,
          ", sequential ", kl_sequential);
  CHECK(kl_calibrated < kl_frobenius);
  CHECK(kl_sequential < kl_frobenius);
  CHECK(error_of([&] { patch_model(calibrated, teacher, s, {}, quiet); }) ==
        "projection 'sequential' needs calibration prompts");
}

TEST_CASE("scaled-sequential: parsed by name, needs calibration prompts, beats the Frobenius projection") {
  CHECK(parse_projection("scaled-sequential") == Projection::scaled_sequential);
  CHECK(std::string(projection_name(Projection::scaled_sequential)) == "scaled-sequential");
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), frobenius(checkpoint), scaled(checkpoint);
  const std::vector<std::vector<int>> prompts = {{1, 5, 9, 13, 40, 2, 7, 7}, {1, 100, 3, 250, 17, 18, 19},
                                                 {1, 42, 43, 44, 45, 46, 47, 48, 49, 50}};
  const auto quiet = [](const std::string&) {};
  PatchSettings s;
  s.layers = {0, 1};
  s.block_size = 16;
  s.projection = Projection::frobenius;
  patch_model(frobenius, teacher, s, {}, quiet);
  s.projection = Projection::scaled_sequential;
  CHECK(error_of([&] { patch_model(scaled, teacher, s, {}, quiet); }) ==
        "projection 'scaled-sequential' needs calibration prompts");
  patch_model(scaled, teacher, s, prompts, quiet);
  CHECK(scaled.layers[1].mlp.gate->block_circulant() == nullptr);  // its own input transform
  // What its product reads: the core's packed spectra -- p = 10 block rows padded to two panels of
  // 8, q = 4, bins 0 and 8 real (one plane), bins 1..7 complex (two) -- and the two scales.
  CHECK(scaled.layers[1].mlp.gate->parameter_bytes() ==
        (16 * 4 * (2 * 1 + 7 * 2)) * sizeof(float) + (160 + 64) * sizeof(float));
  const double kl_frobenius = mean_last_kl(teacher, frobenius, prompts);
  const double kl_scaled = mean_last_kl(teacher, scaled, prompts);
  MESSAGE("mean last-token KL on the calibration prompts: frobenius ", kl_frobenius, ", scaled-sequential ", kl_scaled);
  CHECK(kl_scaled < 0.5 * kl_frobenius);
}

TEST_CASE("bc-lowrank-sequential: parsed by name, its budget split checked, C + U V bytes, beats Frobenius") {
  CHECK(parse_projection("bc-lowrank-sequential") == Projection::bc_low_rank_sequential);
  CHECK(std::string(projection_name(Projection::bc_low_rank_sequential)) == "bc-lowrank-sequential");
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), frobenius(checkpoint), joint(checkpoint);
  const std::vector<std::vector<int>> prompts = {{1, 5, 9, 13, 40, 2, 7, 7}, {1, 100, 3, 250, 17, 18, 19},
                                                 {1, 42, 43, 44, 45, 46, 47, 48, 49, 50}};
  const auto quiet = [](const std::string&) {};
  PatchSettings s;
  s.layers = {0, 1};
  s.projection = Projection::bc_low_rank_sequential;
  s.block_size = 32;  // C would need block size 64, which does not divide the 160 intermediate channels
  CHECK(error_of([&] { patch_model(joint, teacher, s, prompts, quiet); }) ==
        "projection 'bc-lowrank-sequential' for the 160x64 MLP projections: the budget of block size 32 cannot be "
        "split: its block-circulant half has block size 64, which does not divide rows 160");
  s.block_size = 16;
  s.projection = Projection::frobenius;
  patch_model(frobenius, teacher, s, {}, quiet);
  s.projection = Projection::bc_low_rank_sequential;
  CHECK(error_of([&] { patch_model(joint, teacher, s, {}, quiet); }) ==
        "projection 'bc-lowrank-sequential' needs calibration prompts");
  patch_model(joint, teacher, s, prompts, quiet);
  CHECK(joint.layers[1].mlp.gate->block_circulant() == nullptr);  // the low-rank term needs its own input
  // C of block size 32 (5 x 2 blocks, 17 bins, unpacked: fewer than 8 block rows) and rank
  // floor(160 * 64 / (32 * 224)) = 1.
  CHECK(joint.layers[1].mlp.gate->parameter_bytes() ==
        (17 * (160 / 32) * (64 / 32)) * sizeof(std::complex<float>) + 1 * (160 + 64) * sizeof(float));
  CHECK(joint.layers[1].mlp.down->parameter_bytes() ==
        (17 * (64 / 32) * (160 / 32)) * sizeof(std::complex<float>) + 1 * (160 + 64) * sizeof(float));
  const double kl_frobenius = mean_last_kl(teacher, frobenius, prompts);
  const double kl_joint = mean_last_kl(teacher, joint, prompts);
  MESSAGE("mean last-token KL on the calibration prompts: frobenius ", kl_frobenius, ", bc-lowrank-sequential ",
          kl_joint);
  CHECK(kl_joint < 0.5 * kl_frobenius);
}
