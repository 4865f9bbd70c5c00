#include "perplexity.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

#include "engine/error.hpp"
#include "engine/finite.hpp"

namespace llama {
namespace {

/// Mean and standard error of the mean, sqrt(sum (x - mean)^2 / (n (n - 1))): what
/// llama-perplexity's mean_and_uncertainty computes from running sums, taken in two passes.
ValueWithError mean_and_error(const std::vector<double>& values) {
  const double n = double(values.size());
  const double mean = std::accumulate(values.begin(), values.end(), 0.0) / n;
  double squares = 0;
  for (const double v : values) squares += (v - mean) * (v - mean);
  return {mean, std::sqrt(squares / (n * (n - 1)))};
}

/// The covariance of the two means, sum (a - mean a)(b - mean b) / (n (n - 1)): llama-perplexity's
/// covariance().
double covariance_of_means(const std::vector<double>& a, const std::vector<double>& b, double mean_a, double mean_b) {
  const double n = double(a.size());
  double sum = 0;
  for (std::size_t k = 0; k < a.size(); ++k) sum += (a[k] - mean_a) * (b[k] - mean_b);
  return sum / (n * (n - 1));
}

/// log softmax of one row of logits, in double.
void log_softmax(const float* logits, int vocab, std::vector<double>& out) {
  const double top = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int v = 0; v < vocab; ++v) sum += std::exp(double(logits[v]) - top);
  const double log_sum = top + std::log(sum);
  out.resize(static_cast<std::size_t>(vocab));
  for (int v = 0; v < vocab; ++v) out[std::size_t(v)] = double(logits[v]) - log_sum;
}

/// The first index of the largest logit.
int argmax(const float* logits, int vocab) { return int(std::max_element(logits, logits + vocab) - logits); }

template <std::size_t N>
std::array<double, N> quantiles(std::vector<double> values, const std::array<double, N>& fractions) {
  std::sort(values.begin(), values.end());
  std::array<double, N> result{};
  for (std::size_t k = 0; k < N; ++k) result[k] = quantile_linear(values, fractions[k]);
  return result;
}

nlohmann::json to_json(const ValueWithError& v) { return {{"value", v.value}, {"stderr", v.standard_error}}; }

/// "99.9", "median", "max" ...: the names of the quantiles in JSON.
std::string quantile_name(double fraction) {
  if (fraction == 1) return "max";
  if (fraction == 0) return "min";
  if (fraction == 0.5) return "median";
  char text[16];
  std::snprintf(text, sizeof text, "%g", 100 * fraction);
  return text;
}

template <std::size_t N>
nlohmann::json quantiles_json(const std::array<double, N>& values, const std::array<double, N>& fractions) {
  nlohmann::json result = nlohmann::json::object();
  for (std::size_t k = 0; k < N; ++k) result[quantile_name(fractions[k])] = values[k];
  return result;
}

/// llama-perplexity's row labels: "Maximum", "99.9%", "Median", " 5.0%", "Minimum".
std::string quantile_label(double fraction) {
  if (fraction == 1) return "Maximum";
  if (fraction == 0) return "Minimum";
  if (fraction == 0.5) return "Median ";
  char text[16];
  std::snprintf(text, sizeof text, "%4.1f%%  ", 100 * fraction);
  return text;
}

}  // namespace

std::vector<std::vector<int>> perplexity_chunks(const std::vector<int>& tokens, int ctx, int bos, int max_chunks,
                                                const std::string& source) {
  check(ctx >= 4, "--ctx ", ctx, " is too small: a chunk needs at least 4 tokens (its second half is scored)");
  check(tokens.size() >= 2 * std::size_t(ctx), source, " has ", tokens.size(), " tokens; a context of ", ctx,
        " needs at least ", 2 * std::size_t(ctx), " (two chunks)");
  std::size_t count = tokens.size() / std::size_t(ctx);
  if (max_chunks > 0) count = std::min(count, std::size_t(max_chunks));
  std::vector<std::vector<int>> chunks;
  for (std::size_t k = 0; k < count; ++k) {
    const auto begin = tokens.begin() + std::ptrdiff_t(k * std::size_t(ctx));
    chunks.emplace_back(begin, begin + ctx);
    chunks.back()[0] = bos;
  }
  return chunks;
}

