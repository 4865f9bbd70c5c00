// The forward pass against Hugging Face transformers' logits (tools/make_llama_reference.py), the
// KV-cache decode against the prefill, and the extension points: block-circulant MLP projections
// and the MLP observer.

#include <doctest/doctest.h>

#include <fftmat/projection.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "engine/model.hpp"
#include "engine/npy.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "test_helpers.hpp"

namespace {

struct Reference {
  std::vector<int> tokens;
  llama::FloatArray logits;  // T x vocab, from transformers
};

Reference load_reference(const std::string& name) {
  const auto dir = llama_test::reference_dir(name);
  const auto json = nlohmann::json::parse(llama_test::read_file(dir / "reference.json"));
  return Reference{json.at("tokens").get<std::vector<int>>(), llama::read_npy(dir / "logits.npy")};
}

/// max |a - b| / max |b|: the error relative to the logits' scale.
double relative_error(const float* a, const float* b, std::size_t count) {
  double difference = 0.0, scale = 0.0;
  for (std::size_t k = 0; k < count; ++k) {
    difference = std::max(difference, double(std::abs(a[k] - b[k])));
    scale = std::max(scale, double(std::abs(b[k])));
  }
  return difference / scale;
}

/// Every position's logits, fed in chunks of `chunk` tokens through one KV cache.
std::vector<float> chunked_logits(llama::Model& model, const std::vector<int>& tokens, int chunk) {
  const int T = static_cast<int>(tokens.size()), vocab = model.config().vocab_size;
  llama::KvCache cache = model.make_cache(T);
  std::vector<float> logits(static_cast<std::size_t>(T) * vocab);
  for (int first = 0; first < T; first += chunk) {
    const int count = std::min(chunk, T - first);
    model.forward(tokens.data() + first, count, cache, llama::Logits::all, logits.data() + std::size_t(first) * vocab);
  }
  CHECK(cache.length == T);
  return logits;
}

/// Float32 arithmetic in a different order than PyTorch's: a few ulps of the logits' scale.
constexpr double kTolerance = 1e-5;

}  // namespace

TEST_CASE("reference: prefill, chunked prefill and decode match transformers") {
  for (const char* name : {"gqa_f32", "tied_bf16", "sharded_f16"}) {
    CAPTURE(name);
    const Reference reference = load_reference(name);
    llama::Model model = llama::load_model(llama_test::reference_dir(name));
    const int T = static_cast<int>(reference.tokens.size()), vocab = model.config().vocab_size;
    REQUIRE(reference.logits.shape == std::vector<std::size_t>{std::size_t(T), std::size_t(vocab)});

    // chunk T: one prefill (sgemm path); 1: decode with the KV cache (matrix-vector path); 5: both
    // paths' mix, with chunks that start in the middle of the cache.
    for (const int chunk : {T, 1, 5}) {
      CAPTURE(chunk);
      const std::vector<float> logits = chunked_logits(model, reference.tokens, chunk);
      const double error = relative_error(logits.data(), reference.logits.values.data(), logits.size());
      MESSAGE(std::string(name), " chunk ", chunk, ": max relative error vs transformers ", error);
      CHECK(error < kTolerance);
    }

    llama::KvCache cache = model.make_cache(T);
    const std::vector<float> last = model.forward(reference.tokens, cache, llama::Logits::last);
    CHECK(relative_error(last.data(), &reference.logits.values[std::size_t(T - 1) * vocab], std::size_t(vocab)) <
          kTolerance);
  }
}

TEST_CASE("model: context overflow and bad token ids are errors") {
  llama::Model model = llama::load_model(llama_test::reference_dir("gqa_f32"));
  llama::KvCache cache = model.make_cache(4);
  CHECK(llama_test::error_of([&] { model.forward({1, 2, 3, 4, 5}, cache, llama::Logits::last); }).find("context overflow") !=
        std::string::npos);
  CHECK(llama_test::error_of([&] { model.forward({1, 320}, cache, llama::Logits::last); }).find("token id 320") !=
        std::string::npos);
  CHECK(llama_test::error_of([&] { model.forward({-1}, cache, llama::Logits::last); }).find("token id -1") !=
        std::string::npos);
  CHECK(cache.length == 0);
  CHECK(llama_test::error_of([&] { model.make_cache(100000); }).find("max_position_embeddings") != std::string::npos);
}

namespace {

/// Records every MLP's activations, copied.
struct Recorder : llama::MlpObserver {
  struct Record {
    int layer, tokens, first_position;
    std::vector<float> input, gate, up, hidden, output;
  };
  int hidden_size, intermediate_size;
  std::vector<Record> records;
  Recorder(int hidden, int intermediate) : hidden_size(hidden), intermediate_size(intermediate) {}
  void observe(const llama::MlpActivations& a) override {
    const std::size_t d = std::size_t(a.tokens) * hidden_size, n = std::size_t(a.tokens) * intermediate_size;
    records.push_back({a.layer, a.tokens, a.first_position, {a.input, a.input + d}, {a.gate, a.gate + n},
                       {a.up, a.up + n}, {a.hidden, a.hidden + n}, {a.output, a.output + d}});
  }
};

}  // namespace

