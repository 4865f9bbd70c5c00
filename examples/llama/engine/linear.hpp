#pragma once
// Every linear layer of the model goes through `Linear`, so any projection can be dense (weights in
// the memory-mapped checkpoint), block-circulant (fftmat::BlockCirculant), scaled block-circulant
// (fftmat::ScaledBlockCirculant), low-rank (fftmat::LowRank) or block-circulant plus low-rank
// (fftmat::BlockCirculantPlusLowRank) without the forward pass knowing which.
//
// Activations are row-major T x n: token t's vector is contiguous. That is the same memory as the
// n x T column-major matrix of fftmat's convention (docs/design.md, Conventions).

#include <Eigen/Core>
#include <fftmat/block_circulant.hpp>
#include <fftmat/block_circulant_plus_low_rank.hpp>
#include <fftmat/low_rank.hpp>
#include <fftmat/scaled_block_circulant.hpp>

#include <cstddef>

#include "checkpoint.hpp"

namespace llama {

class Linear {
 public:
  virtual ~Linear() = default;
  /// y = W x for T tokens: x is T x in() row-major, y is T x out() row-major.
  virtual void forward(const float* x, float* y, int T) const = 0;
  virtual int in() const = 0;
  virtual int out() const = 0;
  /// Bytes of parameters one forward pass reads (weights in their storage type, or spectra).
  virtual std::size_t parameter_bytes() const = 0;
  /// The block-circulant matrix behind this layer, or null for a dense one. The MLP uses it to
  /// transform its input once for both gate and up.
  virtual const fftmat::BlockCirculant<float>* block_circulant() const { return nullptr; }
};

/// W (out x in, row-major, as stored in safetensors) used in place in its checkpoint dtype.
class DenseLinear final : public Linear {
 public:
  /// `weight` must be a 2-d F32, F16 or BF16 tensor; it must outlive this object.
  explicit DenseLinear(TensorView weight);
  void forward(const float* x, float* y, int T) const override;
  int in() const override { return in_; }
  int out() const override { return out_; }
  std::size_t parameter_bytes() const override { return weight_.bytes; }

  /// The weights widened to a float out x in matrix: the input of fftmat's projections.
  Eigen::MatrixXf to_float() const;

 private:
  TensorView weight_;
  int out_, in_;
};

/// A block-circulant approximation of a projection (built by fftmat's projections or Calibrator).
class BlockCirculantLinear final : public Linear {
 public:
  explicit BlockCirculantLinear(fftmat::BlockCirculant<float> matrix);
  void forward(const float* x, float* y, int T) const override;
  int in() const override { return static_cast<int>(matrix_.cols()); }
  int out() const override { return static_cast<int>(matrix_.rows()); }
  /// The spectra the product reads (packed, and bfloat16 where the matrix was built so).
  std::size_t parameter_bytes() const override { return matrix_.applied_spectrum_bytes(); }
  const fftmat::BlockCirculant<float>* block_circulant() const override { return &matrix_; }

 private:
  fftmat::BlockCirculant<float> matrix_;
};

/// A low-rank approximation U V of a projection (the baseline at a block-circulant's budget), applied
/// as two skinny GEMMs: first V x (rank x T), then U (V x).
class LowRankLinear final : public Linear {
 public:
  explicit LowRankLinear(fftmat::LowRank<float> matrix);
  void forward(const float* x, float* y, int T) const override;
  int in() const override { return static_cast<int>(matrix_.cols()); }
  int out() const override { return static_cast<int>(matrix_.rows()); }
  /// The two float factors: rank * (in + out) floats.
  std::size_t parameter_bytes() const override {
    return static_cast<std::size_t>(matrix_.parameter_count()) * sizeof(float);
  }
  const fftmat::LowRank<float>& matrix() const { return matrix_; }

 private:
  fftmat::LowRank<float> matrix_;
};

/// diag(s_out) C diag(s_in) (fftmat::fit_scaled). Its input is scaled before the FFT, so gate and
/// up do not share one input transform: block_circulant() stays null.
class ScaledBlockCirculantLinear final : public Linear {
 public:
  explicit ScaledBlockCirculantLinear(fftmat::ScaledBlockCirculant<float> matrix);
  void forward(const float* x, float* y, int T) const override;
  int in() const override { return static_cast<int>(matrix_.cols()); }
  int out() const override { return static_cast<int>(matrix_.rows()); }
  /// The core's spectra as its product reads them plus the two scale vectors.
  std::size_t parameter_bytes() const override;
  const fftmat::ScaledBlockCirculant<float>& matrix() const { return matrix_; }

 private:
  fftmat::ScaledBlockCirculant<float> matrix_;
};

/// C x + U (V x): a block-circulant matrix plus a low-rank term. The MLP must not share gate's and
/// up's input transform through block_circulant(): that would drop the low-rank term, so it stays null.
class BlockCirculantPlusLowRankLinear final : public Linear {
 public:
  explicit BlockCirculantPlusLowRankLinear(fftmat::BlockCirculantPlusLowRank<float> matrix);
  void forward(const float* x, float* y, int T) const override;
  int in() const override { return static_cast<int>(matrix_.cols()); }
  int out() const override { return static_cast<int>(matrix_.rows()); }
  /// The core's spectra as its product reads them plus the two float factors.
  std::size_t parameter_bytes() const override {
    return matrix_.core().applied_spectrum_bytes() +
           static_cast<std::size_t>(matrix_.residual().parameter_count()) * sizeof(float);
  }

 private:
  fftmat::BlockCirculantPlusLowRank<float> matrix_;
};

}  // namespace llama
