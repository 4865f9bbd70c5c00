#include "model.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include <fftmat/threading.hpp>

#include "error.hpp"
#include "kernels.hpp"

namespace llama {
namespace {

/// y[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight for each of T rows of `dim` floats. The sum
/// of squares is accumulated in double, so the result is the float rounding of the exact norm.
void rms_norm(const float* x, const std::vector<float>& weight, float eps, int T, int dim, float* y) {
  for (int t = 0; t < T; ++t) {
    const float* row = x + static_cast<std::size_t>(t) * dim;
    double sum_of_squares = 0.0;
    for (int k = 0; k < dim; ++k) sum_of_squares += double(row[k]) * row[k];
    const float variance = static_cast<float>(sum_of_squares / dim);
    const float scale = 1.0f / std::sqrt(variance + eps);
    float* out = y + static_cast<std::size_t>(t) * dim;
    for (int k = 0; k < dim; ++k) out[k] = weight[k] * (row[k] * scale);
  }
}

/// Rotary embedding in Hugging Face's rotate_half convention: within each head of `head_dim`
/// values, element i pairs with element i + head_dim/2 (HF checkpoints permute q/k rows for it).
/// `rope` holds each token's cos (first half) and sin (second half) of its angles.
void apply_rotary(float* rows, int T, int heads, int head_dim, const std::vector<float>& rope) {
  const int half = head_dim / 2;
  for (int t = 0; t < T; ++t) {
    const float* cosine = rope.data() + static_cast<std::size_t>(t) * head_dim;
    const float* sine = cosine + half;
    for (int h = 0; h < heads; ++h) {
      float* v = rows + (static_cast<std::size_t>(t) * heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float x0 = v[i], x1 = v[i + half];
        v[i] = x0 * cosine[i] - x1 * sine[i];
        v[i + half] = x1 * cosine[i] + x0 * sine[i];
      }
    }
  }
}

std::vector<float> read_vector(const Checkpoint& checkpoint, const TensorSpec& spec) {
  const TensorView view = checkpoint.tensor(spec);
  std::vector<float> values(static_cast<std::size_t>(spec.shape.at(0)));
  to_float(view.data, view.dtype, 0, values.size(), values.data());
  return values;
}

template <class Vector>
void grow(Vector& buffer, std::size_t size) {
  if (buffer.size() < size) buffer.resize(size);
}

}  // namespace

LayerSpecs layer_specs(const LlamaConfig& c, int layer) {
  const std::string prefix = "model.layers." + std::to_string(layer) + ".";
  const std::int64_t hidden = c.hidden_size, inter = c.intermediate_size, q_dim = c.q_dim(), kv_dim = c.kv_dim();
  return LayerSpecs{
      {prefix + "input_layernorm.weight", {hidden}},
      {prefix + "self_attn.q_proj.weight", {q_dim, hidden}},
      {prefix + "self_attn.k_proj.weight", {kv_dim, hidden}},
      {prefix + "self_attn.v_proj.weight", {kv_dim, hidden}},
      {prefix + "self_attn.o_proj.weight", {hidden, q_dim}},
      {prefix + "post_attention_layernorm.weight", {hidden}},
      {prefix + "mlp.gate_proj.weight", {inter, hidden}},
      {prefix + "mlp.up_proj.weight", {inter, hidden}},
      {prefix + "mlp.down_proj.weight", {hidden, inter}},
  };
}

namespace {
TensorSpec embedding_spec(const LlamaConfig& c) { return {"model.embed_tokens.weight", {c.vocab_size, c.hidden_size}}; }
TensorSpec final_norm_spec(const LlamaConfig& c) { return {"model.norm.weight", {c.hidden_size}}; }
TensorSpec lm_head_spec(const LlamaConfig& c) { return {"lm_head.weight", {c.vocab_size, c.hidden_size}}; }
}  // namespace

std::vector<TensorSpec> model_specs(const LlamaConfig& c) {
  std::vector<TensorSpec> specs{embedding_spec(c)};
  for (int layer = 0; layer < c.num_hidden_layers; ++layer) {
    LayerSpecs s = layer_specs(c, layer);
    for (TensorSpec* spec : {&s.input_norm, &s.q, &s.k, &s.v, &s.o, &s.post_norm, &s.gate, &s.up, &s.down}) {
      specs.push_back(std::move(*spec));
    }
  }
  specs.push_back(final_norm_spec(c));
  if (!c.tie_word_embeddings) specs.push_back(lm_head_spec(c));
  return specs;
}

KvCache::KvCache(const LlamaConfig& config, int capacity_) : capacity(capacity_), kv_dim(config.kv_dim()) {
  check(capacity >= 1 && capacity <= config.max_position_embeddings, "context of ", capacity,
        " positions is outside [1, max_position_embeddings = ", config.max_position_embeddings, "]");
  const std::size_t size = static_cast<std::size_t>(config.num_hidden_layers) * capacity * kv_dim;
  keys.assign(size, 0.0f);
  values.assign(size, 0.0f);
}

void Mlp::forward(const float* input, int T, MlpBuffers& buffers, float* output) const {
  const int width = gate->out();
  const std::size_t size = static_cast<std::size_t>(T) * width;
  grow(buffers.gate, size);
  grow(buffers.up, size);
  grow(buffers.hidden, size);
  const auto* gate_matrix = gate->block_circulant();
  const auto* up_matrix = up->block_circulant();
  if (gate_matrix && up_matrix && gate_matrix->block_size() == up_matrix->block_size()) {
    const Eigen::Map<const Eigen::MatrixXf> X(input, gate->in(), T);
    Eigen::Map<Eigen::MatrixXf> G(buffers.gate.data(), width, T), U(buffers.up.data(), width, T);
    gate_matrix->transform_input(X, buffers.input_spectrum);
    gate_matrix->apply_transformed(buffers.input_spectrum, G);
    up_matrix->apply_transformed(buffers.input_spectrum, U);
  } else {
    gate->forward(input, buffers.gate.data(), T);
    up->forward(input, buffers.up.data(), T);
  }
  swiglu(buffers.gate.data(), buffers.up.data(), buffers.hidden.data(), size);
  down->forward(buffers.hidden.data(), output, T);
}

Model::Model(std::shared_ptr<const Checkpoint> checkpoint_in) : checkpoint(std::move(checkpoint_in)) {
  const Checkpoint& ckpt = *checkpoint;
  const LlamaConfig& c = ckpt.config();
  ckpt.require(model_specs(c));

  embedding = ckpt.tensor(embedding_spec(c));
  layers.resize(static_cast<std::size_t>(c.num_hidden_layers));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const LayerSpecs s = layer_specs(c, l);
    Layer& layer = layers[static_cast<std::size_t>(l)];
    layer.attention.norm = read_vector(ckpt, s.input_norm);
    layer.attention.q = std::make_unique<DenseLinear>(ckpt.tensor(s.q));
    layer.attention.k = std::make_unique<DenseLinear>(ckpt.tensor(s.k));
    layer.attention.v = std::make_unique<DenseLinear>(ckpt.tensor(s.v));
    layer.attention.o = std::make_unique<DenseLinear>(ckpt.tensor(s.o));
    layer.mlp.norm = read_vector(ckpt, s.post_norm);
    layer.mlp.gate = std::make_unique<DenseLinear>(ckpt.tensor(s.gate));
    layer.mlp.up = std::make_unique<DenseLinear>(ckpt.tensor(s.up));
    layer.mlp.down = std::make_unique<DenseLinear>(ckpt.tensor(s.down));
  }
  final_norm = read_vector(ckpt, final_norm_spec(c));
  lm_head = std::make_unique<DenseLinear>(c.tie_word_embeddings ? embedding : ckpt.tensor(lm_head_spec(c)));

