#pragma once
// Llama-2 with the semantics of Hugging Face's LlamaForCausalLM (docs/llama.md, Semantics), on the CPU:
//
//   x = embed_tokens[ids]                                   T x hidden, float
//   for each layer:
//     h = rmsnorm(x) * input_layernorm                      in float, eps = rms_norm_eps
//     q, k, v = q_proj h, k_proj h, v_proj h                 rotary embedding (rotate_half) on q, k
//     x += o_proj attention(q, k, v)                         causal, grouped-query, softmax in float
//     h = rmsnorm(x) * post_attention_layernorm
//     x += down_proj(silu(gate_proj h) * up_proj h)          SwiGLU
//   logits = lm_head(rmsnorm(x) * norm)                      lm_head may be tied to embed_tokens
//
// Weights stay in their checkpoint dtype in the memory-mapped files; activations, the KV cache and
// all arithmetic are float32. Every projection is a `Linear`, and the parts are plain public
// members, so that a caller can replace MLP projections by block-circulant ones (see
// BlockCirculantLinear) and observe every MLP's activations (see MlpObserver).

#include <memory>
#include <vector>

#include <fftmat/input_spectrum.hpp>

#include "checkpoint.hpp"
#include "config.hpp"
#include "linear.hpp"

namespace llama {

/// Checkpoint names of one decoder layer's tensors with the shapes config.json implies.
struct LayerSpecs {
  TensorSpec input_norm;  // [hidden]
  TensorSpec q, k, v, o;  // [q_dim, hidden], [kv_dim, hidden] x 2, [hidden, q_dim]
  TensorSpec post_norm;   // [hidden]
  TensorSpec gate, up;    // [intermediate, hidden]
  TensorSpec down;        // [hidden, intermediate]
};
LayerSpecs layer_specs(const LlamaConfig& config, int layer);
/// Every tensor the model reads: embeddings, all layers, the final norm, lm_head unless tied.
std::vector<TensorSpec> model_specs(const LlamaConfig& config);

/// Keys and values of every layer for positions [0, length); float32.
struct KvCache {
  KvCache(const LlamaConfig& config, int capacity);
  int capacity;    // positions it can hold
  int length = 0;  // positions filled so far
  int kv_dim;      // num_key_value_heads * head_dim
  std::vector<float> keys, values;  // [layer][position][kv_head * head_dim + i]

  float* key_row(int layer, int position) { return keys.data() + offset(layer, position); }
  float* value_row(int layer, int position) { return values.data() + offset(layer, position); }

 private:
  std::size_t offset(int layer, int position) const {
    return (static_cast<std::size_t>(layer) * capacity + position) * kv_dim;
  }
};

struct Attention {
  std::vector<float> norm;             // [hidden] input_layernorm weight
  std::unique_ptr<Linear> q, k, v, o;  // q: q_dim x hidden, k, v: kv_dim x hidden, o: hidden x q_dim
};

/// Scratch of one MLP evaluation, row-major T x width; grown on demand and reused.
struct MlpBuffers {
  std::vector<float> gate;    // T x intermediate: gate_proj output (pre-activation)
  std::vector<float> up;      // T x intermediate: up_proj output
  std::vector<float> hidden;  // T x intermediate: silu(gate) * up, down_proj's input
  fftmat::InputSpectrum<float> input_spectrum;  // shared by block-circulant gate and up
};

struct Mlp {
  std::vector<float> norm;                 // [hidden] post_attention_layernorm weight
  std::unique_ptr<Linear> gate, up, down;  // gate, up: intermediate x hidden; down: hidden x intermediate

