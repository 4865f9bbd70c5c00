#include "finite.hpp"

#include <algorithm>
#include <vector>

#include <fftmat/threading.hpp>

#include "error.hpp"

namespace llama {
namespace {

/// The first of `count` words whose bits under `exponent` are all set. Chunks are tested with a
/// branch-free OR reduction, which the compiler vectorises; only a chunk with a hit is searched.
template <class Bits>
std::size_t first_with_full_exponent(const Bits* words, std::size_t count, Bits exponent) {
  constexpr std::size_t kChunk = 4096;
  for (std::size_t begin = 0; begin < count; begin += kChunk) {
    const std::size_t end = std::min(count, begin + kChunk);
    Bits hit = 0;  // of the words' own width, so that one vector register holds as many as possible
    for (std::size_t k = begin; k < end; ++k) hit |= static_cast<Bits>(static_cast<Bits>(words[k] & exponent) == exponent);
    if (hit != 0) {
      for (std::size_t k = begin; k < end; ++k) {
        if ((words[k] & exponent) == exponent) return k;
      }
    }
  }
  return count;
}

std::size_t first_non_finite_serial(const std::uint8_t* data, DType dtype, std::size_t count) {
  switch (dtype) {
    case DType::f32:
      return first_with_full_exponent(reinterpret_cast<const std::uint32_t*>(data), count, std::uint32_t{0x7f800000u});
    case DType::f16:
      return first_with_full_exponent(reinterpret_cast<const std::uint16_t*>(data), count, std::uint16_t{0x7c00u});
    case DType::bf16:
      return first_with_full_exponent(reinterpret_cast<const std::uint16_t*>(data), count, std::uint16_t{0x7f80u});
    case DType::unsupported: break;
  }
  throw error("first_non_finite: weights must be F32, F16 or BF16");
}

}  // namespace

std::size_t first_non_finite(const std::uint8_t* data, DType dtype, std::size_t count) {
  // Pieces of 2^20 elements are scanned by the OpenMP threads: a 7B checkpoint is 13.5 GB.
  constexpr std::size_t kPiece = std::size_t(1) << 20;
  const std::size_t pieces = (count + kPiece - 1) / kPiece;
  if (pieces <= 1) return first_non_finite_serial(data, dtype, count);
  const std::size_t element_size = dtype == DType::f32 ? 4 : 2;
  std::vector<std::size_t> found(pieces);
  fftmat::parallel_for(static_cast<std::int64_t>(pieces), double(kPiece), [&](std::int64_t piece, int) {
    const std::size_t begin = static_cast<std::size_t>(piece) * kPiece, length = std::min(kPiece, count - begin);
    found[static_cast<std::size_t>(piece)] =
        begin + first_non_finite_serial(data + begin * element_size, dtype, length);
  });
  for (std::size_t piece = 0; piece < pieces; ++piece) {
    if (found[piece] < std::min(count, (piece + 1) * kPiece)) return found[piece];
  }
  return count;
}

std::size_t first_non_finite(const float* values, std::size_t count) {
  return first_non_finite(reinterpret_cast<const std::uint8_t*>(values), DType::f32, count);
}

void require_finite_logits(const float* logits, std::size_t positions, std::size_t vocab, const std::string& what,
                           std::size_t first_position) {
  const std::size_t count = positions * vocab;
  const std::size_t bad = first_non_finite(logits, count);
  check(bad == count, what, ": the logit of token ", bad % vocab, " at position ", first_position + bad / vocab, " is ",
        bad < count ? logits[bad] : 0.0f);
}

}  // namespace llama
