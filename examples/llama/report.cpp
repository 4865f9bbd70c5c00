#include "report.hpp"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>
#include <sstream>

#include "error.hpp"
#include "output_file.hpp"

namespace llama {
namespace {

std::string format(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string with_error(const MeanWithError& value, const char* pattern) {
  return format(pattern, value.mean) + " ± " + format(pattern, value.standard_error);
}

std::string calibrated_column(Projection projection) {
  switch (projection) {
    case Projection::calibrated: return "Yes";
    case Projection::sequential: return "Yes (sequential)";
    case Projection::scaled_sequential: return "Yes (scaled sequential)";
    case Projection::frobenius: return "No";
    default: return "-";
  }
}

std::string block_column(const RowResult& row) {
  const Projection p = row.settings.projection;
  return p == Projection::dense || p == Projection::zero ? "-" : std::to_string(row.settings.block_size);
}

/// A CSV field quoted as RFC 4180 has it: in double quotes, each double quote doubled.
std::string csv_field(const std::string& text) {
  std::string quoted = "\"";
  for (const char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
  return quoted + '"';
}

std::string layers_column(const RowResult& row) {
  const std::size_t count = row.settings.layers.size();
  return count == 0 ? "0" : std::to_string(count) + " (" + format_layers(row.settings.layers) + ")";
}


}  // namespace

std::string default_grid_text() {
  return R"(# LAYERS BLOCK PROJECTION NAME
# The study's eleven rows (shared/seeds/results_summary.md). Its "calibrated" was gradient descent;
# ours is the closed-form calibrated projection, fitted on the teacher's activations.
none  -   dense       Original (baseline)
0     64  frobenius   1 layer, no calib
0     128 frobenius   1 layer, no calib
0     256 frobenius   1 layer, no calib
0     64  calibrated  1 layer, calibrated
0     128 calibrated  1 layer, calibrated
0     256 calibrated  1 layer, calibrated
0-3   64  frobenius   4 layers, no calib
0-3   128 frobenius   4 layers, no calib
0-7   64  calibrated  8 layers, calibrated
0-7   128 calibrated  8 layers, calibrated
# Beyond the study: what removing the MLP does (the Frobenius projection's real effect), one-shot
# against sequential calibration.
0     -   zero        1 layer, MLP zeroed
0-3   -   zero        4 layers, MLP zeroed
0-7   -   zero        8 layers, MLP zeroed
0-3   64  calibrated  4 layers, calibrated
0-3   64  sequential  4 layers, sequential
0-7   64  sequential  8 layers, sequential
0-7   128 sequential  8 layers, sequential
)";
}

std::vector<GridRow> parse_grid(const std::string& text, const std::string& source, const LlamaConfig& config) {
  std::vector<GridRow> rows;
  std::istringstream lines(text);
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    if (const std::size_t hash = line.find('#'); hash != std::string::npos) line.resize(hash);
    std::istringstream fields(line);
    std::string layers, block, projection, name;
    if (!(fields >> layers)) continue;  // blank or comment
    const std::string where = source + " line " + std::to_string(number);
    check(bool(fields >> block >> projection), where, ": expected LAYERS BLOCK PROJECTION NAME");
    std::getline(fields >> std::ws, name);
    GridRow row;
    try {
      row.settings.layers = parse_layers(layers, config.num_hidden_layers);
      row.settings.projection = parse_projection(projection);
      if (block != "-") {
        check(block.size() <= 6 && block.find_first_not_of("0123456789") == std::string::npos,
              "block size '", block, "' is not a number");
        row.settings.block_size = std::stoi(block);
      } else {
        check(row.settings.projection == Projection::dense || row.settings.projection == Projection::zero,
              "projection '", projection, "' needs a block size");
      }
      check_patch_settings(row.settings, config);
    } catch (const error& e) {
      throw error(where + ": " + e.what());
    }
    row.name = name.empty() ? layers + " " + block + " " + projection : name;
    rows.push_back(std::move(row));
  }
  check(!rows.empty(), source, " has no rows");
  return rows;
}

std::string markdown_table(const std::vector<RowResult>& rows) {
  std::ostringstream md;
  md << "| Configuration | Layers | Block Size | Calibrated | Cosine Sim | KL Div | Top-1 Acc | Top-5 Overlap | "
        "Tokens/s | Projection | KL (all positions) | Top-1 (all positions) | Perplexity | Prefill tok/s | "
        "Decode tok/s | MLP share of decode | MLP bytes/token |\n"
     << "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const RowResult& r : rows) {
    md << "| " << r.name << " | " << layers_column(r) << " | " << block_column(r) << " | "
       << calibrated_column(r.settings.projection) << " | " << with_error(r.cosine, "%.3f") << " | "
       << with_error(r.kl, "%.3f") << " | " << format("%.3f", r.top1.mean) << " | "
       << format("%.3f", r.top5_overlap.mean) << " | " << format("%.0f", r.speed.decode.mean) << " | "
       << projection_name(r.settings.projection) << " | " << with_error(r.kl_all_positions, "%.3f") << " | "
       << format("%.3f", r.top1_all_positions.mean) << " | " << format("%.2f", r.perplexity_student) << " | "
       << format("%.0f", r.speed.prefill.mean) << " ± " << format("%.0f", r.speed.prefill.stddev) << " | "
       << format("%.1f", r.speed.decode.mean) << " ± " << format("%.1f", r.speed.decode.stddev) << " | "
       << format("%.0f%%", 100 * r.mlp_share_decode) << " | " << format("%.3g", double(r.mlp_parameter_bytes))
       << " |\n";
  }
  return md.str();
}

