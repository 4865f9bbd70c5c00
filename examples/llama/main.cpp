// fftmat-llama: runs a Llama-2 checkpoint as downloaded from the Hugging Face hub on the CPU.
//   fftmat-llama tokenize --model DIR --prompt TEXT
//   fftmat-llama logits   --model DIR --prompt TEXT --out FILE.npy [--all-positions]
//   fftmat-llama generate --model DIR --prompt TEXT --tokens N
//   fftmat-llama bench    --model DIR [-p 128] [-n 32] [-r 3]
//   fftmat-llama eval     [--model DIR] --layers 0-3 --block 64 --projection sequential [--out DIR]
//   fftmat-llama sweep    [--model DIR] [--grid FILE] --out DIR
//   fftmat-llama perplexity --model DIR [--student DIR | --layers 0 --block 64 ...] --file TEXT --ctx 512
//   fftmat-llama patch    --model DIR --layers 0-3 --block 64 --projection sequential --out PATCHED
//   fftmat-llama sensitivity [--model DIR] --block 64 --projection sequential --kl-budget 0.1 --out DIR
// Every --model may be a PATCHED directory (evaluation/patched_checkpoint.hpp). The program is the
// top layer: engine/ runs the model, evaluation/ patches and measures it (docs/llama.md, Architecture).

#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "engine/bench.hpp"
#include "engine/blas_runtime.hpp"
#include "engine/error.hpp"
#include "engine/finite.hpp"
#include "engine/model.hpp"
#include "engine/npy.hpp"
#include "engine/tokenizer.hpp"
#include "evaluation/evaluation.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "evaluation_commands.hpp"
#include "patch_command.hpp"
#include "perplexity_command.hpp"
#include "threads.hpp"

namespace {

using llama::check;
using llama::seconds_since;

struct Options {
  std::filesystem::path model;
  std::filesystem::path tokenizer;  // default: MODEL/tokenizer.model
  std::string prompt;
  std::string ids;  // --ids as given: parsed by llama::parse_token_ids
  std::filesystem::path out;
  bool all_positions = false;
  int tokens = 32;
  int threads = 0;  // 0: OpenMP's default (all cores)
  llama::BenchSettings bench;
  bool no_bandwidth = false;
};

std::filesystem::path tokenizer_path(const Options& options) {
  return options.tokenizer.empty() ? options.model / "tokenizer.model" : options.tokenizer;
}

/// The prompt's ids: --ids as given, or --prompt through the tokenizer (BOS first).
std::vector<int> prompt_ids(const Options& options) {
  if (!options.ids.empty()) return llama::parse_token_ids(options.ids);
  check(!options.prompt.empty(), "give the prompt with --prompt TEXT or --ids ID,ID,...");
  return llama::Tokenizer(tokenizer_path(options)).encode(options.prompt);
}

void run_tokenize(const Options& options) {
  const llama::Tokenizer tokenizer(tokenizer_path(options));
  const std::vector<int> ids = tokenizer.encode(options.prompt);
  for (std::size_t k = 0; k < ids.size(); ++k) std::cout << (k ? " " : "") << ids[k];
  std::cout << '\n';
}

void run_logits(const Options& options) {
  const std::vector<int> ids = prompt_ids(options);
  llama::Model model = llama::load_model(options.model);
  llama::KvCache cache = model.make_cache(static_cast<int>(ids.size()));
  const auto which = options.all_positions ? llama::Logits::all : llama::Logits::last;
  const std::vector<float> logits = model.forward(ids, cache, which);
  const std::size_t vocab = static_cast<std::size_t>(model.config().vocab_size);
  const std::size_t first_position = options.all_positions ? 0 : ids.size() - 1;
  llama::require_finite_logits(logits.data(), logits.size() / vocab, vocab,
                               "nothing written to " + options.out.string(), first_position);
  const std::vector<std::size_t> shape =
      options.all_positions ? std::vector<std::size_t>{ids.size(), vocab} : std::vector<std::size_t>{vocab};
  llama::write_npy(options.out, logits.data(), shape);
  std::cerr << "wrote " << (options.all_positions ? ids.size() : 1) << " x " << vocab << " logits for " << ids.size()
            << " tokens to " << options.out.string() << '\n';
}

void run_generate(const Options& options) {
  std::optional<llama::Tokenizer> tokenizer;
  if (options.ids.empty() || std::filesystem::exists(tokenizer_path(options))) tokenizer.emplace(tokenizer_path(options));
  const std::vector<int> prompt =
      options.ids.empty() ? tokenizer->encode(options.prompt) : llama::parse_token_ids(options.ids);
  check(options.tokens >= 1, "--tokens must be positive");

  llama::Model model = llama::load_model(options.model);
  llama::KvCache cache = model.make_cache(static_cast<int>(prompt.size()) + options.tokens);
  const auto prefill_start = std::chrono::steady_clock::now();
  std::vector<float> logits = model.forward(prompt, cache, llama::Logits::last);
  const double prefill_seconds = seconds_since(prefill_start);

  if (tokenizer) std::cout << tokenizer->decode(prompt) << std::flush;
  std::vector<int> generated;
  std::string text;
  const auto decode_start = std::chrono::steady_clock::now();
  for (int step = 0; step < options.tokens; ++step) {
    const std::size_t position = prompt.size() - 1 + static_cast<std::size_t>(step);
    llama::require_finite_logits(logits.data(), 1, logits.size(), "generation step " + std::to_string(step + 1),
                                 position);
    const int next = static_cast<int>(std::max_element(logits.begin(), logits.end()) - logits.begin());  // greedy
    if (next == model.config().eos_token_id) break;
    generated.push_back(next);
    if (tokenizer) {  // decode the whole continuation: SentencePiece spacing depends on neighbours
      const std::string now = tokenizer->decode(generated);
      std::cout << now.substr(std::min(text.size(), now.size())) << std::flush;
      text = now;
    } else {
      std::cout << (step ? " " : "") << next << std::flush;
    }
    if (step + 1 < options.tokens) logits = model.forward({next}, cache, llama::Logits::last);
  }
  const double decode_seconds = seconds_since(decode_start);
  std::cout << '\n';
  std::fprintf(stderr, "prefill: %zu tokens in %.3f s (%.2f tokens/s); decode: %zu tokens in %.3f s (%.2f tokens/s)\n",
               prompt.size(), prefill_seconds, double(prompt.size()) / prefill_seconds, generated.size(), decode_seconds,
               double(generated.size()) / decode_seconds);
}

void run_bench(Options options) {
  llama::Model model = llama::load_model(options.model);
  llama::check_speed_lengths(options.bench, model.config(), "--prompt-tokens", "--gen-tokens");
  options.bench.measure_bandwidth = !options.no_bandwidth;
  llama::run_bench(model, options.bench, std::cout);
}

}  // namespace

