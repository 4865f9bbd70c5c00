// Dense kernels: 16-bit float widening and matmul over every weight dtype, on both the
// matrix-vector (few tokens) and the tiled-sgemm (many tokens) paths, including ragged sizes.

#include <doctest/doctest.h>

#include <Eigen/Core>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "engine/kernels.hpp"

namespace {

std::uint16_t float_to_bf16(float value) {  // truncation: exact for values with 8 significant bits
  std::uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  return static_cast<std::uint16_t>(bits >> 16);
}

}  // namespace

TEST_CASE("kernels: f16 and bf16 widening, including subnormals, infinities and NaN") {
  CHECK(llama::f16_to_float(0x3c00) == 1.0f);
  CHECK(llama::f16_to_float(0xc000) == -2.0f);
  CHECK(llama::f16_to_float(0x7bff) == 65504.0f);
  CHECK(llama::f16_to_float(0x0001) == std::ldexp(1.0f, -24));
  CHECK(llama::f16_to_float(0x8000) == 0.0f);
  CHECK(std::signbit(llama::f16_to_float(0x8000)));
  CHECK(llama::f16_to_float(0x7c00) == std::numeric_limits<float>::infinity());
  CHECK(std::isnan(llama::f16_to_float(0x7e00)));
  CHECK(llama::bf16_to_float(0x3f80) == 1.0f);
  CHECK(llama::bf16_to_float(0xc040) == -3.0f);

  // The vector path (8 at a time) agrees with the scalar one on every 16-bit pattern.
  std::vector<std::uint16_t> all(65536);
  for (std::size_t k = 0; k < all.size(); ++k) all[k] = static_cast<std::uint16_t>(k);
  std::vector<float> widened(all.size());
  llama::to_float(reinterpret_cast<const std::uint8_t*>(all.data()), llama::DType::f16, 0, all.size(), widened.data());
  for (std::size_t k = 0; k < all.size(); ++k) {
    const float expected = llama::f16_to_float(all[k]);
    if (std::isnan(expected)) {
      CHECK(std::isnan(widened[k]));
    } else if (widened[k] != expected) {
      FAIL_CHECK("f16 pattern ", k, ": ", widened[k], " != ", expected);
    }
  }
}

TEST_CASE("kernels: matmul for F32, F16 and BF16 weights against a double-precision reference") {
  std::mt19937 generator(7);
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  for (const auto& [rows, cols] : {std::pair{37, 45}, std::pair{130, 64}, std::pair{8, 1}}) {
    // Weights exactly representable in every dtype, so all three must give the same products.
    std::vector<float> w32(std::size_t(rows) * cols);
    for (float& w : w32) w = std::round(uniform(generator) * 64.0f) / 64.0f;
    std::vector<std::uint16_t> w16(w32.size()), wbf(w32.size());
    for (std::size_t k = 0; k < w32.size(); ++k) {
      wbf[k] = float_to_bf16(w32[k]);
      const Eigen::half h(w32[k]);
      std::memcpy(&w16[k], &h, sizeof(std::uint16_t));
    }
    for (const int T : {1, 3, 8, 37}) {
      CAPTURE(rows);
      CAPTURE(cols);
      CAPTURE(T);
      std::vector<float> x(std::size_t(T) * cols);
      for (float& v : x) v = uniform(generator);
      std::vector<double> expected(std::size_t(T) * rows, 0.0);
      for (int t = 0; t < T; ++t) {
        for (int r = 0; r < rows; ++r) {
          for (int k = 0; k < cols; ++k) expected[std::size_t(t) * rows + r] += double(w32[std::size_t(r) * cols + k]) * x[std::size_t(t) * cols + k];
        }
      }
      const std::pair<const void*, llama::DType> weights[] = {
          {w32.data(), llama::DType::f32}, {w16.data(), llama::DType::f16}, {wbf.data(), llama::DType::bf16}};
      for (const auto& [data, dtype] : weights) {
        CAPTURE(llama::dtype_name(dtype));
        std::vector<float> y(std::size_t(T) * rows, std::nanf(""));
        llama::matmul(static_cast<const std::uint8_t*>(data), dtype, rows, cols, x.data(), T, y.data());
        for (std::size_t k = 0; k < y.size(); ++k) {
          if (std::abs(y[k] - expected[k]) > 1e-5 * (1.0 + std::abs(expected[k]))) {
            FAIL_CHECK("entry ", k, ": ", y[k], " != ", expected[k]);
            break;
          }
        }
      }
    }
  }
}
