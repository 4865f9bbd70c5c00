#include "evaluation_commands.hpp"

#include <unistd.h>

#include <cstdio>
#include <iostream>
#include <memory>

#include "error.hpp"
#include "output_file.hpp"
#include "report.hpp"
#include "threads.hpp"

namespace llama {
namespace {

/// Settings shared by eval and sweep, with the shipped model and data as defaults.
struct CommonOptions {
  EvalSettings eval{FFTMAT_DEFAULT_MODEL, FFTMAT_LLAMA_DATA "/eval_prompts.txt",
                    FFTMAT_LLAMA_DATA "/calibration_prompts.txt", FFTMAT_LLAMA_DATA "/heldout_shakespeare.txt", ""};
  std::filesystem::path out;
  int threads = 0;  // 0: OpenMP's default (all cores)
};

void add_common_options(CLI::App& command, CommonOptions& o) {
  command.add_option("--model", o.eval.model, "Hugging Face Llama checkpoint directory")
      ->capture_default_str()->check(CLI::ExistingDirectory);
  command.add_option("--prompts", o.eval.prompts, "evaluation prompts, one per line")->capture_default_str();
  command.add_option("--calibration", o.eval.calibration, "calibration prompts, one per line (kept apart from "
                     "the evaluation prompts)")->capture_default_str();
  command.add_option("--heldout", o.eval.heldout, "held-out text for perplexity")->capture_default_str();
  command.add_option("--max-len", o.eval.max_len, "prompts and perplexity windows are cut to this many tokens")
      ->capture_default_str();
  command.add_option("--ppl-windows", o.eval.perplexity_windows, "held-out windows of max-len tokens for perplexity")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  command.add_option("--pp", o.eval.speed.prompt_tokens, "prefill tokens for the throughput measurement")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  command.add_option("--tg", o.eval.speed.generated_tokens, "decoded tokens for the throughput measurement")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  command.add_option("-r,--repetitions", o.eval.speed.repetitions, "throughput repetitions after a warm-up")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  add_threads_option(command, o.threads);
  command.add_option("--cache-dir", o.eval.cache_dir,
                     "where the teacher's logits are cached (default: OUT/cache, or ./fftmat-cache for eval)");
}

/// Status lines on stderr: rewritten in place on a terminal, one per line in a log.
std::function<void(const std::string&)> progress_printer(std::shared_ptr<std::string> prefix) {
  const bool terminal = isatty(STDERR_FILENO) != 0;
  return [prefix, terminal](const std::string& message) {
    if (terminal) {
      std::fprintf(stderr, "\r\033[K%s%s", prefix->c_str(), message.c_str());
    } else {
      std::fprintf(stderr, "%s%s\n", prefix->c_str(), message.c_str());
    }
    std::fflush(stderr);
  };
}

void finish_progress_line() {
  if (isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "\r\033[K");
}

/// What eval and sweep check before any long work: the output and cache directories can be
/// written, and the throughput lengths fit the model's context.
void check_before_work(const EvalSettings& settings, const std::filesystem::path& out, const LlamaConfig& config) {
  check_speed_lengths(settings.speed, config, "--pp", "--tg");
  if (!out.empty()) require_writable_directory(out, "output directory (--out)");
  require_writable_directory(settings.cache_dir, "teacher cache directory (--cache-dir)");
}

void run_eval(const CommonOptions& o, const std::string& layers, int block, const std::string& projection,
              double damping, const std::string& spectra) {
  EvalSettings settings = o.eval;
  if (settings.cache_dir.empty()) settings.cache_dir = o.out.empty() ? "fftmat-cache" : o.out / "cache";
  // Everything the command line says is checked against the model before the long work starts.
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  PatchSettings patch;
  patch.layers = parse_layers(layers, config.num_hidden_layers);
  patch.block_size = block;
  patch.projection = parse_projection(projection);
  patch.damping = damping;
  patch.spectra = spectra == "bfloat16" ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  check_patch_settings(patch, config);

  auto prefix = std::make_shared<std::string>("");
  Evaluator evaluator(settings, progress_printer(prefix));
  std::vector<RowResult> rows;
  *prefix = "[original] ";
  rows.push_back(evaluator.evaluate("Original (baseline)", PatchSettings{}));
  *prefix = "[patched] ";
  const std::string suffix = patch.spectra == fftmat::SpectrumPrecision::bfloat16 ? " (bfloat16 spectra)" : "";
  rows.push_back(evaluator.evaluate(format_layers(patch.layers) + " " + projection + suffix, patch));
  finish_progress_line();
  std::cout << markdown_table(rows);
  if (!o.out.empty()) {
    write_report(o.out, rows, settings, evaluator.config());
    std::cerr << "wrote " << (o.out / "report.md").string() << ", results.csv and results.json\n";
  }
}

void run_sweep(const CommonOptions& o, const std::filesystem::path& grid_file) {
  EvalSettings settings = o.eval;
  if (settings.cache_dir.empty()) settings.cache_dir = o.out / "cache";
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  const std::vector<GridRow> grid =
      grid_file.empty() ? parse_grid(default_grid_text(), "the default grid", config)
                        : parse_grid(read_text_file(grid_file, 1 << 20), grid_file.string(), config);

  auto prefix = std::make_shared<std::string>("[setup] ");
  Evaluator evaluator(settings, progress_printer(prefix));
  std::vector<RowResult> rows;
  for (std::size_t k = 0; k < grid.size(); ++k) {
    *prefix = "[" + std::to_string(k + 1) + "/" + std::to_string(grid.size()) + " " + grid[k].name + "] ";
    rows.push_back(evaluator.evaluate(grid[k].name, grid[k].settings));
    write_report(o.out, rows, settings, evaluator.config());  // a partial report survives an interruption
  }
  finish_progress_line();
  std::cout << markdown_table(rows);
  std::cerr << "wrote " << (o.out / "report.md").string() << ", results.csv and results.json\n";
}

}  // namespace

std::function<void()> add_evaluation_commands(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  auto layers = std::make_shared<std::string>("0");
  auto block = std::make_shared<int>(64);
  auto projection = std::make_shared<std::string>("calibrated");
  auto damping = std::make_shared<double>(1e-2);
  auto spectra = std::make_shared<std::string>("full");
  auto grid = std::make_shared<std::filesystem::path>();

  CLI::App* eval = app.add_subcommand(
      "eval", "Patch the MLPs of chosen layers with block-circulant matrices and compare the patched model "
              "(student) with the original (teacher): cosine, KL, top-1, top-5 of last-token logits, KL and "
              "top-1 over all positions, perplexity on held-out text, prefill and decode tokens/s");
  add_common_options(*eval, *common);
  eval->add_option("--layers", *layers, "layers to patch: 0, 0-3, 0,5,9 or all")->capture_default_str();
  eval->add_option("--block", *block, "block size b (must divide hidden and intermediate sizes)")
      ->capture_default_str();
  eval->add_option("--projection", *projection,
                   "frobenius (nearest in Frobenius norm), calibrated (closed-form fit on the teacher's "
                   "activations), sequential (layer by layer on the patched student's inputs), scaled-sequential "
                   "(sequential, each projection C diag(s_in) with the input scale fitted), zero (MLP removed)")
      ->capture_default_str();
  eval->add_option("--damping", *damping, "calibration damping, relative to trace(G_f)/q per frequency bin")
      ->capture_default_str();
  eval->add_option("--spectra", *spectra,
                   "precision of the spectra that block-circulant products read: full (float) or bfloat16 (half "
                   "the bytes; projections with fewer than 8 block rows keep float)")
      ->capture_default_str()
      ->check(CLI::IsMember({"full", "bfloat16"}));
  eval->add_option("--out", common->out, "also write report.md, results.csv and results.json here");

  CLI::App* sweep = app.add_subcommand(
      "sweep", "Evaluate a grid of configurations (default: the study's eleven rows, then ours) and write "
               "report.md, results.csv and results.json (plot them with scripts/plot_evaluation.py)");
  add_common_options(*sweep, *common);
  sweep->add_option("--grid", *grid, "grid file: lines of 'LAYERS BLOCK PROJECTION NAME' (default: built in)")
      ->check(CLI::ExistingFile);
  sweep->add_option("--out", common->out, "output directory")->required();
  return [=] {
    if (!*eval && !*sweep) return;
    use_threads(common->threads);
    if (*eval) run_eval(*common, *layers, *block, *projection, *damping, *spectra);
    if (*sweep) run_sweep(*common, *grid);
  };
}

}  // namespace llama