double quantile_linear(const std::vector<double>& sorted, double q) {
  const double h = double(sorted.size() - 1) * q;
  const std::size_t low = std::min(std::size_t(h), sorted.size() - 1);
  const std::size_t high = std::min(low + 1, sorted.size() - 1);
  return sorted[low] + (h - double(low)) * (sorted[high] - sorted[low]);
}

void PerplexityAccumulator::add(const float* base, const float* q, const int* targets, std::size_t count, int vocab,
                                const std::string& what) {
  const std::size_t V = std::size_t(vocab);
  require_finite_logits(base, count, V, what + ", base");
  require_finite_logits(q, count, V, what + ", student");
  std::vector<double> log_p_base, log_p_q;
  for (std::size_t i = 0; i < count; ++i) {
    const int target = targets[i];
    check(target >= 0 && target < vocab, what, ": token ", target, " at scored position ", i,
          " is outside the vocabulary of ", vocab);
    const float* b = base + i * V;
    const float* s = q + i * V;
    log_softmax(b, vocab, log_p_base);
    log_softmax(s, vocab, log_p_q);
    double kld = 0;
    for (std::size_t v = 0; v < V; ++v) kld += std::exp(log_p_base[v]) * (log_p_base[v] - log_p_q[v]);
    nll_base_.push_back(-log_p_base[std::size_t(target)]);
    nll_q_.push_back(-log_p_q[std::size_t(target)]);
    kld_.push_back(std::max(0.0, kld));  // KL >= 0 (Gibbs' inequality): only rounding makes it negative
    delta_p_.push_back(std::exp(log_p_q[std::size_t(target)]) - std::exp(log_p_base[std::size_t(target)]));
    same_top_ += argmax(b, vocab) == argmax(s, vocab) ? 1 : 0;
  }
}

PerplexityStatistics PerplexityAccumulator::statistics() const {
  check(tokens() >= 2, "perplexity statistics need at least two scored tokens, not ", tokens());
  PerplexityStatistics s;
  s.tokens = tokens();
  const double n = double(s.tokens);
  const ValueWithError nll_q = mean_and_error(nll_q_), nll_base = mean_and_error(nll_base_);
  const double covariance = covariance_of_means(nll_q_, nll_base_, nll_q.value, nll_base.value);
  s.ppl_q = {std::exp(nll_q.value), std::exp(nll_q.value) * nll_q.standard_error};
  s.ppl_base = {std::exp(nll_base.value), std::exp(nll_base.value) * nll_base.standard_error};
  s.ln_ppl_correlation = covariance / (nll_q.standard_error * nll_base.standard_error);
  const double ratio_error = std::sqrt(std::max(0.0, nll_q.standard_error * nll_q.standard_error +
                                                         nll_base.standard_error * nll_base.standard_error -
                                                         2 * covariance));
  s.ln_ppl_ratio = {nll_q.value - nll_base.value, ratio_error};
  s.ppl_ratio = {std::exp(s.ln_ppl_ratio.value), std::exp(s.ln_ppl_ratio.value) * ratio_error};
  const double ppl_covariance = s.ppl_q.value * s.ppl_base.value * covariance;
  s.ppl_difference = {s.ppl_q.value - s.ppl_base.value,
                      std::sqrt(std::max(0.0, s.ppl_q.standard_error * s.ppl_q.standard_error +
                                                  s.ppl_base.standard_error * s.ppl_base.standard_error -
                                                  2 * ppl_covariance))};
  s.kld = mean_and_error(kld_);
  s.kld_quantiles = quantiles(kld_, kKldQuantiles);
  s.delta_p = mean_and_error(delta_p_);
  s.delta_p_quantiles = quantiles(delta_p_, kDeltaPQuantiles);
  std::vector<double> squares(delta_p_.size());
  std::transform(delta_p_.begin(), delta_p_.end(), squares.begin(), [](double d) { return d * d; });
  const ValueWithError mean_square = mean_and_error(squares);
  const double rms = std::sqrt(mean_square.value);
  // d sqrt(x) = dx / (2 sqrt(x)); when every Δp is 0 (a student identical to its base) the RMS is
  // exactly 0 with no spread, not 0/0.
  s.delta_p_rms = {rms, mean_square.standard_error == 0 ? 0.0 : mean_square.standard_error / (2 * rms)};
  const double same = double(same_top_) / n;
  s.same_top = {same, std::sqrt(same * (1 - same) / (n - 1))};
  return s;
}

