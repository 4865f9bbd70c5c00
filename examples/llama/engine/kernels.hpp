#pragma once
// Dense kernels over weights kept in their checkpoint dtype (F32, F16 or BF16); arithmetic is float.
//
// Decode (few tokens) is a memory-bound matrix-vector product: each weight row is read once,
// widened to float in registers (F16C's vcvtph2ps, or a 16-bit shift for bf16) and multiplied with
// AVX2 FMA, OpenMP over rows. Prefill (many tokens) is compute-bound: tiles of weight rows are
// widened into a per-thread float buffer and multiplied with OpenBLAS sgemm, one tile per thread.

#include <cstddef>
#include <cstdint>

#include "safetensors.hpp"

namespace llama {

float f16_to_float(std::uint16_t bits) noexcept;
float bf16_to_float(std::uint16_t bits) noexcept;

/// out[k] = float(element first + k of `data`) for k < count, `data` holding elements of `dtype`.
void to_float(const std::uint8_t* data, DType dtype, std::size_t first, std::size_t count, float* out);

/// sum_k a[k] b[k] over float vectors (attention scores).
float dot(const float* a, const float* b, int n);

/// The SwiGLU activation of Llama's MLP: out[k] = silu(gate[k]) * up[k], silu(g) = g / (1 + e^-g),
/// for k < count. `out` may be `gate` or `up`. The forward pass and the calibration of down_proj's
/// inputs both call it, so the student is calibrated on the activations it runs.
void swiglu(const float* gate, const float* up, float* out, std::size_t count);

/// From this many tokens on, matmul uses tiled sgemm instead of row dot products.
inline constexpr int kGemmMinTokens = 8;

/// Y = X W^T: W is rows x cols row-major in `dtype` (a Linear layer's out x in weight as stored),
/// X is T x cols row-major, Y is T x rows row-major.
void matmul(const std::uint8_t* W, DType dtype, int rows, int cols, const float* X, int T, float* Y);

}  // namespace llama
