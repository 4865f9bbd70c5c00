#include "patching.hpp"

#include <fftmat/block_circulant_plus_low_rank.hpp>
#include <fftmat/calibrator.hpp>
#include <fftmat/low_rank.hpp>
#include <fftmat/projection.hpp>
#include <fftmat/scaled_block_circulant.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <sstream>

#include "engine/error.hpp"
#include "engine/kernels.hpp"

namespace llama {
namespace {

using Matrix = Eigen::MatrixXf;
using ConstMap = Eigen::Map<const Matrix>;  // a row-major T x width buffer seen as width x T

/// A projection whose output is zero: the "MLP removed" reference.
class ZeroLinear final : public Linear {
 public:
  ZeroLinear(int in, int out) : in_(in), out_(out) {}
  void forward(const float*, float* y, int T) const override {
    std::fill(y, y + static_cast<std::size_t>(T) * out_, 0.0f);
  }
  int in() const override { return in_; }
  int out() const override { return out_; }
  std::size_t parameter_bytes() const override { return 0; }

 private:
  int in_, out_;
};

const DenseLinear& dense(const std::unique_ptr<Linear>& projection, int layer, const char* name) {
  const auto* weight = dynamic_cast<const DenseLinear*>(projection.get());
  check(weight != nullptr, "layer ", layer, " ", name, " is already patched");
  return *weight;
}

/// `matrix` with its products reading spectra of the given precision.
fftmat::BlockCirculant<float> with_spectra(fftmat::BlockCirculant<float> matrix, fftmat::SpectrumPrecision spectra) {
  if (spectra == fftmat::SpectrumPrecision::full) return matrix;
  return fftmat::BlockCirculant<float>(matrix.rows(), matrix.cols(), matrix.block_size(), matrix.parameters(),
                                       matrix.padding(), spectra);
}

std::unique_ptr<Linear> block_circulant(fftmat::BlockCirculant<float> matrix, fftmat::SpectrumPrecision spectra) {
  return std::make_unique<BlockCirculantLinear>(with_spectra(std::move(matrix), spectra));
}

/// Runs every prompt through the first `layer_count` layers of `model` with `observer` watching
/// their MLPs.
void run_prompts(Model& model, const std::vector<std::vector<int>>& prompts, MlpObserver* observer, int layer_count) {
  struct Restore {
    Model& model;
    MlpObserver* previous;
    ~Restore() { model.mlp_observer = previous; }
  } restore{model, model.mlp_observer};
  model.mlp_observer = observer;
  for (const std::vector<int>& ids : prompts) {
    KvCache cache = model.make_cache(static_cast<int>(ids.size()));
    model.run_layers(ids, cache, layer_count);
  }
}

/// The three calibrators of one MLP, for the shapes of `config` and block size b.
struct MlpCalibrators {
  MlpCalibrators(const LlamaConfig& c, int b)
      : gate(c.intermediate_size, c.hidden_size, b),
        up(c.intermediate_size, c.hidden_size, b),
        down(c.hidden_size, c.intermediate_size, b) {}
  fftmat::Calibrator<float> gate, up, down;
};

/// One-shot calibration: every chosen layer's projections see the teacher's own activations.
class TeacherStatistics final : public MlpObserver {
 public:
  TeacherStatistics(const LlamaConfig& config, const PatchSettings& settings) : config_(config) {
    for (const int layer : settings.layers) calibrators_.emplace(layer, MlpCalibrators(config, settings.block_size));
  }
  void observe(const MlpActivations& a) override {
    const auto it = calibrators_.find(a.layer);
    if (it == calibrators_.end()) return;
    const int hidden = config_.hidden_size, inter = config_.intermediate_size;
    const ConstMap input(a.input, hidden, a.tokens), hidden_act(a.hidden, inter, a.tokens);
    it->second.gate.accumulate(input, ConstMap(a.gate, inter, a.tokens));
    it->second.up.accumulate(input, ConstMap(a.up, inter, a.tokens));
    it->second.down.accumulate(hidden_act, ConstMap(a.output, hidden, a.tokens));
  }
  MlpCalibrators& at(int layer) { return calibrators_.at(layer); }

