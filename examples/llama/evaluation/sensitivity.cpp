#include "sensitivity.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <map>
#include <numeric>
#include <sstream>

#include "engine/error.hpp"
#include "engine/output_file.hpp"
#include "report.hpp"

namespace llama {
namespace {

/// "layer 3" or "layers 0,2-4": the greedy configuration's row name.
std::string chosen_name(const std::vector<int>& layers, double budget) {
  if (layers.empty()) return "no layer within selection KL " + format_number("%g", budget);
  return std::to_string(layers.size()) + " least sensitive (" + format_layers(layers) + "), selection KL <= " +
         format_number("%g", budget);
}

}  // namespace

std::vector<int> rank_by_sensitivity(const std::vector<double>& kl) {
  for (std::size_t l = 0; l < kl.size(); ++l) {
    check(!std::isnan(kl[l]), "layer ", l, " has a NaN selection KL: it cannot be ranked");
  }
  std::vector<int> order(kl.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return kl[a] < kl[b]; });
  return order;
}

std::vector<GreedyStep> greedy_least_sensitive(const std::vector<int>& ranking, double budget,
                                               const std::function<double(const std::vector<int>&)>& selection_kl) {
  check(std::isfinite(budget) && budget >= 0, "the KL budget must be finite and >= 0, got ", budget);
  std::vector<GreedyStep> steps;
  std::vector<int> layers;
  for (const int layer : ranking) {
    layers.push_back(layer);
    GreedyStep step;
    step.layers = layers;
    std::sort(step.layers.begin(), step.layers.end());
    step.selection_kl = selection_kl(step.layers);
    step.within_budget = step.selection_kl <= budget;  // NaN is never within budget
    steps.push_back(step);
    if (!step.within_budget) break;
  }
  return steps;
}

std::vector<int> chosen_layers(const std::vector<GreedyStep>& steps) {
  for (auto it = steps.rbegin(); it != steps.rend(); ++it) {
    if (it->within_budget) return it->layers;
  }
  return {};
}

namespace {

/// The greedy walk with the single-layer measurements already known.
std::vector<GreedyStep> greedy_from_scan(const SensitivityScans::SelectionKl& selection_kl, const PatchSettings& patch,
                                         double kl_budget, const std::vector<double>& layer_kl,
                                         const std::vector<int>& ranking) {
  return greedy_least_sensitive(ranking, kl_budget, [&](const std::vector<int>& layers) {
    if (layers.size() == 1) return layer_kl[std::size_t(layers.front())];
    PatchSettings settings = patch;
    settings.layers = layers;
    return selection_kl(settings);
  });
}

PatchSettings with_layers(PatchSettings patch, std::vector<int> layers) {
  patch.layers = std::move(layers);
  if (patch.layers.empty()) patch.projection = Projection::dense;
  return patch;
}

}  // namespace

std::vector<int> least_sensitive_layers(const std::vector<int>& ranking, int count) {
  check(count >= 1 && std::size_t(count) <= ranking.size(), "the number of least sensitive layers must be in 1..",
        ranking.size(), ", got ", count);
  std::vector<int> layers(ranking.begin(), ranking.begin() + count);
  std::sort(layers.begin(), layers.end());
  return layers;
}

SensitivityScans::SensitivityScans(int num_layers, SelectionKl selection_kl)
    : num_layers_(num_layers), selection_kl_(std::move(selection_kl)) {}

const std::vector<double>& SensitivityScans::layer_kl(const PatchSettings& patch) {
  const auto key = std::make_tuple(patch.projection, patch.block_size, patch.damping, patch.spectra);
  auto found = scans_.find(key);
  if (found == scans_.end()) {
    std::vector<double> kl;
    for (int l = 0; l < num_layers_; ++l) kl.push_back(selection_kl_(with_layers(patch, {l})));
    found = scans_.emplace(key, std::move(kl)).first;
  }
  return found->second;
}

std::vector<int> SensitivityScans::layers_for(const GridRow& row) {
  if (row.least_sensitive_budget) {
    const std::vector<double>& kl = layer_kl(row.settings);
    return chosen_layers(
        greedy_from_scan(selection_kl_, row.settings, *row.least_sensitive_budget, kl, rank_by_sensitivity(kl)));
  }
  if (row.least_sensitive_count) {
    if (*row.least_sensitive_count == num_layers_) return parse_layers("all", num_layers_);  // whatever the ranking
    PatchSettings ranking = row.settings;
    ranking.projection = row.ranked_by;
    return least_sensitive_layers(rank_by_sensitivity(layer_kl(ranking)), *row.least_sensitive_count);
  }
  return row.settings.layers;
}