  // As transformers computes them: inv_freq = 1 / theta^(2i/d) in float32.
  const int half = c.head_dim / 2;
  inverse_frequencies_.resize(static_cast<std::size_t>(half));
  for (int i = 0; i < half; ++i) {
    inverse_frequencies_[static_cast<std::size_t>(i)] =
        1.0f / std::pow(c.rope_theta, static_cast<float>(2 * i) / static_cast<float>(c.head_dim));
  }
}

KvCache Model::make_cache(int capacity) const { return KvCache(config(), capacity); }

std::size_t Model::parameter_bytes_per_token() const {
  const std::size_t norm_bytes = sizeof(float) * static_cast<std::size_t>(config().hidden_size);
  std::size_t bytes = lm_head->parameter_bytes() + norm_bytes;
  for (const Layer& layer : layers) {
    for (const Linear* linear : {layer.attention.q.get(), layer.attention.k.get(), layer.attention.v.get(),
                                 layer.attention.o.get(), layer.mlp.gate.get(), layer.mlp.up.get(), layer.mlp.down.get()}) {
      bytes += linear->parameter_bytes();
    }
    bytes += 2 * norm_bytes;
  }
  return bytes;
}

std::vector<float> Model::forward(const std::vector<int>& tokens, KvCache& cache, Logits which) {
  const int T = static_cast<int>(tokens.size());
  std::vector<float> logits(static_cast<std::size_t>(which == Logits::all ? T : 1) * config().vocab_size);
  forward(tokens.data(), T, cache, which, logits.data());
  return logits;
}