void write_report(const std::filesystem::path& directory, const std::vector<RowResult>& rows,
                  const EvalSettings& settings, const LlamaConfig& config) {
  std::filesystem::create_directories(directory);
  const std::time_t now = std::time(nullptr);
  char date[32];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const double teacher_ppl = rows.empty() ? 0.0 : rows.front().perplexity_teacher;

  std::ostringstream md;
  md << "# Block-circulant MLP evaluation\n\n"
     << "Model: `" << settings.model.string() << "` (" << config.num_hidden_layers << " layers, hidden "
     << config.hidden_size << ", intermediate " << config.intermediate_size << ", vocab " << config.vocab_size
     << "). Evaluation prompts: `" << settings.prompts.string() << "`; calibration prompts: `"
     << settings.calibration.string() << "`; max length " << settings.max_len << " tokens. " << date << ".\n\n"
     << "The study's columns come first: cosine similarity and KL(teacher || student) in nats of the last "
        "position's logits (mean ± standard error over prompts), top-1 agreement, top-5 overlap |∩|/5, "
        "and Tokens/s (decode). Then ours: KL and top-1 over every prompt position, perplexity on held-out "
        "text (teacher: "
     << format("%.2f", teacher_ppl) << "), prefill (" << settings.speed.prompt_tokens << " tokens) and decode ("
     << settings.speed.generated_tokens << " tokens) throughput, mean ± stddev of " << settings.speed.repetitions
     << " runs, the MLPs' share of decode time (1 - t_without_MLPs / t) and the bytes the MLPs read per token.\n\n"
     << markdown_table(rows);

  std::ostringstream csv;
  csv << "name,layers,block_size,projection,cosine,cosine_stderr,kl,kl_stderr,top1,top5_overlap,"
         "kl_all_positions,top1_all_positions,perplexity_teacher,perplexity_student,prefill_tokens_per_s,"
         "prefill_stddev,decode_tokens_per_s,decode_stddev,mlp_share_prefill,mlp_share_decode,"
         "mlp_parameter_bytes,patch_seconds\n";
  for (const RowResult& r : rows) {
    csv << csv_field(r.name) << ',' << csv_field(format_layers(r.settings.layers)) << ',' << r.settings.block_size << ','
        << projection_name(r.settings.projection) << ',' << r.cosine.mean << ',' << r.cosine.standard_error << ','
        << r.kl.mean << ',' << r.kl.standard_error << ',' << r.top1.mean << ',' << r.top5_overlap.mean << ','
        << r.kl_all_positions.mean << ',' << r.top1_all_positions.mean << ',' << r.perplexity_teacher << ','
        << r.perplexity_student << ',' << r.speed.prefill.mean << ',' << r.speed.prefill.stddev << ','
        << r.speed.decode.mean << ',' << r.speed.decode.stddev << ',' << r.mlp_share_prefill << ','
        << r.mlp_share_decode << ',' << r.mlp_parameter_bytes << ',' << r.patch_seconds << '\n';
  }

  nlohmann::json json_rows = nlohmann::json::array();
  for (const RowResult& r : rows) {
    nlohmann::json prompts = nlohmann::json::array();
    for (const PromptMetrics& m : r.per_prompt) {
      prompts.push_back({{"tokens", m.tokens}, {"cosine", m.cosine}, {"kl", m.kl}, {"top1", m.top1},
                         {"top5_overlap", m.top5_overlap}, {"kl_all_positions", m.kl_all_positions},
                         {"top1_all_positions", m.top1_all_positions}});
    }
    json_rows.push_back({{"name", r.name},
                         {"layers", format_layers(r.settings.layers)},
                         {"layer_list", r.settings.layers},
                         {"block_size", r.settings.block_size},
                         {"projection", projection_name(r.settings.projection)},
                         {"damping", r.settings.damping},
                         {"spectra", r.settings.spectra == fftmat::SpectrumPrecision::bfloat16 ? "bfloat16" : "full"},
                         {"cosine", r.cosine.mean},
                         {"kl", r.kl.mean},
                         {"top1", r.top1.mean},
                         {"top5_overlap", r.top5_overlap.mean},
                         {"kl_all_positions", r.kl_all_positions.mean},
                         {"top1_all_positions", r.top1_all_positions.mean},
                         {"stderr", {{"cosine", r.cosine.standard_error}, {"kl", r.kl.standard_error},
                                     {"top1", r.top1.standard_error}, {"top5_overlap", r.top5_overlap.standard_error},
                                     {"kl_all_positions", r.kl_all_positions.standard_error},
                                     {"top1_all_positions", r.top1_all_positions.standard_error}}},
                         {"perplexity_teacher", r.perplexity_teacher},
                         {"perplexity_student", r.perplexity_student},
                         {"prefill_tokens_per_s", r.speed.prefill.mean},
                         {"prefill_stddev", r.speed.prefill.stddev},
                         {"decode_tokens_per_s", r.speed.decode.mean},
                         {"decode_stddev", r.speed.decode.stddev},
                         {"mlp_share_prefill", r.mlp_share_prefill},
                         {"mlp_share_decode", r.mlp_share_decode},
                         {"mlp_parameter_bytes", r.mlp_parameter_bytes},
                         {"patch_seconds", r.patch_seconds},
                         {"prompts", prompts}});
  }
  const nlohmann::json document = {
      {"model", settings.model.string()},
      {"config", {{"hidden_size", config.hidden_size}, {"intermediate_size", config.intermediate_size},
                  {"num_hidden_layers", config.num_hidden_layers}, {"vocab_size", config.vocab_size}}},
      {"prompts", settings.prompts.string()},
      {"calibration", settings.calibration.string()},
      {"max_len", settings.max_len},
      {"date", date},
      {"speed", {{"prompt_tokens", settings.speed.prompt_tokens},
                 {"generated_tokens", settings.speed.generated_tokens},
                 {"repetitions", settings.speed.repetitions}}},
      {"rows", json_rows}};
  const std::string markdown = md.str(), table = csv.str(), json = document.dump(2) + "\n";
  write_files_atomically({{directory / "report.md", markdown}, {directory / "results.csv", table},
                          {directory / "results.json", json}});
}

}  // namespace llama
