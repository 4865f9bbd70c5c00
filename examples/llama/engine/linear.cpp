#include "linear.hpp"

#include "error.hpp"
#include "kernels.hpp"

namespace llama {

DenseLinear::DenseLinear(TensorView weight) : weight_(std::move(weight)) {
  check(weight_.shape.size() == 2, "linear weight '", weight_.name, "' is not 2-d");
  check(weight_.dtype != DType::unsupported, "linear weight '", weight_.name, "' has an unsupported dtype");
  out_ = static_cast<int>(weight_.shape[0]);
  in_ = static_cast<int>(weight_.shape[1]);
}

void DenseLinear::forward(const float* x, float* y, int T) const {
  matmul(weight_.data, weight_.dtype, out_, in_, x, T, y);
}

Eigen::MatrixXf DenseLinear::to_float() const {
  // Row-major storage read into a row-major matrix, then converted to Eigen's column-major.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> rows(out_, in_);
  llama::to_float(weight_.data, weight_.dtype, 0, static_cast<std::size_t>(out_) * in_, rows.data());
  return rows;
}

BlockCirculantLinear::BlockCirculantLinear(fftmat::BlockCirculant<float> matrix) : matrix_(std::move(matrix)) {}

void BlockCirculantLinear::forward(const float* x, float* y, int T) const {
  const Eigen::Map<const Eigen::MatrixXf> X(x, in(), T);
  Eigen::Map<Eigen::MatrixXf> Y(y, out(), T);
  matrix_.apply(X, Y);
}

LowRankLinear::LowRankLinear(fftmat::LowRank<float> matrix) : matrix_(std::move(matrix)) {}

void LowRankLinear::forward(const float* x, float* y, int T) const {
  const Eigen::Map<const Eigen::MatrixXf> X(x, in(), T);
  Eigen::Map<Eigen::MatrixXf> Y(y, out(), T);
  matrix_.apply(X, Y);
}

ScaledBlockCirculantLinear::ScaledBlockCirculantLinear(fftmat::ScaledBlockCirculant<float> matrix)
    : matrix_(std::move(matrix)) {}

void ScaledBlockCirculantLinear::forward(const float* x, float* y, int T) const {
  const Eigen::Map<const Eigen::MatrixXf> X(x, in(), T);
  Eigen::Map<Eigen::MatrixXf> Y(y, out(), T);
  matrix_.apply(X, Y);
}

BlockCirculantPlusLowRankLinear::BlockCirculantPlusLowRankLinear(fftmat::BlockCirculantPlusLowRank<float> matrix)
    : matrix_(std::move(matrix)) {}

void BlockCirculantPlusLowRankLinear::forward(const float* x, float* y, int T) const {
  const Eigen::Map<const Eigen::MatrixXf> X(x, in(), T);
  Eigen::Map<Eigen::MatrixXf> Y(y, out(), T);
  matrix_.apply(X, Y);
}

std::size_t ScaledBlockCirculantLinear::parameter_bytes() const {
  // What the product reads: the core's spectra as BlockCirculantLinear counts them (packed, and
  // bfloat16 where built so), and the two scales.
  return matrix_.core().applied_spectrum_bytes() +
         static_cast<std::size_t>(matrix_.rows() + matrix_.cols()) * sizeof(float);
}

}  // namespace llama