void Model::forward(const int* tokens, int T, KvCache& cache, Logits which, float* logits) {
  const LlamaConfig& c = config();
  run_decoder(tokens, T, cache, c.num_hidden_layers);

  // The final norm and lm_head run only on the `count` positions whose logits are wanted (T or
  // the last one): h = rmsnorm(x) * norm, count x d; logits = lm_head h, count x vocab.
  const int d = c.hidden_size;
  const int first = which == Logits::all ? 0 : T - 1;
  const int count = T - first;
  rms_norm(&workspace_.residual[static_cast<std::size_t>(first) * d], final_norm, c.rms_norm_eps, count, d,
           workspace_.normed.data());
  lm_head->forward(workspace_.normed.data(), logits, count);
}

void Model::run_layers(const std::vector<int>& tokens, KvCache& cache, int layer_count) {
  check(layer_count >= 0 && layer_count <= config().num_hidden_layers, "run_layers: ", layer_count,
        " layers requested of a model with ", config().num_hidden_layers);
  run_decoder(tokens.data(), static_cast<int>(tokens.size()), cache, layer_count);
}

void Model::run_decoder(const int* tokens, int T, KvCache& cache, int layer_count) {
  const LlamaConfig& c = config();
  check(T >= 1, "forward needs at least one token");
  check(cache.kv_dim == c.kv_dim() && cache.keys.size() == static_cast<std::size_t>(c.num_hidden_layers) * cache.capacity * cache.kv_dim,
        "the KV cache was made for another model");
  check(T <= cache.capacity - cache.length, "context overflow: ", cache.length, " cached + ", T,
        " new tokens exceed the cache capacity of ", cache.capacity, " positions");
  for (int t = 0; t < T; ++t) {
    check(tokens[t] >= 0 && tokens[t] < c.vocab_size, "token id ", tokens[t], " at index ", t,
          " is outside the vocabulary of ", c.vocab_size);
  }
  // Shapes below: T new tokens at positions start .. start + T - 1; d = hidden_size,
  // q_dim = num_attention_heads * head_dim, kv_dim = num_key_value_heads * head_dim,
  // ffn = intermediate_size. Every activation is row-major, one token per row.
  const int d = c.hidden_size, start = cache.length;
  const std::size_t rows = static_cast<std::size_t>(T);
  Workspace& ws = workspace_;
  grow(ws.residual, rows * d);
  grow(ws.normed, rows * d);
  grow(ws.projected, rows * d);
  grow(ws.q, rows * c.q_dim());
  grow(ws.attended, rows * c.q_dim());
  grow(ws.rope, rows * c.head_dim);
  grow(ws.scores, static_cast<std::size_t>(fftmat::max_threads()) * cache.capacity);

  // x = embed_tokens[tokens]                                     residual: T x d
  for (int t = 0; t < T; ++t) {
    to_float(embedding.data, embedding.dtype, static_cast<std::size_t>(tokens[t]) * d, d, &ws.residual[static_cast<std::size_t>(t) * d]);
  }
  // Rotary angles (start + t) * inv_freq in float32, as transformers computes them; each row
  // holds the cosines, then the sines                            rope: T x head_dim
  const int half = c.head_dim / 2;
  for (int t = 0; t < T; ++t) {
    float* cosine = &ws.rope[static_cast<std::size_t>(t) * c.head_dim];
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(start + t) * inverse_frequencies_[static_cast<std::size_t>(i)];
      cosine[i] = std::cos(angle);
      cosine[i + half] = std::sin(angle);
    }
  }

  for (int l = 0; l < layer_count; ++l) {
    const Layer& layer = layers[static_cast<std::size_t>(l)];
    // Attention block.
    // h = rmsnorm(x) * input_layernorm                           normed: T x d
    rms_norm(ws.residual.data(), layer.attention.norm, c.rms_norm_eps, T, d, ws.normed.data());
    // q = q_proj h; k = k_proj h, v = v_proj h, written straight into the cache rows of
    // positions start .. start + T - 1                           q: T x q_dim; k, v: T x kv_dim
    float* keys = cache.key_row(l, start);
    float* values = cache.value_row(l, start);
    layer.attention.q->forward(ws.normed.data(), ws.q.data(), T);
    layer.attention.k->forward(ws.normed.data(), keys, T);
    layer.attention.v->forward(ws.normed.data(), values, T);
    // Rotary embedding (rotate_half) on every head of q and k    q: T x q_dim; k: T x kv_dim
    apply_rotary(ws.q.data(), T, c.num_attention_heads, c.head_dim, ws.rope);
    apply_rotary(keys, T, c.num_key_value_heads, c.head_dim, ws.rope);
    // softmax(q k^T / sqrt(head_dim)) v per head, causal (token t sees cached positions
    // 0 .. start + t), heads grouped over the kv heads           attended: T x q_dim
    attend(l, T, cache);
    // x += o_proj attended                                       projected, residual: T x d
    layer.attention.o->forward(ws.attended.data(), ws.projected.data(), T);
    for (std::size_t k = 0; k < rows * d; ++k) ws.residual[k] += ws.projected[k];

    // MLP block.
    // h = rmsnorm(x) * post_attention_layernorm                  normed: T x d
    rms_norm(ws.residual.data(), layer.mlp.norm, c.rms_norm_eps, T, d, ws.normed.data());
    // g = gate_proj h, u = up_proj h                             mlp.gate, mlp.up: T x ffn
    // a = silu(g) * u                                            mlp.hidden: T x ffn
    // m = down_proj a                                            projected: T x d
    layer.mlp.forward(ws.normed.data(), T, ws.mlp, ws.projected.data());
    if (mlp_observer != nullptr) {
      mlp_observer->observe(MlpActivations{l, T, start, ws.normed.data(), ws.mlp.gate.data(), ws.mlp.up.data(),
                                           ws.mlp.hidden.data(), ws.projected.data()});
    }
    // x += m                                                     residual: T x d
    for (std::size_t k = 0; k < rows * d; ++k) ws.residual[k] += ws.projected[k];
  }
  cache.length += T;
}