 private:
  const LlamaConfig& config_;
  std::map<int, MlpCalibrators> calibrators_;
};

/// Copies one layer's MLP activations of every prompt (width x T per prompt).
class LayerCapture final : public MlpObserver {
 public:
  enum class What { input, teacher_targets };
  LayerCapture(const LlamaConfig& config, int layer, What what)
      : hidden_(config.hidden_size), intermediate_(config.intermediate_size), layer_(layer), what_(what) {}
  void observe(const MlpActivations& a) override {
    if (a.layer != layer_) return;
    const Eigen::Index hidden = hidden_, inter = intermediate_;
    if (what_ == What::input) {
      input.emplace_back(ConstMap(a.input, hidden, a.tokens));
    } else {
      gate.emplace_back(ConstMap(a.gate, inter, a.tokens));
      up.emplace_back(ConstMap(a.up, inter, a.tokens));
      output.emplace_back(ConstMap(a.output, hidden, a.tokens));
    }
  }
  std::vector<Matrix> input, gate, up, output;  // per prompt

 private:
  int hidden_, intermediate_, layer_;
  What what_;
};

Matrix silu_product(const Matrix& gate, const Matrix& up) {
  Matrix hidden(gate.rows(), gate.cols());
  swiglu(gate.data(), up.data(), hidden.data(), static_cast<std::size_t>(gate.size()));
  return hidden;
}

void patch_frobenius(Model& student, const PatchSettings& s, const std::function<void(const std::string&)>& progress) {
  for (const int l : s.layers) {
    progress("Frobenius projection of layer " + std::to_string(l));
    Mlp& mlp = student.layers[l].mlp;
    for (auto* projection : {&mlp.gate, &mlp.up, &mlp.down}) {
      const char* name = projection == &mlp.gate ? "gate_proj" : projection == &mlp.up ? "up_proj" : "down_proj";
      *projection = block_circulant(fftmat::project_frobenius(dense(*projection, l, name).to_float(), s.block_size),
                                    s.spectra);
    }
  }
}

void patch_calibrated(Model& student, Model& teacher, const PatchSettings& s,
                      const std::vector<std::vector<int>>& calibration,
                      const std::function<void(const std::string&)>& progress) {
  TeacherStatistics statistics(teacher.config(), s);
  progress("collecting the teacher's MLP statistics on " + std::to_string(calibration.size()) + " prompts");
  run_prompts(teacher, calibration, &statistics, *std::max_element(s.layers.begin(), s.layers.end()) + 1);
  for (const int l : s.layers) {
    progress("fitting layer " + std::to_string(l));
    MlpCalibrators& c = statistics.at(l);
    Mlp& mlp = student.layers[l].mlp;
    mlp.gate = block_circulant(c.gate.fit(s.damping), s.spectra);
    mlp.up = block_circulant(c.up.fit(s.damping), s.spectra);
    mlp.down = block_circulant(c.down.fit(s.damping), s.spectra);
  }
}

/// What sequential calibration fits for one projection: it accumulates (input, target) pairs
/// (width x T each) and returns the fitted layer. One implementation per fitted family.
class ProjectionFit {
 public:
  virtual ~ProjectionFit() = default;
  virtual void accumulate(const Matrix& input, const Matrix& target) = 0;
  virtual std::unique_ptr<Linear> fit() const = 0;
};
/// Makes the fit of an out x in projection.
using ProjectionFitFactory = std::function<std::unique_ptr<ProjectionFit>(int out, int in)>;

/// The closed-form block-circulant fit (fftmat::Calibrator), products reading the chosen spectra.
class BlockCirculantFit final : public ProjectionFit {
 public:
  BlockCirculantFit(int out, int in, const PatchSettings& s)
      : calibrator_(out, in, s.block_size), damping_(s.damping), spectra_(s.spectra) {}
  void accumulate(const Matrix& input, const Matrix& target) override { calibrator_.accumulate(input, target); }
  std::unique_ptr<Linear> fit() const override { return block_circulant(calibrator_.fit(damping_), spectra_); }