TEST_CASE("extension: the MLP observer sees consistent activations of every layer") {
  llama::Model model = llama::load_model(llama_test::reference_dir("gqa_f32"));
  const llama::LlamaConfig& c = model.config();
  Recorder recorder(c.hidden_size, c.intermediate_size);
  model.mlp_observer = &recorder;
  llama::KvCache cache = model.make_cache(8);
  model.forward({1, 17, 42, 99, 5, 6}, cache, llama::Logits::last);
  model.forward({7}, cache, llama::Logits::last);
  REQUIRE(recorder.records.size() == std::size_t(2 * c.num_hidden_layers));
  const auto& decode = recorder.records.back();
  CHECK(decode.layer == c.num_hidden_layers - 1);
  CHECK(decode.tokens == 1);
  CHECK(decode.first_position == 6);

  // Re-running the recorded MLP input through the layer's parts reproduces the recorded values.
  const auto& r = recorder.records[1];
  const llama::Mlp& mlp = model.layers[std::size_t(r.layer)].mlp;
  llama::MlpBuffers buffers;
  std::vector<float> output(r.output.size());
  mlp.forward(r.input.data(), r.tokens, buffers, output.data());
  CHECK(relative_error(output.data(), r.output.data(), output.size()) < 1e-6);
  for (std::size_t k = 0; k < r.hidden.size(); ++k) {
    const float g = r.gate[k];
    CHECK(r.hidden[k] == doctest::Approx(g / (1.0f + std::exp(-g)) * r.up[k]).epsilon(1e-6));
  }
}

TEST_CASE("extension: run_layers stops after the requested layers with the activations of a full pass") {
  llama::Model model = llama::load_model(llama_test::reference_dir("gqa_f32"));
  const llama::LlamaConfig& c = model.config();
  REQUIRE(c.num_hidden_layers >= 2);
  const std::vector<int> tokens = {1, 17, 42, 99, 5};
  Recorder full(c.hidden_size, c.intermediate_size), partial(c.hidden_size, c.intermediate_size);
  model.mlp_observer = &full;
  llama::KvCache full_cache = model.make_cache(8);
  model.forward(tokens, full_cache, llama::Logits::last);
  model.mlp_observer = &partial;
  llama::KvCache partial_cache = model.make_cache(8);
  const int layer_count = c.num_hidden_layers - 1;
  model.run_layers(tokens, partial_cache, layer_count);
  REQUIRE(partial.records.size() == std::size_t(layer_count));
  for (int l = 0; l < layer_count; ++l) {
    CAPTURE(l);
    const auto& a = full.records[std::size_t(l)];
    const auto& b = partial.records[std::size_t(l)];
    CHECK(b.layer == l);
    CHECK(a.input == b.input);  // the same arithmetic in the same order: bitwise equal
    CHECK(a.output == b.output);
  }
  CHECK_THROWS_WITH_AS(model.run_layers(tokens, partial_cache, c.num_hidden_layers + 1),
                       doctest::Contains("layers requested"), llama::error);
}

TEST_CASE("extension: block-circulant MLP projections (b = 1 is dense: the logits must not change)") {
  const Reference reference = load_reference("sharded_f16");
  llama::Model model = llama::load_model(llama_test::reference_dir("sharded_f16"));
  // Patch the first layer's MLP: gate and up share one input FFT, down goes alone.
  llama::Mlp& mlp = model.layers[0].mlp;
  auto patch = [](std::unique_ptr<llama::Linear>& projection, Eigen::Index block_size) {
    const auto& dense = dynamic_cast<const llama::DenseLinear&>(*projection);
    projection = std::make_unique<llama::BlockCirculantLinear>(fftmat::project_frobenius(dense.to_float(), block_size));
  };
  patch(mlp.gate, 1);
  patch(mlp.up, 1);
  patch(mlp.down, 1);
  REQUIRE(mlp.gate->block_circulant() != nullptr);
  // b = 1: one real bin, so the packed spectra the product streams are 176 x 64 floats (22 whole
  // panels of 8 rows), half the bytes of the 176 x 64 complex spectra.
  CHECK(mlp.gate->parameter_bytes() == std::size_t(176 * 64) * sizeof(float));

  const int T = static_cast<int>(reference.tokens.size());
  for (const int chunk : {T, 1}) {
    const std::vector<float> logits = chunked_logits(model, reference.tokens, chunk);
    CHECK(relative_error(logits.data(), reference.logits.values.data(), logits.size()) < kTolerance);
  }

  // A real block size changes the model; its MLP must still agree with the dense product of the
  // same block-circulant matrices.
  llama::Model patched = llama::load_model(llama_test::reference_dir("sharded_f16"));
  llama::Mlp& mlp16 = patched.layers[1].mlp;
  patch(mlp16.gate, 16);
  patch(mlp16.up, 16);
  patch(mlp16.down, 16);
  const Eigen::MatrixXf X = Eigen::MatrixXf::Random(64, 3);  // 3 tokens, column-major = row-major 3 x 64
  llama::MlpBuffers buffers;
  Eigen::MatrixXf Y(64, 3);
  mlp16.forward(X.data(), 3, buffers, Y.data());
  const Eigen::MatrixXf G = mlp16.gate->block_circulant()->to_dense() * X;
  const Eigen::MatrixXf U = mlp16.up->block_circulant()->to_dense() * X;
  const Eigen::MatrixXf H = (G.array() / (1.0f + (-G.array()).exp()) * U.array()).matrix();
  const Eigen::MatrixXf expected = mlp16.down->block_circulant()->to_dense() * H;
  CHECK(relative_error(Y.data(), expected.data(), std::size_t(Y.size())) < 1e-5);
}