nlohmann::json PerplexityStatistics::to_json() const {
  return {{"tokens", tokens},
          {"ppl_q", llama::to_json(ppl_q)},
          {"ppl_base", llama::to_json(ppl_base)},
          {"ln_ppl_ratio", llama::to_json(ln_ppl_ratio)},
          {"ppl_ratio", llama::to_json(ppl_ratio)},
          {"ppl_difference", llama::to_json(ppl_difference)},
          {"ln_ppl_correlation", ln_ppl_correlation},
          {"kld", llama::to_json(kld)},
          {"kld_quantiles", quantiles_json(kld_quantiles, kKldQuantiles)},
          {"delta_p", llama::to_json(delta_p)},
          {"delta_p_quantiles", quantiles_json(delta_p_quantiles, kDeltaPQuantiles)},
          {"delta_p_rms", llama::to_json(delta_p_rms)},
          {"same_top", llama::to_json(same_top)}};
}

void PerplexityStatistics::print(std::ostream& out) const {
  char line[160];
  const auto emit = [&](const char* pattern, auto... values) {
    std::snprintf(line, sizeof line, pattern, values...);
    out << line;
  };
  emit("====== Perplexity statistics (%zu scored tokens) ======\n", tokens);
  emit("Mean PPL(Q)                   : %10.6f ± %10.6f\n", ppl_q.value, ppl_q.standard_error);
  emit("Mean PPL(base)                : %10.6f ± %10.6f\n", ppl_base.value, ppl_base.standard_error);
  emit("Cor(ln(PPL(Q)), ln(PPL(base))): %6.2f%%\n", 100 * ln_ppl_correlation);
  emit("Mean ln(PPL(Q)/PPL(base))     : %10.6f ± %10.6f\n", ln_ppl_ratio.value, ln_ppl_ratio.standard_error);
  emit("Mean PPL(Q)/PPL(base)         : %10.6f ± %10.6f\n", ppl_ratio.value, ppl_ratio.standard_error);
  emit("Mean PPL(Q)-PPL(base)         : %10.6f ± %10.6f\n\n", ppl_difference.value, ppl_difference.standard_error);
  emit("====== KL divergence statistics ======\n");
  emit("Mean    KLD: %10.6f ± %10.6f\n", kld.value, kld.standard_error);
  for (std::size_t k = 0; k < kKldQuantiles.size(); ++k) {
    emit("%s KLD: %10.6f\n", quantile_label(kKldQuantiles[k]).c_str(), kld_quantiles[k]);
  }
  emit("\n====== Token probability statistics ======\n");
  emit("Mean    Δp: %6.3f ± %5.3f %%\n", 100 * delta_p.value, 100 * delta_p.standard_error);
  for (std::size_t k = 0; k < kDeltaPQuantiles.size(); ++k) {
    emit("%s Δp: %6.3f%%\n", quantile_label(kDeltaPQuantiles[k]).c_str(), 100 * delta_p_quantiles[k]);
  }
  emit("RMS Δp    : %6.3f ± %5.3f %%\n", 100 * delta_p_rms.value, 100 * delta_p_rms.standard_error);
  emit("Same top p: %6.3f ± %5.3f %%\n", 100 * same_top.value, 100 * same_top.standard_error);
}

}  // namespace llama