 private:
  fftmat::Calibrator<float> calibrator_;
  double damping_;
  fftmat::SpectrumPrecision spectra_;
};

/// The rank-r ridge fit [R S^-T]_r S^-1 (fftmat::LowRankCalibrator) at the block size's budget.
class LowRankFit final : public ProjectionFit {
 public:
  LowRankFit(int out, int in, const PatchSettings& s)
      : calibrator_(out, in), rank_(fftmat::rank_for_block_budget(out, in, s.block_size)), damping_(s.damping) {}
  void accumulate(const Matrix& input, const Matrix& target) override { calibrator_.accumulate(input, target); }
  std::unique_ptr<Linear> fit() const override {
    return std::make_unique<LowRankLinear>(calibrator_.fit(rank_, damping_));
  }

 private:
  fftmat::LowRankCalibrator<float> calibrator_;
  Eigen::Index rank_;
  double damping_;
};

/// `linear` applied to the columns of `input` (in x T), as the model's forward pass applies it.
Matrix forward(const Linear& linear, const Matrix& input) {
  Matrix output(linear.out(), input.cols());
  linear.forward(input.data(), output.data(), static_cast<int>(input.cols()));
  return output;
}

/// Sequential calibration with any fitted family: layer by layer in increasing order, so layer l
/// sees the patched layers before it.
void patch_sequential(Model& student, Model& teacher, const std::vector<int>& layers,
                      const std::vector<std::vector<int>>& calibration, const ProjectionFitFactory& make_fit,
                      const std::function<void(const std::string&)>& progress) {
  const LlamaConfig& config = teacher.config();
  for (const int l : layers) {
    progress("sequential calibration of layer " + std::to_string(l) + ": teacher targets");
    LayerCapture targets(config, l, LayerCapture::What::teacher_targets);
    run_prompts(teacher, calibration, &targets, l + 1);
    progress("sequential calibration of layer " + std::to_string(l) + ": student inputs");
    LayerCapture inputs(config, l, LayerCapture::What::input);
    run_prompts(student, calibration, &inputs, l + 1);

    const std::unique_ptr<ProjectionFit> gate_fit = make_fit(config.intermediate_size, config.hidden_size);
    const std::unique_ptr<ProjectionFit> up_fit = make_fit(config.intermediate_size, config.hidden_size);
    for (std::size_t k = 0; k < calibration.size(); ++k) {
      gate_fit->accumulate(inputs.input[k], targets.gate[k]);
      up_fit->accumulate(inputs.input[k], targets.up[k]);
    }
    std::unique_ptr<Linear> gate = gate_fit->fit(), up = up_fit->fit();
    // down is fitted on what the student's own gate and up produce, against the teacher's output.
    const std::unique_ptr<ProjectionFit> down_fit = make_fit(config.hidden_size, config.intermediate_size);
    for (std::size_t k = 0; k < calibration.size(); ++k) {
      down_fit->accumulate(silu_product(forward(*gate, inputs.input[k]), forward(*up, inputs.input[k])),
                           targets.output[k]);
    }
    Mlp& mlp = student.layers[l].mlp;
    mlp.gate = std::move(gate);
    mlp.up = std::move(up);
    mlp.down = down_fit->fit();
  }
}

/// The input Gram matrices of every chosen layer's MLP on the teacher: gate and up share one.
class TeacherGrams final : public MlpObserver {
 public:
  struct Grams {
    fftmat::InputGram input, hidden;  // gate/up's input and down's input silu(g)*u
  };
  TeacherGrams(const LlamaConfig& config, const std::vector<int>& layers) : config_(config) {
    for (const int layer : layers) grams_.emplace(layer, Grams{fftmat::InputGram(config.hidden_size),
                                                             fftmat::InputGram(config.intermediate_size)});
  }
  void observe(const MlpActivations& a) override {
    const auto it = grams_.find(a.layer);
    if (it == grams_.end()) return;
    it->second.input.accumulate(ConstMap(a.input, config_.hidden_size, a.tokens));
    it->second.hidden.accumulate(ConstMap(a.hidden, config_.intermediate_size, a.tokens));
  }
  const Grams& at(int layer) const { return grams_.at(layer); }

