// llama-perplexity's statistics (examples/llama/evaluation/perplexity.hpp) against numpy's float64 values, its
// chunking convention, and the perplexity and eval commands end to end on ids files.
#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "engine/npy.hpp"
#include "evaluation/perplexity.hpp"
#include "evaluation_commands.hpp"
#include "perplexity_command.hpp"
#include "test_helpers.hpp"

using namespace llama;
using llama_test::contains;
using llama_test::error_of;
using llama_test::read_file;
using llama_test::reference_dir;
using llama_test::write_file;

namespace {

void check_close(double ours, double reference, double relative = 1e-9) {
  CHECK(std::abs(ours - reference) <= relative * std::max(1e-12, std::abs(reference)));
}

void check_close(const ValueWithError& ours, const nlohmann::json& reference, double relative = 1e-9) {
  check_close(ours.value, reference.at("value").get<double>(), relative);
  check_close(ours.standard_error, reference.at("stderr").get<double>(), relative);
}

/// Runs fftmat-llama's command line in-process with `arguments` (after the program name).
void run_command_line(std::vector<std::string> arguments) {
  CLI::App app;
  const auto evaluation = add_evaluation_commands(app);
  const auto perplexity = add_perplexity_command(app);
  std::reverse(arguments.begin(), arguments.end());  // CLI11 takes them last first
  app.parse(arguments);
  evaluation();
  perplexity();
}

/// The reference sequence of a test checkpoint as an ids line ("1,122,...").
std::string reference_ids_line(const std::string& name) {
  const auto tokens = nlohmann::json::parse(read_file(reference_dir(name) / "reference.json")).at("tokens");
  std::string line;
  for (const auto& id : tokens) line += (line.empty() ? "" : ",") + std::to_string(id.get<int>());
  return line;
}

/// PPL of transformers' logits (tests/data/llama/NAME/logits.npy, the reference sequence) over the
/// positions llama-perplexity scores in a chunk of the whole sequence, in double.
double transformers_perplexity(const std::string& name) {
  const FloatArray logits = read_npy(reference_dir(name) / "logits.npy");
  const auto tokens = nlohmann::json::parse(read_file(reference_dir(name) / "reference.json")).at("tokens");
  const std::size_t T = logits.shape[0], V = logits.shape[1];
  double nll = 0;
  for (std::size_t t = T / 2; t + 1 < T; ++t) {
    const float* row = logits.values.data() + t * V;
    double top = row[0], sum = 0;
    for (std::size_t v = 0; v < V; ++v) top = std::max(top, double(row[v]));
    for (std::size_t v = 0; v < V; ++v) sum += std::exp(double(row[v]) - top);
    nll += top + std::log(sum) - double(row[tokens[t + 1].get<std::size_t>()]);
  }
  return std::exp(nll / double(T - 1 - T / 2));
}

}  // namespace

TEST_CASE("perplexity statistics: numpy's float64 values from the same logits") {
  const std::filesystem::path dir = reference_dir("perplexity");
  const FloatArray base = read_npy(dir / "base.npy"), student = read_npy(dir / "student.npy");
  const nlohmann::json reference = nlohmann::json::parse(read_file(dir / "reference.json"));
  const std::vector<int> targets = reference.at("targets").get<std::vector<int>>();
  const std::size_t V = base.shape[1];
  REQUIRE(targets.size() == base.shape[0]);

  // In three chunks of different sizes: the statistics must not depend on how they were cut.
  PerplexityAccumulator accumulator;
  for (const auto& [begin, end] : std::vector<std::pair<std::size_t, std::size_t>>{{0, 100}, {100, 180}, {180, 240}}) {
    accumulator.add(base.values.data() + begin * V, student.values.data() + begin * V, targets.data() + begin,
                    end - begin, int(V), "test");
  }
  const PerplexityStatistics s = accumulator.statistics();
  CHECK(s.tokens == 240);
  check_close(s.ppl_q, reference.at("ppl_q"));
  check_close(s.ppl_base, reference.at("ppl_base"));
  check_close(s.ln_ppl_ratio, reference.at("ln_ppl_ratio"));
  check_close(s.ln_ppl_correlation, reference.at("ln_ppl_correlation").get<double>());
  check_close(s.kld, reference.at("kld"));
  check_close(s.delta_p, reference.at("delta_p"));
  check_close(s.delta_p_rms, reference.at("delta_p_rms"));
  check_close(s.same_top, reference.at("same_top"));
  for (std::size_t k = 0; k < kKldQuantiles.size(); ++k) {
    INFO("KLD quantile ", kKldQuantiles[k]);
    check_close(s.kld_quantiles[k], reference.at("kld_quantiles").at(k).get<double>());
  }
  for (std::size_t k = 0; k < kDeltaPQuantiles.size(); ++k) {
    INFO("Δp quantile ", kDeltaPQuantiles[k]);
    check_close(s.delta_p_quantiles[k], reference.at("delta_p_quantiles").at(k).get<double>());
  }
  // The printed report carries the same numbers in llama-perplexity's layout.
  std::ostringstream printed;
  s.print(printed);
  char line[96];
  std::snprintf(line, sizeof line, "Mean    KLD: %10.6f ± %10.6f\n", reference["kld"]["value"].get<double>(),
                reference["kld"]["stderr"].get<double>());
  CHECK(contains(printed.str(), line));
  CHECK(contains(printed.str(), "99.9%   KLD: "));
  CHECK(contains(printed.str(), "Same top p: "));
  CHECK(s.to_json().at("kld_quantiles").at("99.9").get<double>() == s.kld_quantiles[1]);
}

