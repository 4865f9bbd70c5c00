#include "report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <sstream>

#include "engine/error.hpp"
#include "engine/output_file.hpp"

namespace llama {
namespace {

std::string calibrated_column(Projection projection) {
  switch (projection) {
    case Projection::calibrated: return "Yes";
    case Projection::sequential: return "Yes (sequential)";
    case Projection::low_rank: return "Yes (low-rank)";
    case Projection::low_rank_sequential: return "Yes (low-rank, sequential)";
    case Projection::scaled_sequential: return "Yes (scaled sequential)";
    case Projection::bc_low_rank_sequential: return "Yes (block-circulant + low-rank, sequential)";
    case Projection::frobenius: return "No";
    default: return "-";
  }
}

/// Dense and zeroed MLPs have no block size.
bool has_block_size(const RowResult& r) {
  return r.settings.projection != Projection::dense && r.settings.projection != Projection::zero;
}

std::string block_column(const RowResult& row) { return has_block_size(row) ? std::to_string(row.settings.block_size) : "-"; }

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

using Getter = std::function<nlohmann::json(const RowResult&)>;

/// A value of a result row as results.csv and results.json hold it: `csv` names the CSV column
/// (empty: JSON only, for arrays), `json` the member as a JSON pointer ("/stderr/kl").
struct DataField {
  std::string csv, json;
  Getter value;  // null: no value (an empty CSV field, JSON null)
};

/// One column of the result schema: its markdown heading and cell (no heading: not in the
/// markdown table) and the data fields it stands for. The three writers read this one list, so a
/// metric is added in one place.
struct Column {
  std::string heading;
  std::function<std::string(const RowResult&)> cell;
  std::vector<DataField> data;
};

/// A column of data only (CSV and JSON, not markdown).
Column data_only(const std::string& key, Getter value) { return {"", nullptr, {{key, "/" + key, std::move(value)}}}; }

/// A column whose markdown cell is `pattern` applied to the value.
Column number(const std::string& heading, const char* pattern, const std::string& key,
              std::function<double(const RowResult&)> value) {
  return {heading, [=](const RowResult& r) { return format_number(pattern, value(r)); },
          {{key, "/" + key, [=](const RowResult& r) { return nlohmann::json(value(r)); }}}};
}

/// A mean over prompts with its standard error: CSV KEY and KEY_stderr, JSON KEY and
/// stderr/KEY; the markdown cell is "mean ± error", or the mean alone when `show_error` is false.
Column with_error(const std::string& heading, const char* pattern, const std::string& key,
                  MeanWithError RowResult::*member, bool show_error = true) {
  return {heading,
          [=](const RowResult& r) {
            return show_error ? format_number(pattern, (r.*member).mean) + " ± " + format_number(pattern, (r.*member).standard_error)
                              : format_number(pattern, (r.*member).mean);
          },
          {{key, "/" + key, [=](const RowResult& r) { return nlohmann::json((r.*member).mean); }},
           {key + "_stderr", "/stderr/" + key,
            [=](const RowResult& r) { return nlohmann::json((r.*member).standard_error); }}}};
}

/// A throughput: markdown "mean ± stddev", data PREFIX_tokens_per_s and PREFIX_stddev.
Column rate(const std::string& heading, const char* pattern, const std::string& prefix, Rate SpeedMeasurement::*member) {
  return {heading,
          [=](const RowResult& r) {
            return format_number(pattern, (r.speed.*member).mean) + " ± " + format_number(pattern, (r.speed.*member).stddev);
          },
          {{prefix + "_tokens_per_s", "/" + prefix + "_tokens_per_s",
            [=](const RowResult& r) { return nlohmann::json((r.speed.*member).mean); }},
           {prefix + "_stddev", "/" + prefix + "_stddev",
            [=](const RowResult& r) { return nlohmann::json((r.speed.*member).stddev); }}}};
}

std::string percent(double fraction) { return format_number("%.2f%%", 100 * fraction); }

/// llama-perplexity's statistics on the held-out text (perplexity.hpp): a few in the markdown
/// table, every one as data -- CSV heldout_ppl_q_value, heldout_kld_quantiles_99.9, ...; JSON the
/// object PerplexityStatistics::to_json() under "heldout".
void add_heldout_columns(std::vector<Column>& c) {
  const auto error_cell = [](const char* pattern, ValueWithError PerplexityStatistics::*member) {
    return [=](const RowResult& r) {
      return format_number(pattern, (r.heldout.*member).value) + " ± " + format_number(pattern, (r.heldout.*member).standard_error);
    };
  };
  c.push_back({"PPL(Q), llama.cpp chunks", error_cell("%.2f", &PerplexityStatistics::ppl_q), {}});
  c.push_back({"PPL(base)", error_cell("%.2f", &PerplexityStatistics::ppl_base), {}});
  c.push_back({"Mean KLD", error_cell("%.4f", &PerplexityStatistics::kld), {}});
  c.push_back({"99% KLD", [](const RowResult& r) { return format_number("%.4f", r.heldout.kld_quantiles[2]); }, {}});
  c.push_back({"Mean Δp", [](const RowResult& r) {
                 return percent(r.heldout.delta_p.value) + " ± " + percent(r.heldout.delta_p.standard_error);
               }, {}});
  c.push_back({"RMS Δp", [](const RowResult& r) { return percent(r.heldout.delta_p_rms.value); }, {}});
  c.push_back({"Same top p", [](const RowResult& r) {
                 return percent(r.heldout.same_top.value) + " ± " + percent(r.heldout.same_top.standard_error);
               }, {}});
  static_assert(kKldQuantiles[2] == 0.99, "the 99% KLD column reads kld_quantiles[2]");
  Column data{"", nullptr, {}};
  const nlohmann::json fields = PerplexityStatistics{}.to_json().flatten();
  for (const auto& [pointer, unused] : fields.items()) {
    std::string csv = "heldout" + pointer;
    std::replace(csv.begin(), csv.end(), '/', '_');
    data.data.push_back({csv, "/heldout" + pointer, [pointer = pointer](const RowResult& r) {
                           return r.heldout.to_json().at(nlohmann::json::json_pointer(pointer));
                         }});
  }
  c.push_back(std::move(data));
}

/// The result schema: the markdown table's columns in their order (the study's first), with the
/// data-only fields beside the column they belong to.
const std::vector<Column>& schema() {
  static const std::vector<Column> columns = [] {
    std::vector<Column> c;
    c.push_back({"Configuration", [](const RowResult& r) { return r.name; },
                 {{"name", "/name", [](const RowResult& r) { return nlohmann::json(r.name); }}}});
    c.push_back({"Layers", layers_column,
                 {{"layers", "/layers", [](const RowResult& r) { return nlohmann::json(format_layers(r.settings.layers)); }},
                  {"", "/layer_list", [](const RowResult& r) { return nlohmann::json(r.settings.layers); }}}});
    c.push_back({"Block Size", block_column,
                 {{"block_size", "/block_size", [](const RowResult& r) {
                     return has_block_size(r) ? nlohmann::json(r.settings.block_size) : nlohmann::json();
                   }}}});
    c.push_back({"Calibrated", [](const RowResult& r) { return calibrated_column(r.settings.projection); }, {}});
    c.push_back(with_error("Cosine Sim", "%.3f", "cosine", &RowResult::cosine));
    c.push_back(with_error("KL Div", "%.3f", "kl", &RowResult::kl));
    c.push_back(with_error("Top-1 Acc", "%.3f", "top1", &RowResult::top1, false));
    c.push_back(with_error("Top-5 Overlap", "%.3f", "top5_overlap", &RowResult::top5_overlap, false));
    c.push_back({"Tokens/s", [](const RowResult& r) { return format_number("%.0f", r.speed.decode.mean); }, {}});
    c.push_back({"Projection", [](const RowResult& r) { return std::string(projection_name(r.settings.projection)); },
                 {{"projection", "/projection",
                   [](const RowResult& r) { return nlohmann::json(projection_name(r.settings.projection)); }}}});
    c.push_back(data_only("damping", [](const RowResult& r) { return nlohmann::json(r.settings.damping); }));
    c.push_back(data_only("spectra", [](const RowResult& r) {
      return nlohmann::json(r.settings.spectra == fftmat::SpectrumPrecision::bfloat16 ? "bfloat16" : "full");
    }));
    c.push_back(with_error("KL (all positions)", "%.3f", "kl_all_positions", &RowResult::kl_all_positions));
    c.push_back(with_error("Top-1 (all positions)", "%.3f", "top1_all_positions", &RowResult::top1_all_positions, false));
    c.push_back(data_only("perplexity_teacher", [](const RowResult& r) { return nlohmann::json(r.perplexity_teacher); }));
    c.push_back(number("Perplexity", "%.2f", "perplexity_student", [](const RowResult& r) { return r.perplexity_student; }));
    c.push_back(rate("Prefill tok/s", "%.0f", "prefill", &SpeedMeasurement::prefill));
    c.push_back(rate("Decode tok/s", "%.1f", "decode", &SpeedMeasurement::decode));
    c.push_back(data_only("mlp_share_prefill", [](const RowResult& r) { return nlohmann::json(r.mlp_share_prefill); }));
    c.push_back({"MLP share of decode", [](const RowResult& r) { return format_number("%.0f%%", 100 * r.mlp_share_decode); },
                 {{"mlp_share_decode", "/mlp_share_decode",
                   [](const RowResult& r) { return nlohmann::json(r.mlp_share_decode); }}}});
    c.push_back({"MLP bytes/token", [](const RowResult& r) { return format_number("%.3g", double(r.mlp_parameter_bytes)); },
                 {{"mlp_parameter_bytes", "/mlp_parameter_bytes",
                   [](const RowResult& r) { return nlohmann::json(r.mlp_parameter_bytes); }}}});
    c.push_back(data_only("patch_seconds", [](const RowResult& r) { return nlohmann::json(r.patch_seconds); }));
    add_heldout_columns(c);
    c.push_back({"", nullptr, {{"", "/prompts", [](const RowResult& r) {
                   nlohmann::json prompts = nlohmann::json::array();
                   for (const PromptMetrics& m : r.per_prompt) {
                     prompts.push_back({{"tokens", m.tokens}, {"cosine", m.cosine}, {"kl", m.kl}, {"top1", m.top1},
                                        {"top5_overlap", m.top5_overlap}, {"kl_all_positions", m.kl_all_positions},
                                        {"top1_all_positions", m.top1_all_positions}});
                   }
                   return prompts;
                 }}}});
    return c;
  }();
  return columns;
}

/// A JSON scalar as a CSV field: numbers as an ostream prints them (6 significant digits), text
/// quoted, null empty.
std::string csv_value(const nlohmann::json& value) {
  std::ostringstream out;
  if (value.is_string()) return csv_field(value.get<std::string>());
  if (value.is_number_float()) out << value.get<double>();
  else if (value.is_number_unsigned()) out << value.get<std::uint64_t>();
  else if (value.is_number_integer()) out << value.get<std::int64_t>();
  return out.str();
}

std::string csv_table(const std::vector<RowResult>& rows) {
  std::ostringstream csv;
  const char* separator = "";
  for (const Column& column : schema()) {
    for (const DataField& field : column.data) {
      if (field.csv.empty()) continue;
      csv << separator << field.csv;
      separator = ",";
    }
  }
  csv << '\n';
  for (const RowResult& r : rows) {
    separator = "";
    for (const Column& column : schema()) {
      for (const DataField& field : column.data) {
        if (field.csv.empty()) continue;
        csv << separator << csv_value(field.value(r));
        separator = ",";
      }
    }
    csv << '\n';
  }
  return csv.str();
}

nlohmann::json json_row(const RowResult& r) {
  nlohmann::json row = nlohmann::json::object();
  for (const Column& column : schema()) {
    for (const DataField& field : column.data) row[nlohmann::json::json_pointer(field.json)] = field.value(r);
  }
  return row;
}

}  // namespace

std::string default_grid_text() {
  return R"(# LAYERS BLOCK PROJECTION NAME
# The study's eleven rows (docs/evaluation.md, "Beside the study"). Its "calibrated" was gradient descent;
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
# The low-rank baseline at the same parameter budget (rank floor(mn / (b (m + n)))), one-shot and
# sequential, beside the block-circulant rows above.
0     64  lowrank             1 layer, low-rank (b=64 budget)
0-7   64  lowrank             8 layers, low-rank (b=64 budget)
0-7   64  lowrank-sequential  8 layers, low-rank sequential (b=64 budget)
0-7   128 lowrank-sequential  8 layers, low-rank sequential (b=128 budget)
# The structured fit that earned a row: sequential, each projection C diag(s_in) with the input
# scale fitted (docs/calibration.md, "Scaled block-circulant fit").
0-3   64  scaled-sequential   4 layers, scaled sequential
0-7   64  scaled-sequential   8 layers, scaled sequential
# Between the b = 16 budget, where low-rank wins, and b = 64, where block-circulant does.
0-7   32  sequential          8 layers, sequential (b=32)
0-7   32  lowrank-sequential  8 layers, low-rank sequential (b=32 budget)
0-7   32  scaled-sequential   8 layers, scaled sequential (b=32)
# The least sensitive layers at b = 64, chosen greedily on held-out selection windows (not the
# evaluation prompts or the perplexity windows) while their all-position KL stays within 0.1.
least-sensitive:0.1  64  sequential  least sensitive layers, sequential, selection KL <= 0.1
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
      const std::string greedy = "least-sensitive:", counted = "least-sensitive-layers:";
      std::string ranked_by;
      if (layers.compare(0, counted.size(), counted) == 0) {
        std::string count = layers.substr(counted.size());
        if (const std::size_t colon = count.find(':'); colon != std::string::npos) {
          ranked_by = count.substr(colon + 1);
          count.resize(colon);
          check(!ranked_by.empty(), "'", layers, "': the ranking's projection is empty");
        }
        check(!count.empty() && count.size() <= 6 && count.find_first_not_of("0123456789") == std::string::npos,
              "'", layers, "': the number of layers must be a whole number");
        const int value = std::stoi(count);
        check(value >= 1 && value <= config.num_hidden_layers, "'", layers, "': the number of layers must be in 1..",
              config.num_hidden_layers, " (the model's layers)");
        row.least_sensitive_count = value;
        row.settings.layers = {0};  // checked as a one-layer patch; chosen when the sweep runs
      } else if (layers.compare(0, greedy.size(), greedy) == 0) {
        const std::string budget = layers.substr(greedy.size());
        char* end = nullptr;
        const double value = std::strtod(budget.c_str(), &end);
        check(!budget.empty() && end == budget.c_str() + budget.size() && std::isfinite(value) && value >= 0,
              "'", layers, "': the KL budget must be a number >= 0");
        row.least_sensitive_budget = value;
        row.settings.layers = {0};  // checked as a one-layer patch; chosen when the sweep runs
      } else {
        row.settings.layers = parse_layers(layers, config.num_hidden_layers);
      }
      row.settings.projection = parse_projection(projection);
      if (block != "-") {
        check(block.size() <= 6 && block.find_first_not_of("0123456789") == std::string::npos,
              "block size '", block, "' is not a number");
        row.settings.block_size = std::stoi(block);
      } else {
        check(row.settings.projection == Projection::dense || row.settings.projection == Projection::zero,
              "projection '", projection, "' needs a block size");
      }
      const bool chosen = row.least_sensitive_budget || row.least_sensitive_count;
      check(!chosen || row.settings.projection != Projection::dense, "least-sensitive layers need a projection");
      check_patch_settings(row.settings, config);
      if (row.least_sensitive_count) {
        row.ranked_by = ranked_by.empty() ? row.settings.projection : parse_projection(ranked_by);
        check(row.ranked_by != Projection::dense, "'", layers, "': the ranking needs a projection, not dense");
        PatchSettings scan = row.settings;
        scan.projection = row.ranked_by;
        check_patch_settings(scan, config);  // e.g. a block size that a low-rank row allows, the scan's not
      }
    } catch (const error& e) {
      throw error(where + ": " + e.what());
    }
    row.name = name.empty() ? layers + " " + block + " " + projection : name;
    rows.push_back(std::move(row));
  }
  check(!rows.empty(), source, " has no rows");
  return rows;
}