 private:
  const LlamaConfig& config_;
  std::map<int, Grams> grams_;
};

/// One-shot low-rank: each projection's whitened truncation [W S]_r S^-1 on the teacher's inputs.
void patch_low_rank(Model& student, Model& teacher, const PatchSettings& s,
                    const std::vector<std::vector<int>>& calibration,
                    const std::function<void(const std::string&)>& progress) {
  TeacherGrams grams(teacher.config(), s.layers);
  progress("collecting the teacher's MLP input Gram matrices on " + std::to_string(calibration.size()) + " prompts");
  run_prompts(teacher, calibration, &grams, *std::max_element(s.layers.begin(), s.layers.end()) + 1);
  for (const int l : s.layers) {
    progress("low-rank fit of layer " + std::to_string(l));
    Mlp& mlp = student.layers[l].mlp;
    for (auto* projection : {&mlp.gate, &mlp.up, &mlp.down}) {
      const char* name = projection == &mlp.gate ? "gate_proj" : projection == &mlp.up ? "up_proj" : "down_proj";
      const Matrix W = dense(*projection, l, name).to_float();
      const fftmat::InputGram& gram = projection == &mlp.down ? grams.at(l).hidden : grams.at(l).input;
      const Eigen::Index rank = fftmat::rank_for_block_budget(W.rows(), W.cols(), s.block_size);
      *projection = std::make_unique<LowRankLinear>(fftmat::project_low_rank(W, gram, rank, s.damping));
    }
  }
}

/// The prompts' matrices side by side: width x (total tokens).
Matrix concatenate(const std::vector<Matrix>& parts) {
  Eigen::Index tokens = 0;
  for (const Matrix& part : parts) tokens += part.cols();
  Matrix all(parts.front().rows(), tokens);
  Eigen::Index column = 0;
  for (const Matrix& part : parts) {
    all.middleCols(column, part.cols()) = part;
    column += part.cols();
  }
  return all;
}

/// fftmat::fit_scaled of inputs X against targets Y, its core's products reading `spectra`. Only
/// the input scale is fitted: with it every step is exact, and on the shipped model a fitted output
/// scale did not lower the held-out error (docs/evaluation.md, "Structured fits").
fftmat::ScaledBlockCirculant<float> fit_scaled(const Matrix& X, const Matrix& Y, const PatchSettings& s) {
  fftmat::ScaledFitOptions options;
  options.damping = s.damping;
  options.fit_output_scale = false;
  const fftmat::ScaledBlockCirculant<float> fit = fftmat::fit_scaled<float>(X, Y, s.block_size, options).matrix;
  return fftmat::ScaledBlockCirculant<float>(with_spectra(fit.core(), s.spectra), fit.input_scale(),
                                             fit.output_scale());
}

/// C diag(s_in) by alternating least squares (fftmat::fit_scaled). The fit needs the data itself,
/// not only its statistics, so the pairs are kept until fit().
class ScaledFit final : public ProjectionFit {
 public:
  explicit ScaledFit(const PatchSettings& s) : settings_(s) {}
  void accumulate(const Matrix& input, const Matrix& target) override {
    inputs_.push_back(input);
    targets_.push_back(target);
  }
  std::unique_ptr<Linear> fit() const override {
    return std::make_unique<ScaledBlockCirculantLinear>(
        fit_scaled(concatenate(inputs_), concatenate(targets_), settings_));
  }

 private:
  PatchSettings settings_;
  std::vector<Matrix> inputs_, targets_;
};

/// C + U V at the budget of block size b (fftmat::split_block_budget), fitted jointly by
/// alternating least squares (fftmat::fit_block_circulant_plus_low_rank); C's products read the
/// chosen spectra. Like ScaledFit it keeps the pairs until fit().
class BcLowRankFit final : public ProjectionFit {
 public:
  BcLowRankFit(int out, int in, const PatchSettings& s)
      : split_(fftmat::split_block_budget(out, in, s.block_size)), settings_(s) {}
  void accumulate(const Matrix& input, const Matrix& target) override {
    inputs_.push_back(input);
    targets_.push_back(target);
  }
  std::unique_ptr<Linear> fit() const override {
    fftmat::PlusLowRankFitOptions options;
    options.damping = settings_.damping;
    fftmat::BlockCirculantPlusLowRank<float> fit =
        fftmat::fit_block_circulant_plus_low_rank<float>(concatenate(inputs_), concatenate(targets_),
                                                         split_.block_size, split_.rank, options)
            .matrix;
    return std::make_unique<BlockCirculantPlusLowRankLinear>(fftmat::BlockCirculantPlusLowRank<float>(
        with_spectra(fit.core(), settings_.spectra), fit.residual()));
  }

