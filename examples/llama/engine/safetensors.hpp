#pragma once
// The safetensors format (https://huggingface.co/docs/safetensors): an 8-byte little-endian header
// length N, N bytes of JSON {"name": {"dtype", "shape", "data_offsets": [begin, end]}, ...,
// "__metadata__": {string: string}}, then the data section; offsets are relative to its start.
//
// parse_safetensors validates every byte it reads, as the reference Rust implementation does:
// the header length is bounded and inside the file, the JSON is well formed, dtypes are known,
// shape x dtype size equals end - begin (without overflow), and the tensors tile the data section
// exactly -- no overlaps, no holes, nothing past the end. Nothing is allocated from a file value
// before it has been checked.

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace llama {

/// The element types the forward pass reads; every other safetensors dtype is `unsupported`
/// (its tensors are validated and may be present, but cannot be used as weights).
enum class DType { f32, f16, bf16, unsupported };

/// "F32", "F16", "BF16" (the safetensors spelling) or "unsupported".
const char* dtype_name(DType dtype) noexcept;

struct TensorInfo {
  std::string name;
  std::string dtype_string;          // as written in the header, e.g. "F16" or "I64"
  DType dtype = DType::unsupported;
  std::size_t element_size = 0;      // bytes
  std::vector<std::int64_t> shape;   // row-major, outermost first
  std::uint64_t begin = 0, end = 0;  // byte range within the data section
};

struct SafetensorsHeader {
  std::size_t data_offset = 0;  // 8 + N: where the data section starts in the file
  std::vector<TensorInfo> tensors;
  std::map<std::string, std::string> metadata;  // __metadata__, empty when absent
};

/// The header of largest accepted length (the format's own reference implementation uses 100 MB).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
/// A bound on a tensor's rank (real checkpoints have at most 4 dimensions).
inline constexpr std::size_t kMaxRank = 16;

/// Parses and validates a whole safetensors file held in memory. `source` names the file in error
/// messages. Throws llama::error on any malformed, truncated or inconsistent input.
SafetensorsHeader parse_safetensors(const std::uint8_t* file, std::size_t file_size, const std::string& source);

/// A tensor to write: its bytes (shape product x dtype size of them, little-endian) in `dtype`.
struct TensorBytes {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::string_view bytes;
};

/// A whole safetensors file holding `tensors` in the given order and `metadata` as __metadata__.
/// The header is padded with spaces so that the data section starts at a multiple of 8 bytes, as
/// the reference writer does, which keeps every tensor aligned to its elements. Throws llama::error
/// for an unsupported dtype, a reserved or repeated name, or bytes that do not match a shape.
std::string safetensors_file(const std::vector<TensorBytes>& tensors, const std::map<std::string, std::string>& metadata);

}  // namespace llama