TEST_CASE("perplexity statistics: a non-finite logit or a target outside the vocabulary is an error") {
  std::vector<float> base(2 * 4, 0.0f), q(2 * 4, 0.0f);
  const std::vector<int> targets{1, 2};
  PerplexityAccumulator accumulator;
  q[5] = std::nanf("");
  CHECK(contains(error_of([&] { accumulator.add(base.data(), q.data(), targets.data(), 2, 4, "chunk 3"); }),
                 "chunk 3, student"));
  q[5] = 0;
  const std::vector<int> outside{1, 4};
  CHECK(contains(error_of([&] { accumulator.add(base.data(), q.data(), outside.data(), 2, 4, "chunk 3"); }),
                 "token 4 at scored position 1 is outside the vocabulary of 4"));
  CHECK(contains(error_of([&] { accumulator.statistics(); }), "at least two scored tokens"));
}

TEST_CASE("quantiles: numpy's linear definition") {
  // numpy.quantile([1, 2, 3, 4], q) for q = 0, 0.1, 0.5, 0.999, 1: 1, 1.3, 2.5, 3.997, 4.
  const std::vector<double> sorted{1, 2, 3, 4};
  CHECK(quantile_linear(sorted, 0) == 1);
  CHECK(quantile_linear(sorted, 0.1) == doctest::Approx(1.3).epsilon(1e-15));
  CHECK(quantile_linear(sorted, 0.5) == 2.5);
  CHECK(quantile_linear(sorted, 0.999) == doctest::Approx(3.997).epsilon(1e-15));
  CHECK(quantile_linear(sorted, 1) == 4);
  CHECK(quantile_linear({7}, 0.3) == 7);
}

TEST_CASE("perplexity chunks: llama-perplexity's cut, BOS replacing each chunk's first token") {
  std::vector<int> tokens(23);
  for (int k = 0; k < 23; ++k) tokens[std::size_t(k)] = 100 + k;
  const auto chunks = perplexity_chunks(tokens, 10, 1, 0, "text");
  REQUIRE(chunks.size() == 2);  // 23 / 10: the last 3 tokens are not used
  CHECK(chunks[0] == std::vector<int>{1, 101, 102, 103, 104, 105, 106, 107, 108, 109});
  CHECK(chunks[1] == std::vector<int>{1, 111, 112, 113, 114, 115, 116, 117, 118, 119});
  CHECK(perplexity_chunks(tokens, 10, 1, 1, "text").size() == 1);
  CHECK(first_scored_position(10) == 5);  // positions 5..8 predict tokens 6..9
  CHECK(error_of([&] { perplexity_chunks(tokens, 12, 1, 0, "text"); }) ==
        "text has 23 tokens; a context of 12 needs at least 24 (two chunks)");
  CHECK(contains(error_of([&] { perplexity_chunks(tokens, 3, 1, 0, "text"); }), "--ctx 3 is too small"));
}