SensitivityStudy run_sensitivity(Evaluator& evaluator, const PatchSettings& patch, double kl_budget,
                                 const std::function<void(const std::string&)>& stage) {
  SensitivityStudy study;
  study.patch = patch;
  study.kl_budget = kl_budget;
  stage("original");
  study.original = evaluator.evaluate("Original (baseline)", PatchSettings{});
  const int layers = evaluator.config().num_hidden_layers;
  for (int l = 0; l < layers; ++l) {
    stage("layer " + std::to_string(l) + "/" + std::to_string(layers - 1) + " alone");
    double kl = 0;
    study.per_layer.push_back(evaluator.evaluate("layer " + std::to_string(l) + " alone, " +
                                                     projection_name(patch.projection) + " b=" +
                                                     std::to_string(patch.block_size),
                                                 with_layers(patch, {l}), &kl));
    study.layer_selection_kl.push_back(kl);
  }
  study.ranking = rank_by_sensitivity(study.layer_selection_kl);
  stage("greedy");
  study.steps = greedy_from_scan([&](const PatchSettings& settings) { return evaluator.selection_kl(settings); },
                                 patch, kl_budget, study.layer_selection_kl, study.ranking);
  const std::vector<int> chosen = chosen_layers(study.steps);
  stage("chosen configuration");
  study.chosen = evaluator.evaluate(chosen_name(chosen, kl_budget), with_layers(patch, chosen));
  return study;
}