 private:
  fftmat::BudgetSplit split_;
  PatchSettings settings_;
  std::vector<Matrix> inputs_, targets_;
};

}  // namespace

Projection parse_projection(const std::string& name) {
  for (const Projection p : {Projection::dense, Projection::frobenius, Projection::calibrated, Projection::sequential,
                             Projection::low_rank, Projection::low_rank_sequential, Projection::scaled_sequential,
                             Projection::bc_low_rank_sequential, Projection::zero}) {
    if (name == projection_name(p)) return p;
  }
  throw error("unknown projection '" + name +
              "' (choose dense, frobenius, calibrated, sequential, lowrank, lowrank-sequential, scaled-sequential, "
              "bc-lowrank-sequential or zero)");
}

const char* projection_name(Projection projection) {
  switch (projection) {
    case Projection::dense: return "dense";
    case Projection::frobenius: return "frobenius";
    case Projection::calibrated: return "calibrated";
    case Projection::sequential: return "sequential";
    case Projection::low_rank: return "lowrank";
    case Projection::low_rank_sequential: return "lowrank-sequential";
    case Projection::scaled_sequential: return "scaled-sequential";
    case Projection::bc_low_rank_sequential: return "bc-lowrank-sequential";
    case Projection::zero: return "zero";
  }
  return "?";
}

std::vector<int> parse_layers(const std::string& spec, int num_layers) {
  std::vector<int> layers;
  if (spec.empty() || spec == "none") return layers;
  if (spec == "all") {
    for (int l = 0; l < num_layers; ++l) layers.push_back(l);
    return layers;
  }
  const auto number = [&](const std::string& text) {
    check(!text.empty() && text.size() <= 6 && std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; }),
          "bad layer list '", spec, "': expected numbers like 0, 0-3 or 0,5,9");
    const int value = std::stoi(text);
    check(value < num_layers, "layer ", value, " is out of range: the model has ", num_layers, " layers (0..",
          num_layers - 1, ")");
    return value;
  };
  std::stringstream items(spec);
  std::string item;
  while (std::getline(items, item, ',')) {
    const std::size_t dash = item.find('-');
    if (dash == std::string::npos) {
      layers.push_back(number(item));
    } else {
      const int first = number(item.substr(0, dash)), last = number(item.substr(dash + 1));
      check(first <= last, "bad layer range '", item, "' in '", spec, "'");
      for (int l = first; l <= last; ++l) layers.push_back(l);
    }
  }
  check(!layers.empty(), "bad layer list '", spec, "'");
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

std::string format_layers(const std::vector<int>& layers) {
  if (layers.empty()) return "none";
  std::string text;
  for (std::size_t k = 0; k < layers.size();) {
    std::size_t end = k;
    while (end + 1 < layers.size() && layers[end + 1] == layers[end] + 1) ++end;
    if (!text.empty()) text += ',';
    text += std::to_string(layers[k]);
    if (end > k) text += '-' + std::to_string(layers[end]);
    k = end + 1;
  }
  return text;
}

