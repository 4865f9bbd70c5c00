// The safetensors parser on valid, truncated, corrupted and hostile inputs: each bad input is a
// llama::error whose message names the problem, never a crash or a huge allocation.

#include <doctest/doctest.h>

#include <string>

#include "engine/safetensors.hpp"
#include "test_helpers.hpp"

namespace {

using llama_test::error_of;
using llama_test::safetensors_bytes;

std::string parse_error(const std::string& bytes) {
  return error_of([&] {
    llama::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "test.safetensors");
  });
}

std::string parse_error(const std::string& header, const std::string& data) {
  return parse_error(safetensors_bytes(header, data));
}

}  // namespace

TEST_CASE("safetensors: a valid file parses with names, dtypes, shapes and offsets") {
  const std::string header =
      R"({"__metadata__": {"format": "pt"}, "b": {"dtype": "F16", "shape": [2, 3], "data_offsets": [8, 20]},)"
      R"( "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "c": {"dtype": "I64", "shape": [], "data_offsets": [20, 28]}})";
  const std::string bytes = safetensors_bytes(header, std::string(28, '\0'));
  const auto parsed = llama::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), "t");
  CHECK(parsed.data_offset == 8 + header.size());
  REQUIRE(parsed.tensors.size() == 3);
  for (const auto& tensor : parsed.tensors) {
    if (tensor.name == "b") {
      CHECK(tensor.dtype == llama::DType::f16);
      CHECK(tensor.shape == std::vector<std::int64_t>{2, 3});
      CHECK(tensor.begin == 8);
      CHECK(tensor.end == 20);
    }
    if (tensor.name == "c") CHECK(tensor.dtype == llama::DType::unsupported);  // valid, but not usable as a weight
  }
}

TEST_CASE("safetensors: truncated files") {
  CHECK(parse_error("") != "");
  CHECK(parse_error("\x10\0\0") .find("too short") != std::string::npos);
  const std::string valid = safetensors_bytes(R"({"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}})",
                                              std::string(16, '\0'));
  CHECK(parse_error(valid.substr(0, 20)).find("runs past the end") != std::string::npos);   // inside the header
  CHECK(parse_error(valid.substr(0, valid.size() - 1)).find("past the end of the data section") != std::string::npos);
}

TEST_CASE("safetensors: header length bounded") {
  std::string bytes(16, '\0');
  bytes[7] = '\x7f';  // about 9e18
  CHECK(parse_error(bytes).find("exceeds the limit") != std::string::npos);
  bytes = std::string(16, '\0');
  bytes[3] = '\x10';  // 268 MB > 100 MB
  CHECK(parse_error(bytes).find("exceeds the limit") != std::string::npos);
}

TEST_CASE("safetensors: corrupted JSON") {
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4])", "abcd").find("not valid JSON") !=
        std::string::npos);
  CHECK(parse_error("[1, 2]", "").find("not a JSON object") != std::string::npos);
  CHECK(parse_error(R"({"a": 5})", "").find("not a JSON object") != std::string::npos);
  CHECK(parse_error(R"({"a": {"shape": [1], "data_offsets": [0, 4]}})", "abcd").find("no \"dtype\"") != std::string::npos);
  CHECK(parse_error(R"({"__metadata__": {"k": 3}})", "").find("not a string") != std::string::npos);
  std::string binary = "{\"a\xff\": 1}";
  CHECK(parse_error(binary, "") != "");
}

TEST_CASE("safetensors: dtype, shape and offsets must agree") {
  CHECK(parse_error(R"({"a": {"dtype": "F31", "shape": [1], "data_offsets": [0, 4]}})", "abcd").find("unknown dtype \"F31\"") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": 7, "shape": [1], "data_offsets": [0, 4]}})", "abcd").find("not a string") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 4]}})", "abcdefgh").find("needs 8 bytes") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}})", "abcd").find("non-negative") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}})", "abcd").find("non-negative") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}})", "abcd").find("begin > end") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0]}})", "abcd").find("[begin, end]") !=
        std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 99999999999999999999]}})", "abcd") != "");
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1], "data_offsets": [0, 4]}})", "abcd")
            .find("rank 17") != std::string::npos);
}

TEST_CASE("safetensors: shape products that overflow are rejected, not wrapped") {
  // 2^32 * 2^32 * 4 bytes wraps to 0 in 64 bits; with a zero-length range it would look consistent.
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 0]}})", "")
            .find("needs more than") != std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [9223372036854775807, 9223372036854775807, 0], "data_offsets": [0, 0]}})",
                    "") == "");  // an empty tensor is valid whatever its other extents
}

TEST_CASE("safetensors: tensors may not overlap or leave holes") {
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},)"
                    R"( "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}})",
                    std::string(12, '\0'))
            .find("overlaps tensor 'a'") != std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},)"
                    R"( "b": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})",
                    std::string(4, '\0'))
            .find("overlaps") != std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}})", std::string(8, '\0'))
            .find("belong to no tensor") != std::string::npos);
  CHECK(parse_error(R"({"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}})", std::string(8, '\0'))
            .find("tensors end at byte 4") != std::string::npos);
}