void write_sensitivity_report(const std::filesystem::path& directory, const SensitivityStudy& study,
                              const EvalSettings& settings, const LlamaConfig& config) {
  std::filesystem::create_directories(directory);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const std::vector<int> chosen = chosen_layers(study.steps);
  const std::string projection = projection_name(study.patch.projection);
  std::map<int, int> rank_of;
  for (std::size_t k = 0; k < study.ranking.size(); ++k) rank_of[study.ranking[k]] = int(k) + 1;

  std::ostringstream md;
  md << "# Per-layer sensitivity\n\n"
     << "Model: `" << settings.model.string() << "` (" << config.num_hidden_layers << " layers). Each layer's MLP "
     << "patched alone with `" << projection << "` at block size " << study.patch.block_size << " (damping "
     << study.patch.damping << "). " << date << ".\n\n"
     << "**Which data chose what.** Layers are ranked, and the greedy configuration chosen, by the all-position "
        "KL(teacher || student) on the selection windows: "
     << settings.selection_windows << " windows of " << settings.max_len << " tokens of `" << settings.heldout.string()
     << "`, taken from its end; the perplexity windows and the llama-perplexity chunks come from the text before "
        "them. The evaluation prompts (`" << settings.prompts.string()
     << "`, columns KL / KL all positions) and the perplexity windows only report. Calibration: `"
     << settings.calibration.string() << "`.\n\n"
     << "| Layer | Rank (1 = least sensitive) | Selection KL | KL (all positions) | KL (last token) | "
        "Top-1 (all positions) | Perplexity |\n|---|---|---|---|---|---|---|\n";
  for (std::size_t l = 0; l < study.per_layer.size(); ++l) {
    const RowResult& r = study.per_layer[l];
    md << "| " << l << " | " << rank_of[int(l)] << " | " << format_number("%.4f", study.layer_selection_kl[l]) << " | "
       << format_number("%.4f", r.kl_all_positions.mean) << " ± " << format_number("%.4f", r.kl_all_positions.standard_error)
       << " | " << format_number("%.4f", r.kl.mean) << " | " << format_number("%.3f", r.top1_all_positions.mean) << " | "
       << format_number("%.2f", r.perplexity_student) << " |\n";
  }
  md << "\nTeacher perplexity: " << format_number("%.2f", study.original.perplexity_teacher) << ".\n\n"
     << "## Greedy: the least sensitive layers within selection KL " << format_number("%g", study.kl_budget) << "\n\n"
     << "| Step | Layers | Selection KL | Within budget |\n|---|---|---|---|\n";
  for (std::size_t k = 0; k < study.steps.size(); ++k) {
    const GreedyStep& s = study.steps[k];
    md << "| " << k + 1 << " | " << format_layers(s.layers) << " | " << format_number("%.4f", s.selection_kl) << " | "
       << (s.within_budget ? "yes" : "no") << " |\n";
  }
  md << "\nChosen: **" << chosen.size() << " layer" << (chosen.size() == 1 ? "" : "s") << " ("
     << format_layers(chosen) << ")**. On the evaluation prompts its all-position KL is "
     << format_number("%.4f", study.chosen.kl_all_positions.mean) << " ("
     << (study.chosen.kl_all_positions.mean <= study.kl_budget ? "within" : "over")
     << " the budget there too) and held-out perplexity " << format_number("%.2f", study.chosen.perplexity_student)
     << ":\n\n"
     << markdown_table({study.original, study.chosen});

  std::ostringstream csv;
  csv << "layer,sensitivity_rank,selection_kl,kl_all_positions,kl_all_positions_stderr,kl,top1_all_positions,"
         "perplexity_student,perplexity_teacher\n";
  for (std::size_t l = 0; l < study.per_layer.size(); ++l) {
    const RowResult& r = study.per_layer[l];
    csv << l << ',' << rank_of[int(l)] << ',' << study.layer_selection_kl[l] << ',' << r.kl_all_positions.mean << ','
        << r.kl_all_positions.standard_error << ',' << r.kl.mean << ',' << r.top1_all_positions.mean << ','
        << r.perplexity_student << ',' << r.perplexity_teacher << '\n';
  }

  const auto row_json = [](const RowResult& r) {
    return nlohmann::json{{"name", r.name},
                          {"layer_list", r.settings.layers},
                          {"kl", r.kl.mean},
                          {"kl_all_positions", r.kl_all_positions.mean},
                          {"kl_all_positions_stderr", r.kl_all_positions.standard_error},
                          {"top1", r.top1.mean},
                          {"top1_all_positions", r.top1_all_positions.mean},
                          {"perplexity_student", r.perplexity_student},
                          {"perplexity_teacher", r.perplexity_teacher},
                          {"decode_tokens_per_s", r.speed.decode.mean},
                          {"prefill_tokens_per_s", r.speed.prefill.mean},
                          {"mlp_parameter_bytes", r.mlp_parameter_bytes}};
  };
  nlohmann::json layers = nlohmann::json::array();
  for (std::size_t l = 0; l < study.per_layer.size(); ++l) {
    nlohmann::json entry = row_json(study.per_layer[l]);
    entry["layer"] = l;
    entry["sensitivity_rank"] = rank_of[int(l)];
    entry["selection_kl"] = study.layer_selection_kl[l];
    layers.push_back(entry);
  }
  nlohmann::json steps = nlohmann::json::array();
  for (const GreedyStep& s : study.steps) {
    steps.push_back({{"layer_list", s.layers}, {"selection_kl", s.selection_kl}, {"within_budget", s.within_budget}});
  }
  nlohmann::json chosen_json = row_json(study.chosen);
  chosen_json["meets_budget_on_eval_prompts"] = study.chosen.kl_all_positions.mean <= study.kl_budget;
  const nlohmann::json document = {
      {"model", settings.model.string()},
      {"num_hidden_layers", config.num_hidden_layers},
      {"block_size", study.patch.block_size},
      {"projection", projection},
      {"damping", study.patch.damping},
      {"kl_budget", study.kl_budget},
      {"chosen_on", {{"heldout", settings.heldout.string()},
                     {"selection_windows", settings.selection_windows},
                     {"after_perplexity_windows", settings.perplexity_windows},
                     {"max_len", settings.max_len}}},
      {"reported_on", {{"prompts", settings.prompts.string()}, {"perplexity_windows", settings.perplexity_windows}}},
      {"calibration", settings.calibration.string()},
      {"date", date},
      {"original", row_json(study.original)},
      {"layers", layers},
      {"ranking", study.ranking},
      {"greedy_steps", steps},
      {"chosen", chosen_json}};
  const std::string markdown = md.str(), table = csv.str(), json = document.dump(2) + "\n";
  write_files_atomically({{directory / "sensitivity.md", markdown}, {directory / "sensitivity.csv", table},
                          {directory / "sensitivity.json", json}});
}

}  // namespace llama
