#pragma once
// Perplexity and KL divergence as llama.cpp's llama-perplexity computes them (tools/perplexity/
// perplexity.cpp in ggml-org/llama.cpp; docs/evaluation.md, "Perplexity and KL divergence", says
// what is matched): the text is tokenized once and cut into chunks of ctx tokens, each chunk's first
// token replaced by BOS; only the second half of a chunk is scored (positions ctx/2 .. ctx-2
// predicting tokens ctx/2+1 .. ctx-1). A student (Q) is compared with its base on those positions:
// perplexities with standard errors, ln(PPL(Q)/PPL(base)) and the correlation of the two, KL(base ||
// Q) per token with its percentiles, Δp = p_Q - p_base of the true next token, and how often the two
// models' top tokens agree. Everything is computed in double from float logits.

#include <nlohmann/json.hpp>

#include <array>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

namespace llama {

/// The chunks of `tokens` (a text tokenized once, BOS first): chunk k is tokens[k ctx, (k+1) ctx)
/// with its first token replaced by `bos`, as many as fit, at most `max_chunks` (0: no limit).
/// Throws llama::error naming `source` unless ctx >= 4 and there are at least 2 ctx tokens
/// (llama-perplexity's requirement).
std::vector<std::vector<int>> perplexity_chunks(const std::vector<int>& tokens, int ctx, int bos, int max_chunks,
                                                const std::string& source);

/// The first scored position of a chunk of `ctx` tokens: ctx / 2. Positions first .. ctx - 2 are
/// scored, each against the token after it.
inline int first_scored_position(int ctx) { return ctx / 2; }

/// The quantiles reported, as fractions, largest first: llama-perplexity's lists (maximum, 99.9 %,
/// ..., minimum), Δp's with the quartiles added.
inline constexpr std::array<double, 11> kKldQuantiles = {1, 0.999, 0.99, 0.95, 0.9, 0.5, 0.1, 0.05, 0.01, 0.001, 0};
inline constexpr std::array<double, 13> kDeltaPQuantiles = {1,   0.999, 0.99, 0.95, 0.9,   0.75, 0.5,
                                                            0.25, 0.1,  0.05, 0.01, 0.001, 0};

/// The q-quantile of `values` by numpy's default definition (numpy.quantile, method "linear"):
/// sorted x_0 .. x_{n-1}, h = (n - 1) q, x_floor(h) + (h - floor(h)) (x_floor(h)+1 - x_floor(h)).
/// llama-perplexity's percentile and median are the same definition. `sorted` must be sorted and
/// non-empty.
double quantile_linear(const std::vector<double>& sorted, double q);

struct ValueWithError {
  double value = 0, standard_error = 0;
};

struct PerplexityStatistics {
  std::size_t tokens = 0;                          // scored tokens
  ValueWithError ppl_q, ppl_base;                  // exp(mean NLL), SE = PPL x SE(mean NLL)
  ValueWithError ln_ppl_ratio;                     // mean NLL_Q - mean NLL_base, SE with their covariance
  ValueWithError ppl_ratio, ppl_difference;        // PPL(Q) / PPL(base), PPL(Q) - PPL(base)
  double ln_ppl_correlation = 0;                   // Cor(ln PPL(Q), ln PPL(base))
  ValueWithError kld;                              // mean KL(base || Q) per token, nats
  std::array<double, kKldQuantiles.size()> kld_quantiles{};
  ValueWithError delta_p;                          // mean p_Q - p_base of the true next token
  std::array<double, kDeltaPQuantiles.size()> delta_p_quantiles{};
  ValueWithError delta_p_rms;                      // sqrt(mean Δp²), SE = SE(mean Δp²) / (2 RMS)
  ValueWithError same_top;                         // fraction of positions whose argmax agrees

  nlohmann::json to_json() const;
  /// The three blocks llama-perplexity --kl-divergence ends with, in its layout.
  void print(std::ostream& out) const;
};

/// Collects the scored positions chunk by chunk, so that only one chunk's logits need to exist.
class PerplexityAccumulator {
 public:
  /// Adds `count` scored positions: `base` and `q` are their logits (count x vocab, row-major,
  /// position i predicting targets[i]). Throws llama::error naming `what` and the position of a
  /// non-finite logit or a target outside the vocabulary.
  void add(const float* base, const float* q, const int* targets, std::size_t count, int vocab,
           const std::string& what);

  std::size_t tokens() const { return nll_q_.size(); }
  /// The statistics so far; needs at least two tokens.
  PerplexityStatistics statistics() const;

 private:
  std::vector<double> nll_q_, nll_base_, kld_, delta_p_;
  std::size_t same_top_ = 0;
};

}  // namespace llama
