#include "evaluation_commands.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>

#include "engine/error.hpp"
#include "engine/output_file.hpp"
#include "evaluation/patched_checkpoint.hpp"
#include "evaluation/report.hpp"
#include "evaluation/sensitivity.hpp"
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
  command.add_option("--model", o.eval.model, "Hugging Face Llama checkpoint directory, or a PATCHED one written by "
                     "`patch` (its base is the teacher, its saved patch the student)")
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
  command.add_option("--heldout-chunks", o.eval.heldout_chunks,
                     "chunks of max-len tokens of the held-out text for the llama-perplexity columns (PPL(Q), "
                     "PPL(base), KLD, Δp, same top p; default: all that fit)")
      ->check(CLI::Range(1, 1 << 30));
  add_ids_input_option(command, o.eval.ids_input);
  add_threads_option(command, o.threads);
  command.add_option("--cache-dir", o.eval.cache_dir,
                     "where the teacher's logits are cached (default: OUT/cache, or ./fftmat-cache for eval)");
}

/// What eval and sweep check before any long work: the output and cache directories can be
/// written, and the throughput lengths fit the model's context.
void check_before_work(const EvalSettings& settings, const std::filesystem::path& out, const LlamaConfig& config) {
  check_speed_lengths(settings.speed, config, "--pp", "--tg");
  if (!out.empty()) require_writable_directory(out, "output directory (--out)");
  require_writable_directory(settings.cache_dir, "teacher cache directory (--cache-dir)");
}

/// eval's output: the table on stdout, and the report files when --out is given.
void print_eval_rows(const CommonOptions& o, const std::vector<RowResult>& rows, const EvalSettings& settings,
                     const LlamaConfig& config) {
  finish_progress_line();
  std::cout << markdown_table(rows);
  if (!o.out.empty()) {
    write_report(o.out, rows, settings, config);
    std::cerr << "wrote " << (o.out / "report.md").string() << ", results.csv and results.json\n";
  }
}

/// eval of a PATCHED model: its base (the teacher) against its saved patch, calibrated once by
/// `patch`; the patch options would describe another patch, so they are refused.
void run_eval_saved_patch(const CommonOptions& o, EvalSettings settings,
                          const std::vector<CLI::Option*>& patch_option_list) {
  for (const CLI::Option* option : patch_option_list) {
    check(option->count() == 0, "--model ", settings.model, " is a patched checkpoint, which eval measures as saved; ",
          option->get_name(), " would describe another patch (give the base checkpoint to patch it anew)");
  }
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  auto prefix = std::make_shared<std::string>("");
  Evaluator evaluator(settings, progress_printer(prefix));
  std::vector<RowResult> rows;
  *prefix = "[original] ";
  rows.push_back(evaluator.evaluate("Original (baseline)", PatchSettings{}));
  *prefix = "[saved patch] ";
  rows.push_back(evaluator.evaluate_saved_patch(describe(*evaluator.saved_patch())));
  print_eval_rows(o, rows, settings, evaluator.config());
}

void run_eval(const CommonOptions& o, const PatchOptions& patch_options,
              const std::vector<CLI::Option*>& patch_option_list) {
  EvalSettings settings = o.eval;
  if (settings.cache_dir.empty()) settings.cache_dir = o.out.empty() ? "fftmat-cache" : o.out / "cache";
  if (has_saved_patch(settings.model)) return run_eval_saved_patch(o, settings, patch_option_list);
  // Everything the command line says is checked against the model before the long work starts.
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  const PatchSettings patch = patch_settings(patch_options, config);

  auto prefix = std::make_shared<std::string>("");
  Evaluator evaluator(settings, progress_printer(prefix));
  std::vector<RowResult> rows;
  *prefix = "[original] ";
  rows.push_back(evaluator.evaluate("Original (baseline)", PatchSettings{}));
  *prefix = "[patched] ";
  const std::string suffix = patch.spectra == fftmat::SpectrumPrecision::bfloat16 ? " (bfloat16 spectra)" : "";
  rows.push_back(evaluator.evaluate(format_layers(patch.layers) + " " + projection_name(patch.projection) + suffix, patch));
  print_eval_rows(o, rows, settings, evaluator.config());
}