std::string format_number(const char* pattern, double value) {
  char text[64];
  std::snprintf(text, sizeof text, pattern, value);
  return text;
}

std::string markdown_table(const std::vector<RowResult>& rows) {
  std::ostringstream md;
  std::string rule;
  for (const Column& column : schema()) {
    if (column.heading.empty()) continue;
    md << "| " << column.heading << " ";
    rule += "|---";
  }
  md << "|\n" << rule << "|\n";
  for (const RowResult& r : rows) {
    for (const Column& column : schema()) {
      if (!column.heading.empty()) md << "| " << column.cell(r) << " ";
    }
    md << "|\n";
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
     << format_number("%.2f", teacher_ppl) << "), prefill (" << settings.speed.prompt_tokens << " tokens) and decode ("
     << settings.speed.generated_tokens << " tokens) throughput, mean ± stddev of " << settings.speed.repetitions
     << " runs, the MLPs' share of decode time (1 - t_without_MLPs / t) and the bytes the MLPs read per token.\n\n"
     << markdown_table(rows);

  nlohmann::json json_rows = nlohmann::json::array();
  for (const RowResult& r : rows) json_rows.push_back(json_row(r));
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
  const std::string markdown = md.str(), table = csv_table(rows), json = document.dump(2) + "\n";
  write_files_atomically({{directory / "report.md", markdown}, {directory / "results.csv", table},
                          {directory / "results.json", json}});
}

}  // namespace llama