void check_patch_settings(const PatchSettings& s, const LlamaConfig& config) {
  if (s.projection == Projection::dense) {
    check(s.layers.empty(), "projection 'dense' patches nothing: give no --layers or choose a projection");
    return;
  }
  check(!s.layers.empty(), "projection '", projection_name(s.projection), "' needs --layers");
  for (const int l : s.layers) {
    check(l >= 0 && l < config.num_hidden_layers, "layer ", l, " is out of range: the model has ",
          config.num_hidden_layers, " layers");
  }
  if (s.projection == Projection::zero) return;
  check(s.block_size > 0, "block size must be positive, got ", s.block_size);
  check(std::isfinite(s.damping) && s.damping >= 0, "damping must be finite and >= 0, got ", s.damping);
  if (is_low_rank(s.projection)) {
    check(s.spectra == fftmat::SpectrumPrecision::full, "projection '", projection_name(s.projection),
          "' has no spectra: bfloat16 spectra apply to block-circulant projections only");
    check(fftmat::rank_for_block_budget(config.intermediate_size, config.hidden_size, s.block_size) >= 1,
          "projection '", projection_name(s.projection), "' at the budget of block size ", s.block_size,
          " has rank 0: an ", config.intermediate_size, "x", config.hidden_size, " block-circulant matrix has ",
          std::int64_t(config.intermediate_size) * config.hidden_size / s.block_size,
          " parameters, fewer than one rank-1 term's ", config.intermediate_size + config.hidden_size);
    return;
  }
  if (s.projection == Projection::bc_low_rank_sequential) {
    try {  // down's hidden x intermediate split is gate's and up's transposed: one check covers all three
      fftmat::split_block_budget(config.intermediate_size, config.hidden_size, s.block_size);
    } catch (const fftmat::invalid_argument& e) {
      throw error(concat("projection '", projection_name(s.projection), "' for the ", config.intermediate_size, "x",
                         config.hidden_size, " MLP projections: ", e.what()));
    }
    return;
  }
  check(config.hidden_size % s.block_size == 0, "block size ", s.block_size, " does not divide hidden_size ",
        config.hidden_size);
  check(config.intermediate_size % s.block_size == 0, "block size ", s.block_size,
        " does not divide intermediate_size ", config.intermediate_size);
}

bool is_low_rank(Projection projection) {
  return projection == Projection::low_rank || projection == Projection::low_rank_sequential;
}

bool needs_calibration(Projection projection) {
  return projection != Projection::dense && projection != Projection::frobenius && projection != Projection::zero;
}

void patch_model(Model& student, Model& teacher, const PatchSettings& settings,
                 const std::vector<std::vector<int>>& calibration,
                 const std::function<void(const std::string&)>& progress) {
  check_patch_settings(settings, student.config());
  check(!needs_calibration(settings.projection) || !calibration.empty(), "projection '", projection_name(settings.projection),
        "' needs calibration prompts");
  switch (settings.projection) {
    case Projection::dense: return;
    case Projection::frobenius: return patch_frobenius(student, settings, progress);
    case Projection::calibrated: return patch_calibrated(student, teacher, settings, calibration, progress);
    case Projection::sequential:
      return patch_sequential(
          student, teacher, settings.layers, calibration,
          [&](int out, int in) { return std::make_unique<BlockCirculantFit>(out, in, settings); }, progress);
    case Projection::low_rank: return patch_low_rank(student, teacher, settings, calibration, progress);
    case Projection::low_rank_sequential:
      return patch_sequential(
          student, teacher, settings.layers, calibration,
          [&](int out, int in) { return std::make_unique<LowRankFit>(out, in, settings); }, progress);
    case Projection::scaled_sequential:
      return patch_sequential(
          student, teacher, settings.layers, calibration,
          [&](int, int) { return std::make_unique<ScaledFit>(settings); }, progress);
    case Projection::bc_low_rank_sequential:
      return patch_sequential(
          student, teacher, settings.layers, calibration,
          [&](int out, int in) { return std::make_unique<BcLowRankFit>(out, in, settings); }, progress);
    case Projection::zero:
      for (const int l : settings.layers) {
        Mlp& mlp = student.layers[l].mlp;
        const LlamaConfig& c = student.config();
        mlp.gate = std::make_unique<ZeroLinear>(c.hidden_size, c.intermediate_size);
        mlp.up = std::make_unique<ZeroLinear>(c.hidden_size, c.intermediate_size);
        mlp.down = std::make_unique<ZeroLinear>(c.intermediate_size, c.hidden_size);
      }
      return;
  }
}

}  // namespace llama