void run_sweep(const CommonOptions& o, const std::filesystem::path& grid_file) {
  EvalSettings settings = o.eval;
  if (settings.cache_dir.empty()) settings.cache_dir = o.out / "cache";
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  std::vector<GridRow> grid =
      grid_file.empty() ? parse_grid(default_grid_text(), "the default grid", config)
                        : parse_grid(read_text_file(grid_file, 1 << 20), grid_file.string(), config);
  // Rows whose layers are chosen on held-out selection windows need them.
  for (const GridRow& row : grid) {
    if ((row.least_sensitive_budget || row.least_sensitive_count) && settings.selection_windows == 0) {
      settings.selection_windows = 4;
    }
  }

  auto prefix = std::make_shared<std::string>("[setup] ");
  Evaluator evaluator(settings, progress_printer(prefix));
  std::vector<RowResult> rows;
  SensitivityScans scans(evaluator.config().num_hidden_layers,
                         [&](const PatchSettings& patch) { return evaluator.selection_kl(patch); });
  for (std::size_t k = 0; k < grid.size(); ++k) {
    *prefix = "[" + std::to_string(k + 1) + "/" + std::to_string(grid.size()) + " " + grid[k].name + "] ";
    if (grid[k].least_sensitive_budget || grid[k].least_sensitive_count) {
      grid[k].settings.layers = scans.layers_for(grid[k]);
      grid[k].name += " (" + format_layers(grid[k].settings.layers) + ")";
      if (grid[k].settings.layers.empty()) grid[k].settings.projection = Projection::dense;
    }
    rows.push_back(evaluator.evaluate(grid[k].name, grid[k].settings));
    write_report(o.out, rows, settings, evaluator.config());  // a partial report survives an interruption
  }
  if (const SavedPatch* saved = evaluator.saved_patch()) {  // a PATCHED model: its patch is the last row
    *prefix = "[saved patch] ";
    rows.push_back(evaluator.evaluate_saved_patch(describe(*saved)));
    write_report(o.out, rows, settings, evaluator.config());
  }
  finish_progress_line();
  std::cout << markdown_table(rows);
  std::cerr << "wrote " << (o.out / "report.md").string() << ", results.csv and results.json\n";
}

void run_sensitivity_command(const CommonOptions& o, int block, const std::string& projection, double damping,
                             double kl_budget, int selection_windows) {
  EvalSettings settings = o.eval;
  if (settings.cache_dir.empty()) settings.cache_dir = o.out / "cache";
  settings.selection_windows = selection_windows;
  const LlamaConfig config = load_llama_config(settings.model / "config.json");
  check_before_work(settings, o.out, config);
  check(std::isfinite(kl_budget) && kl_budget >= 0, "--kl-budget must be finite and >= 0, got ", kl_budget);
  PatchSettings patch;
  patch.layers = {0};  // checked as a one-layer patch; each layer in turn is patched alone
  patch.block_size = block;
  patch.projection = parse_projection(projection);
  patch.damping = damping;
  check(patch.projection != Projection::dense, "--projection dense patches nothing: choose a projection");
  check_patch_settings(patch, config);

  auto prefix = std::make_shared<std::string>("[setup] ");
  Evaluator evaluator(settings, progress_printer(prefix));
  const SensitivityStudy study =
      run_sensitivity(evaluator, patch, kl_budget, [&](const std::string& stage) { *prefix = "[" + stage + "] "; });
  finish_progress_line();
  write_sensitivity_report(o.out, study, settings, config);
  std::cout << read_text_file(o.out / "sensitivity.md", 1 << 20);
  std::cerr << "wrote " << (o.out / "sensitivity.md").string() << ", sensitivity.csv and sensitivity.json\n";
}

}  // namespace

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

std::vector<CLI::Option*> add_patch_options(CLI::App& command, PatchOptions& o) {
  return {
      command.add_option("--layers", o.layers, "layers to patch: 0, 0-3, 0,5,9 or all")->capture_default_str(),
      command.add_option("--block", o.block, "block size b (must divide hidden and intermediate sizes)")
          ->capture_default_str(),
      command.add_option("--projection", o.projection,
                         "frobenius (nearest in Frobenius norm), calibrated (closed-form fit on the teacher's "
                         "activations), sequential (layer by layer on the patched student's inputs), lowrank and "
                         "lowrank-sequential (the low-rank baseline with as many parameters as block size --block: "
                         "rank floor(mn / (b (m + n)))), scaled-sequential (sequential, each projection C diag(s_in) "
                         "with the input scale fitted), bc-lowrank-sequential (sequential, each projection C + U V with "
                         "the budget of --block shared: C of block size 2b, U V the rank that fits in the other half, "
                         "fitted jointly), zero (MLP removed)")
          ->capture_default_str(),
      command.add_option("--damping", o.damping, "calibration damping, relative to trace(G_f)/q per frequency bin (low-rank: trace(G)/n)")
          ->capture_default_str(),
      command.add_option("--spectra", o.spectra,
                         "precision of the spectra that block-circulant products read: full (float) or bfloat16 (half "
                         "the bytes; projections with fewer than 8 block rows keep float)")
          ->capture_default_str()
          ->check(CLI::IsMember({"full", "bfloat16"}))};
}