int main(int argc, char** argv) {
  if (!blas_runtime::use_best_kernels(argv)) return 1;  // may restart the program once, so first
  CLI::App app{"fftmat-llama: run a Llama-2 checkpoint (Hugging Face layout: config.json, safetensors, "
               "tokenizer.model) on the CPU. Weights stay in their checkpoint dtype (F32, F16, BF16), "
               "memory-mapped; arithmetic is float32 with Hugging Face LlamaForCausalLM semantics."};
  app.require_subcommand(1);
  Options options;

  auto add_model = [&](CLI::App* command) {
    command->add_option("--model", options.model, "Checkpoint directory: config.json and model.safetensors or "
                                                  "model.safetensors.index.json with its shards, or a "
                                                  "directory written by `patch`")
        ->required();
    llama::add_threads_option(*command, options.threads);
  };
  auto add_prompt = [&](CLI::App* command) {
    auto* prompt = command->add_option("--prompt", options.prompt,
                                       "Prompt text, tokenized with MODEL/tokenizer.model; BOS is prepended");
    command->add_option("--ids", options.ids, "Token ids instead of --prompt, e.g. 1,306,4658 (include BOS yourself)")
        ->check(CLI::Validator(
            [](const std::string& text) {
              try {
                llama::parse_token_ids(text);
                return std::string();
              } catch (const llama::error& e) {
                return std::string(e.what());
              }
            },
            "ID,ID,...", "token ids"))
        ->excludes(prompt);
    command->add_option("--tokenizer", options.tokenizer, "SentencePiece model (default: MODEL/tokenizer.model)");
  };

  auto* tokenize = app.add_subcommand("tokenize", "Print the token ids of a prompt (BOS first)");
  add_model(tokenize);
  tokenize->add_option("--prompt", options.prompt, "Text to tokenize")->required();
  tokenize->add_option("--tokenizer", options.tokenizer, "SentencePiece model (default: MODEL/tokenizer.model)");

  auto* logits = app.add_subcommand("logits", "Run a prefill and save logits as float32 .npy");
  add_model(logits);
  add_prompt(logits);
  logits->add_option("--out", options.out, "Output .npy file (written atomically)")->required();
  logits->add_flag("--all-positions", options.all_positions,
                   "Save every position's logits (T x vocab) instead of the last position's (vocab)");

  auto* generate = app.add_subcommand("generate", "Greedy generation: prefill the prompt, then decode with a KV cache");
  add_model(generate);
  add_prompt(generate);
  generate->add_option("--tokens", options.tokens, "Tokens to generate (stops early at EOS)")
      ->capture_default_str()->check(CLI::PositiveNumber);

  auto* bench = app.add_subcommand("bench", "llama-bench style speed: prefill (pp) and decode (tg) tokens/s, "
                                            "decode GB/s against the measured memory bandwidth");
  add_model(bench);
  bench->add_option("-p,--prompt-tokens", options.bench.prompt_tokens, "Prefill length for pp")
      ->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("-n,--gen-tokens", options.bench.generated_tokens, "Decoded tokens for tg")
      ->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_option("-r,--repetitions", options.bench.repetitions, "Timed repetitions after one warm-up")
      ->capture_default_str()->check(CLI::PositiveNumber);
  bench->add_flag("--no-bandwidth", options.no_bandwidth, "Skip the memory-bandwidth measurement");

  const auto run_evaluation = llama::add_evaluation_commands(app);  // eval and sweep
  const auto run_perplexity = llama::add_perplexity_command(app);
  const auto run_patch = llama::add_patch_command(app);

  CLI11_PARSE(app, argc, argv);
  try {
    llama::use_threads(options.threads);
    if (*tokenize) run_tokenize(options);
    if (*logits) run_logits(options);
    if (*generate) run_generate(options);
    if (*bench) run_bench(options);
    run_evaluation();
    run_perplexity();
    run_patch();
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