TEST_CASE("perplexity and eval from ids files: a checkpoint without tokenizer.model (tied, rope_theta 500000, vocab 256; GQA)") {
  const llama_test::TempDir dir;
  REQUIRE(!std::filesystem::exists(reference_dir("tied_bf16") / "tokenizer.model"));
  REQUIRE(!std::filesystem::exists(reference_dir("sharded_f16") / "tokenizer.model"));
  // Twice the reference sequence (BOS first): with --ctx 24 both chunks are the sequence itself,
  // whose logits transformers computed (tests/data/llama/NAME/logits.npy).
  for (const std::string name : {"tied_bf16", "sharded_f16"}) {
    const std::string line = reference_ids_line(name);
    write_file(dir.path() / (name + ".ids"), line + "\n" + line + "\n");
  }
  const std::string tied = reference_dir("tied_bf16").string(), sharded = reference_dir("sharded_f16").string();

  SUBCASE("perplexity, student patched in memory") {
    run_command_line({"perplexity", "--model", tied, "--ids-input", "--file", (dir.path() / "tied_bf16.ids").string(),
                      "--ctx", "24", "--layers", "0", "--block", "16", "--projection", "calibrated", "--calibration",
                      (dir.path() / "tied_bf16.ids").string(), "--out", (dir.path() / "ppl.json").string()});
    const auto json = nlohmann::json::parse(read_file(dir.path() / "ppl.json"));
    const auto& s = json.at("statistics");
    CHECK(json.at("chunks") == 2);
    CHECK(s.at("tokens") == 22);  // 2 chunks x positions 12..22
    check_close(s.at("ppl_base").at("value").get<double>(), transformers_perplexity("tied_bf16"), 1e-4);
    CHECK(s.at("kld").at("value").get<double>() > 0);
    CHECK(s.at("ppl_q").at("value").get<double>() != s.at("ppl_base").at("value").get<double>());
  }
  SUBCASE("perplexity, --student: the same GQA checkpoint has KLD 0") {
    run_command_line({"perplexity", "--model", sharded, "--student", sharded, "--ids-input", "--file",
                      (dir.path() / "sharded_f16.ids").string(), "--ctx", "24", "--out",
                      (dir.path() / "ppl.json").string()});
    const auto s = nlohmann::json::parse(read_file(dir.path() / "ppl.json")).at("statistics");
    const double reference = transformers_perplexity("sharded_f16");
    check_close(s.at("ppl_base").at("value").get<double>(), reference, 1e-4);
    check_close(s.at("ppl_q").at("value").get<double>(), reference, 1e-4);
    CHECK(s.at("kld").at("value").get<double>() == 0);
    CHECK(s.at("same_top").at("value").get<double>() == 1);
  }
  SUBCASE("eval: prompts, calibration and held-out text as ids files") {
    const std::string ids = (dir.path() / "tied_bf16.ids").string();
    write_file(dir.path() / "prompts.ids", "1,122,132,194\n\n1,243,11,39,211,243,66\n");
    run_command_line({"eval", "--model", tied, "--ids-input", "--prompts", (dir.path() / "prompts.ids").string(),
                      "--calibration", ids, "--heldout", ids, "--max-len", "24", "--layers", "0", "--block", "16",
                      "--pp", "8", "--tg", "4", "-r", "1", "--out", (dir.path() / "eval").string()});
    const auto rows = nlohmann::json::parse(read_file(dir.path() / "eval" / "results.json")).at("rows");
    REQUIRE(rows.size() == 2);
    CHECK(rows[0].at("prompts").size() == 2);
    CHECK(rows[0].at("prompts")[1].at("tokens") == 7);
    const double reference = transformers_perplexity("tied_bf16");
    check_close(rows[0].at("heldout").at("ppl_base").at("value").get<double>(), reference, 1e-4);
    check_close(rows[0].at("heldout").at("ppl_q").at("value").get<double>(), reference, 1e-4);
    CHECK(rows[0].at("heldout").at("kld").at("value").get<double>() == 0);
    CHECK(rows[1].at("heldout").at("kld").at("value").get<double>() > 0);
    CHECK(rows[1].at("heldout").at("ppl_base") == rows[0].at("heldout").at("ppl_base"));
  }
  SUBCASE("without --ids-input a checkpoint without tokenizer.model says what to do") {
    CHECK(contains(error_of([&] {
                     run_command_line({"perplexity", "--model", tied, "--student", tied, "--file",
                                       (dir.path() / "tied_bf16.ids").string(), "--ctx", "4"});
                   }),
                   "has no tokenizer.model (SentencePiece); for a tokenizer.json, write the inputs as token ids with "
                   "tools/tokenize_hf.py and pass --ids-input"));
  }
  SUBCASE("an id outside the vocabulary is named before any work") {
    write_file(dir.path() / "bad.ids", "1,2,3\n1,256\n");
    CHECK(contains(error_of([&] {
                     run_command_line({"perplexity", "--model", tied, "--student", tied, "--ids-input", "--file",
                                       (dir.path() / "bad.ids").string(), "--ctx", "4"});
                   }),
                   "bad.ids, sequence 2 (non-blank line): id 256 (entry 2) is outside the model's vocabulary of 256"));
  }
}
