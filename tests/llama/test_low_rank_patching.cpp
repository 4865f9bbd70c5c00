// The low-rank and the sequential block-circulant projections of examples/llama/patching against
// float64 references of their definitions (docs/calibration.md), computed from activations the test
// captures.
#include <doctest/doctest.h>

#include <map>

#include "../low_rank_reference.hpp"
#include "evaluation/patching.hpp"
#include "test_helpers.hpp"

using namespace llama;
using llama_test::error_of;

namespace {

using Activations = std::map<int, Eigen::MatrixXd>;  // per layer, width x (all positions of all prompts)

constexpr int kHidden = 64, kIntermediate = 160;  // tests/data/llama/gqa_f32

/// Every MLP's input, hidden silu(g)*u, gate, up and output over all prompts, in double.
struct Capture final : MlpObserver {
  Activations input, hidden, gate, up, output;
  void observe(const MlpActivations& a) override {
    append(input[a.layer], a.input, kHidden, a.tokens);
    append(hidden[a.layer], a.hidden, kIntermediate, a.tokens);
    append(gate[a.layer], a.gate, kIntermediate, a.tokens);
    append(up[a.layer], a.up, kIntermediate, a.tokens);
    append(output[a.layer], a.output, kHidden, a.tokens);
  }
  static void append(Eigen::MatrixXd& all, const float* values, int width, int tokens) {
    const Eigen::Map<const Eigen::MatrixXf> batch(values, width, tokens);
    Eigen::MatrixXd grown(width, all.cols() + tokens);
    if (all.cols() > 0) grown.leftCols(all.cols()) = all;  // the first batch starts from 0 x 0
    grown.rightCols(tokens) = batch.cast<double>();
    all = std::move(grown);
  }
};

Capture capture(Model& model, const std::vector<std::vector<int>>& prompts) {
  Capture c;
  model.mlp_observer = &c;
  for (const auto& ids : prompts) {
    KvCache cache = model.make_cache(int(ids.size()));
    model.forward(ids, cache, Logits::last);
  }
  model.mlp_observer = nullptr;
  return c;
}

/// The matrix a Linear applies, column by column from the identity.
Eigen::MatrixXd matrix_of(const Linear& linear) {
  const Eigen::MatrixXf identity = Eigen::MatrixXf::Identity(linear.in(), linear.in());
  Eigen::MatrixXf columns(linear.out(), linear.in());
  linear.forward(identity.data(), columns.data(), linear.in());
  return columns.cast<double>();
}

Eigen::MatrixXd weight(const Model& model, int layer, const std::unique_ptr<Linear> Mlp::*projection) {
  const auto* dense = dynamic_cast<const DenseLinear*>((model.layers[layer].mlp.*projection).get());
  REQUIRE(dense != nullptr);
  return dense->to_float().cast<double>();
}

// The rank-r ridge fit of targets Y on inputs X: ||(B - L) H^(1/2)||^2 with H = X X^T + lambda I and
// B = Y X^T H^-1 (docs/calibration.md).
Eigen::MatrixXd ridge_reference(const Eigen::MatrixXd& X, const Eigen::MatrixXd& Y, double damping, Eigen::Index rank) {
  const Eigen::MatrixXd H = fftmat::test::damped(X * X.transpose(), damping);
  const Eigen::MatrixXd B = H.ldlt().solve(X * Y.transpose()).transpose();
  return fftmat::test::whitened_truncation(B, H, rank);
}

const std::vector<std::vector<int>> kPrompts = {{1, 5, 9, 13, 40, 2, 7, 7}, {1, 100, 3, 250, 17, 18, 19},
                                                {1, 42, 43, 44, 45, 46, 47, 48, 49, 50}};
const auto kQuiet = [](const std::string&) {};

}  // namespace

TEST_CASE("lowrank patching: each projection is [W S]_r S^-1 on the teacher's inputs (float64 reference)") {
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), student(checkpoint);
  PatchSettings s;
  s.layers = {0, 1};
  s.block_size = 16;  // rank floor(160 * 64 / (16 * 224)) = 2
  s.projection = Projection::low_rank;
  s.damping = 0.05;
  patch_model(student, teacher, s, kPrompts, kQuiet);
  const Capture taught = capture(teacher, kPrompts);
  for (const int l : s.layers) {
    CAPTURE(l);
    const Mlp& mlp = student.layers[l].mlp;
    const Eigen::MatrixXd H_in = fftmat::test::damped(taught.input.at(l) * taught.input.at(l).transpose(), s.damping);
    const Eigen::MatrixXd H_hidden =
        fftmat::test::damped(taught.hidden.at(l) * taught.hidden.at(l).transpose(), s.damping);
    const Eigen::MatrixXd gate = fftmat::test::whitened_truncation(weight(teacher, l, &Mlp::gate), H_in, 2);
    const Eigen::MatrixXd up = fftmat::test::whitened_truncation(weight(teacher, l, &Mlp::up), H_in, 2);
    const Eigen::MatrixXd down = fftmat::test::whitened_truncation(weight(teacher, l, &Mlp::down), H_hidden, 2);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.gate), gate) < 1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.up), up) < 1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.down), down) < 1e-4);
    CHECK(mlp.gate->parameter_bytes() == 2 * (160 + 64) * sizeof(float));
  }
}