void Model::attend(int layer, int T, KvCache& cache) {
  const LlamaConfig& c = config();
  const int heads = c.num_attention_heads, head_dim = c.head_dim, start = cache.length;
  const int group = c.num_attention_heads / c.num_key_value_heads;  // query heads per key/value head
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  Workspace& ws = workspace_;
  const double flops = 4.0 * head_dim * (start + T);
  fftmat::parallel_for(static_cast<Eigen::Index>(T) * heads, flops, [&](Eigen::Index item, int thread) {
    const int t = static_cast<int>(item / heads), h = static_cast<int>(item % heads);
    const int kv_offset = (h / group) * head_dim;
    const int positions = start + t + 1;  // causal: position start + t sees 0 .. start + t
    const float* query = &ws.q[(static_cast<std::size_t>(t) * heads + h) * head_dim];
    float* probabilities = &ws.scores[static_cast<std::size_t>(thread) * cache.capacity];
    float largest = -INFINITY;
    for (int p = 0; p < positions; ++p) {
      probabilities[p] = dot(query, cache.key_row(layer, p) + kv_offset, head_dim) * scale;
      largest = std::max(largest, probabilities[p]);
    }
    float total = 0.0f;
    for (int p = 0; p < positions; ++p) {
      probabilities[p] = std::exp(probabilities[p] - largest);
      total += probabilities[p];
    }
    float* out = &ws.attended[(static_cast<std::size_t>(t) * heads + h) * head_dim];
    std::fill(out, out + head_dim, 0.0f);
    for (int p = 0; p < positions; ++p) {
      const float weight = probabilities[p] / total;
      const float* value = cache.value_row(layer, p) + kv_offset;
      for (int i = 0; i < head_dim; ++i) out[i] += weight * value[i];
    }
  });
}

}  // namespace llama
