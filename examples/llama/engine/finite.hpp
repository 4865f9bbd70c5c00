#pragma once
// Finding NaN and infinity where they enter: in checkpoint weights (F32, F16, BF16 as stored) and in
// the logits a metric or an output file is made from. An IEEE 754 value is non-finite exactly when
// its exponent field is all ones (IEEE 754-2019, section 3.4), which is tested on the raw bits, so
// the weights are scanned without widening them to float.

#include <cstddef>
#include <cstdint>
#include <string>

#include "safetensors.hpp"

namespace llama {

/// The index of the first NaN or infinity among the `count` elements of `dtype` at `data`, or
/// `count` when all are finite. `dtype` must be F32, F16 or BF16.
std::size_t first_non_finite(const std::uint8_t* data, DType dtype, std::size_t count);
std::size_t first_non_finite(const float* values, std::size_t count);

/// Throws llama::error unless all `positions` x `vocab` logits (row-major) are finite; the message
/// begins with `what` and names the position (counted from `first_position`), the vocabulary
/// index and the value of the first non-finite logit.
void require_finite_logits(const float* logits, std::size_t positions, std::size_t vocab, const std::string& what,
                           std::size_t first_position = 0);

}  // namespace llama