TEST_CASE("lowrank-sequential patching: ridge fits on the student's inputs against the teacher's outputs") {
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), student(checkpoint);
  PatchSettings s;
  s.layers = {0, 1};
  s.block_size = 8;  // rank floor(160 * 64 / (8 * 224)) = 5
  s.projection = Projection::low_rank_sequential;
  s.damping = 0.02;
  patch_model(student, teacher, s, kPrompts, kQuiet);
  // Layer l's inputs in the patched student are what its fit saw: only layers < l change them. Its
  // hidden silu(g)*u comes from its own patched gate and up, as down's fit saw it.
  const Capture taught = capture(teacher, kPrompts), learnt = capture(student, kPrompts);
  for (const int l : s.layers) {
    CAPTURE(l);
    const Mlp& mlp = student.layers[l].mlp;
    const Eigen::MatrixXd& X = learnt.input.at(l);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.gate), ridge_reference(X, taught.gate.at(l), s.damping, 5)) <
          1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.up), ridge_reference(X, taught.up.at(l), s.damping, 5)) < 1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.down),
                                       ridge_reference(learnt.hidden.at(l), taught.output.at(l), s.damping, 5)) < 1e-4);
  }
  // Layer 1's inputs differ from the teacher's: the fit really was on the student's.
  CHECK(fftmat::test::relative_error(learnt.input.at(1), taught.input.at(1)) > 1e-3);
}

TEST_CASE("sequential patching: least-squares block-circulant fits on the student's inputs (float64 reference)") {
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), student(checkpoint);
  PatchSettings s;
  s.layers = {0, 1};
  s.block_size = 16;
  s.projection = Projection::sequential;
  s.damping = 0;  // the plain least-squares fit, which the reference computes over all parameters
  patch_model(student, teacher, s, kPrompts, kQuiet);
  // As for lowrank-sequential: layer l's inputs in the patched student are what its gate and up were
  // fitted on, its hidden silu(g)*u what down was fitted on; the targets are the teacher's.
  const Capture taught = capture(teacher, kPrompts), learnt = capture(student, kPrompts);
  const auto fit = [&](const Eigen::MatrixXd& X, const Eigen::MatrixXd& Y) {
    return fftmat::test::dense_block_circulant(Y.rows(), X.rows(), s.block_size,
                                               fftmat::test::block_circulant_least_squares(X, Y, s.block_size));
  };
  for (const int l : s.layers) {
    CAPTURE(l);
    const Mlp& mlp = student.layers[l].mlp;
    const Eigen::MatrixXd& X = learnt.input.at(l);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.gate), fit(X, taught.gate.at(l))) < 1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.up), fit(X, taught.up.at(l))) < 1e-4);
    CHECK(fftmat::test::relative_error(matrix_of(*mlp.down), fit(learnt.hidden.at(l), taught.output.at(l))) < 1e-4);
  }
}

TEST_CASE("low-rank settings are checked before any work") {
  LlamaConfig c;
  c.num_hidden_layers = 2;
  c.hidden_size = 64;
  c.intermediate_size = 160;
  PatchSettings s;
  s.layers = {0};
  s.projection = parse_projection("lowrank");
  CHECK(s.projection == Projection::low_rank);
  CHECK(parse_projection("lowrank-sequential") == Projection::low_rank_sequential);
  CHECK(std::string(projection_name(Projection::low_rank_sequential)) == "lowrank-sequential");
  s.block_size = 24;  // the budget of a block size that does not divide the sizes is still a rank
  CHECK_NOTHROW(check_patch_settings(s, c));
  s.block_size = 64;  // 160 * 64 / 64 = 160 parameters, fewer than one rank-1 term's 224
  CHECK(llama_test::contains(error_of([&] { check_patch_settings(s, c); }), "has rank 0"));
  s.block_size = 16;
  s.spectra = fftmat::SpectrumPrecision::bfloat16;
  CHECK(llama_test::contains(error_of([&] { check_patch_settings(s, c); }), "has no spectra"));
  s.spectra = fftmat::SpectrumPrecision::full;
  auto checkpoint = std::make_shared<const Checkpoint>(llama_test::reference_dir("gqa_f32"));
  Model teacher(checkpoint), student(checkpoint);
  CHECK(error_of([&] { patch_model(student, teacher, s, {}, kQuiet); }) ==
        "projection 'lowrank' needs calibration prompts");
}