PatchSettings patch_settings(const PatchOptions& o, const LlamaConfig& config) {
  PatchSettings patch;
  patch.layers = parse_layers(o.layers, config.num_hidden_layers);
  patch.block_size = o.block;
  patch.projection = parse_projection(o.projection);
  patch.damping = o.damping;
  patch.spectra = o.spectra == "bfloat16" ? fftmat::SpectrumPrecision::bfloat16 : fftmat::SpectrumPrecision::full;
  check_patch_settings(patch, config);
  return patch;
}

void add_ids_input_option(CLI::App& command, bool& ids_input) {
  command.add_flag("--ids-input", ids_input,
                   "the text inputs are files of token ids (one sequence per line, comma-separated, BOS included; "
                   "tools/tokenize_hf.py writes them from a tokenizer.json), for models without tokenizer.model");
}

std::function<void()> add_evaluation_commands(CLI::App& app) {
  auto common = std::make_shared<CommonOptions>();
  auto patch = std::make_shared<PatchOptions>();
  auto grid = std::make_shared<std::filesystem::path>();

  CLI::App* eval = app.add_subcommand(
      "eval", "Patch the MLPs of chosen layers with block-circulant matrices and compare the patched model "
              "(student) with the original (teacher): cosine, KL, top-1, top-5 of last-token logits, KL and "
              "top-1 over all positions, perplexity on held-out text, prefill and decode tokens/s");
  add_common_options(*eval, *common);
  auto patch_option_list = std::make_shared<std::vector<CLI::Option*>>(add_patch_options(*eval, *patch));
  eval->add_option("--out", common->out, "also write report.md, results.csv and results.json here");

  CLI::App* sweep = app.add_subcommand(
      "sweep", "Evaluate a grid of configurations (default: the study's eleven rows, then ours) and write "
               "report.md, results.csv and results.json (plot them with scripts/plot_evaluation.py)");
  add_common_options(*sweep, *common);
  sweep->add_option("--grid", *grid, "grid file: lines of 'LAYERS BLOCK PROJECTION NAME', LAYERS as for --layers, "
                "least-sensitive:BUDGET or least-sensitive-layers:K[:PROJECTION] (docs/evaluation.md; "
                "default: built in)")
      ->check(CLI::ExistingFile);
  sweep->add_option("--out", common->out, "output directory")->required();

  auto kl_budget = std::make_shared<double>(0.1);
  auto selection_windows = std::make_shared<int>(4);
  CLI::App* sensitivity = app.add_subcommand(
      "sensitivity", "Patch each layer's MLP alone and rank the layers by all-position KL on held-out selection "
                     "windows; then the greedy configuration: the least sensitive layers, refitted together, while "
                     "that KL stays within --kl-budget. Writes sensitivity.md, .csv and .json (plot them with "
                     "scripts/plot_evaluation.py)");
  add_common_options(*sensitivity, *common);
  sensitivity->add_option("--block", patch->block, "block size b (for low-rank projections: the budget of b)")
      ->capture_default_str();
  sensitivity->add_option("--projection", patch->projection, "as for eval (default sequential)")->default_str("sequential");
  sensitivity->add_option("--damping", patch->damping, "calibration damping")->capture_default_str();
  sensitivity->add_option("--kl-budget", *kl_budget,
                          "largest all-position KL(teacher || student) on the selection windows, in nats")
      ->capture_default_str();
  sensitivity->add_option("--selection-windows", *selection_windows,
                          "windows of max-len tokens at the end of the held-out text (no reported metric reads "
                          "them) that rank the layers and choose the configuration")
      ->capture_default_str()->check(CLI::Range(1, 1000));
  sensitivity->add_option("--out", common->out, "output directory")->required();
  return [=] {
    if (!*eval && !*sweep && !*sensitivity) return;
    use_threads(common->threads);
    if (*eval) run_eval(*common, *patch, *patch_option_list);
    if (*sweep) run_sweep(*common, *grid);
    if (*sensitivity) {
      // --projection's default is calibrated for eval; the scan's is sequential.
      const std::string chosen = sensitivity->count("--projection") > 0 ? patch->projection : "sequential";
      run_sensitivity_command(*common, patch->block, chosen, patch->damping, *kl_budget, *selection_windows);
    }
  };
}

}  // namespace llama