  /// output (T x hidden) = down(silu(gate(input)) * up(input)) for input T x hidden (already
  /// normalised); the intermediate values are left in `buffers`. When gate and up are both
  /// block-circulant with one block size, the input is transformed once for both.
  void forward(const float* input, int T, MlpBuffers& buffers, float* output) const;
};

struct Layer {
  Attention attention;
  Mlp mlp;
};

/// What one MLP computed for T tokens; row-major T x width, valid during the observer call.
struct MlpActivations {
  int layer;
  int tokens;             // T
  int first_position;     // position of the first of the T tokens
  const float* input;     // T x hidden: post_attention_layernorm output, read by gate and up
  const float* gate;      // T x intermediate: gate_proj pre-activation
  const float* up;        // T x intermediate: up_proj output
  const float* hidden;    // T x intermediate: silu(gate) * up, read by down
  const float* output;    // T x hidden: down_proj output, added to the residual stream
};

/// Called after every MLP of every forward pass: the hook for calibration statistics.
class MlpObserver {
 public:
  virtual ~MlpObserver() = default;
  virtual void observe(const MlpActivations& activations) = 0;
};

enum class Logits {
  last,  ///< the last position's logits only (vocab floats)
  all,   ///< every position's (T x vocab, row-major)
};

/// A Llama-2 decoder over a checkpoint's weights. One call at a time: forward and run_layers
/// write the model's single workspace and call its MLP observer, so two threads must not run one
/// Model at once (each call already runs on all OpenMP threads); concurrent requests need one
/// Model each, which can share one checkpoint.
struct Model {
  /// Builds the model over a validated checkpoint, which it keeps alive (weights are views into it):
  /// the checkpoint's own weights. A patched checkpoint's saved patch is the evaluation harness's
  /// to apply (load_model, evaluation/patched_checkpoint.hpp); here it is the teacher's weights.
  explicit Model(std::shared_ptr<const Checkpoint> checkpoint);

  const LlamaConfig& config() const noexcept { return checkpoint->config(); }
  /// A KV cache for up to `capacity` positions (1 .. max_position_embeddings).
  KvCache make_cache(int capacity) const;

  /// Runs `tokens` (T of them) at positions cache.length .. cache.length + T - 1, appending their
  /// keys and values to the cache: prefill with the whole prompt, decode with one token at a time.
  /// Writes `which` logits into `logits` (vocab or T x vocab floats).
  void forward(const int* tokens, int T, KvCache& cache, Logits which, float* logits);
  std::vector<float> forward(const std::vector<int>& tokens, KvCache& cache, Logits which);

  /// Runs `tokens` through the first `layer_count` decoder layers only (the MLP observer sees them
  /// as in forward), with no final norm or lm_head: calibrating layer l needs the activations of
  /// layers 0..l, not the logits, and a pass that stops there costs (l + 1) / num_hidden_layers of
  /// a full one. Only those layers' keys and values are written, so the cache is not fit for a
  /// later forward.
  void run_layers(const std::vector<int>& tokens, KvCache& cache, int layer_count);

  /// Bytes of parameters a decoded token reads: every projection, lm_head and the norms.
  std::size_t parameter_bytes_per_token() const;

  std::shared_ptr<const Checkpoint> checkpoint;
  TensorView embedding;           // vocab x hidden, embed_tokens in its checkpoint dtype
  std::vector<Layer> layers;      // num_hidden_layers
  std::vector<float> final_norm;  // [hidden] model.norm weight
  std::unique_ptr<Linear> lm_head;  // vocab x hidden (the embedding matrix when tied)
  MlpObserver* mlp_observer = nullptr;  // not owned; null for none

 private:
  struct Workspace {  // T x width scratch, grown on demand
    std::vector<float> residual;   // T x hidden: the residual stream x
    std::vector<float> normed;     // T x hidden: rmsnorm(x) * weight
    std::vector<float> q;          // T x q_dim
    std::vector<float> attended;   // T x q_dim: attention output per head, o_proj's input
    std::vector<float> projected;  // T x hidden: o_proj or MLP output
    std::vector<float> rope;       // T x head_dim: cos then sin of each token's rotary angles
    std::vector<float> scores;     // threads x capacity: attention probabilities
    MlpBuffers mlp;
  };

  /// Validates the inputs, embeds `tokens` and runs decoder layers [0, layer_count); leaves the
  /// residual stream in the workspace and advances cache.length.
  void run_decoder(const int* tokens, int T, KvCache& cache, int layer_count);
  void attend(int layer, int T, KvCache& cache);
  std::vector<float> inverse_frequencies_;  // [head_dim / 2] rotary frequencies rope_theta^(-2i/d)
  Workspace workspace_;
};

}  // namespace llama
