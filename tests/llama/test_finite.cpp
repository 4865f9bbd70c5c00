// Non-finite values: the bit-level scan against std::isfinite, checkpoints with a NaN or an
// infinity poked into one tensor, and metrics that refuse non-finite logits.

#include <doctest/doctest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "engine/checkpoint.hpp"
#include "engine/finite.hpp"
#include "engine/kernels.hpp"
#include "engine/safetensors.hpp"
#include "evaluation/evaluation.hpp"
#include "test_helpers.hpp"

namespace {

using llama_test::contains;
using llama_test::error_of;
using llama_test::read_file;
using llama_test::TempDir;

/// Overwrites element `index` (row-major) of `tensor` in the safetensors `file` with `bits`.
void poke(const std::filesystem::path& file, const std::string& tensor, std::size_t index, std::uint32_t bits) {
  std::string bytes = read_file(file);
  const llama::SafetensorsHeader header =
      llama::parse_safetensors(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), file.string());
  for (const llama::TensorInfo& info : header.tensors) {
    if (info.name != tensor) continue;
    REQUIRE((index + 1) * info.element_size <= info.end - info.begin);
    std::memcpy(&bytes[header.data_offset + info.begin + index * info.element_size], &bits, info.element_size);
    llama_test::write_file(file, bytes);
    return;
  }
  FAIL("no tensor ", tensor, " in ", file);
}

std::string checkpoint_error(const std::filesystem::path& dir) {
  return error_of([&] { llama::Checkpoint checkpoint(dir); });
}

}  // namespace

TEST_CASE("finite: the bit test agrees with std::isfinite for every dtype, at chunk edges") {
  // Every f16 and bf16 bit pattern, widened by the kernels' independent conversion.
  for (const llama::DType dtype : {llama::DType::f16, llama::DType::bf16}) {
    for (std::uint32_t bits = 0; bits <= 0xffffu; ++bits) {
      const auto word = static_cast<std::uint16_t>(bits);
      float value = 0;
      llama::to_float(reinterpret_cast<const std::uint8_t*>(&word), dtype, 0, 1, &value);
      const bool finite = llama::first_non_finite(reinterpret_cast<const std::uint8_t*>(&word), dtype, 1) == 1;
      if (finite != std::isfinite(value)) FAIL_CHECK("bits ", bits, " of ", llama::dtype_name(dtype));
    }
  }
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::quiet_NaN()};
  const std::size_t n = 3 * 4096 + 17;
  for (const std::size_t position : {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{8191}, n - 1}) {
    for (const float special : specials) {
      std::vector<float> values(n, std::numeric_limits<float>::max());
      values[1] = std::numeric_limits<float>::denorm_min();
      values[position] = special;
      CHECK(llama::first_non_finite(values.data(), n) == position);
      values[n - 1] = special;  // a later one does not hide the first
      CHECK(llama::first_non_finite(values.data(), n) == position);
    }
  }
  const std::vector<float> finite(n, -std::numeric_limits<float>::max());
  CHECK(llama::first_non_finite(finite.data(), n) == n);
}

TEST_CASE("finite: a NaN or infinity in any weight is named with its tensor and element at load") {
  const TempDir dir;
  {
    const auto model = llama_test::copy_reference("gqa_f32", dir);
    CHECK(checkpoint_error(model) == "");
    poke(model / "model.safetensors", "model.layers.1.input_layernorm.weight", 5, 0x7fc00000u);  // f32 NaN
    const std::string message = checkpoint_error(model);
    CHECK(contains(message, "tensor 'model.layers.1.input_layernorm.weight' (F32, shape [64]) holds nan at element [5]"));
  }
  {
    const auto model = llama_test::copy_reference("tied_bf16", dir);
    CHECK(checkpoint_error(model) == "");
    // hidden_size 64 (config.json): element [3, 7] of the 64 x 64 q_proj is flat index 3 * 64 + 7.
    poke(model / "model.safetensors", "model.layers.0.self_attn.q_proj.weight", 3 * 64 + 7, 0x7f80u);  // +inf
    CHECK(contains(checkpoint_error(model), "'model.layers.0.self_attn.q_proj.weight' (BF16, shape [64, 64]) holds "
                                            "inf at element [3, 7] (flat index 199)"));
  }
  {
    const auto model = llama_test::copy_reference("sharded_f16", dir);
    const nlohmann::json index = nlohmann::json::parse(read_file(model / "model.safetensors.index.json"));
    const std::string tensor = "model.layers.1.mlp.down_proj.weight";
    const std::string shard = index.at("weight_map").at(tensor);
    poke(model / shard, tensor, 0, 0x7bffu);  // the largest finite f16 is accepted
    CHECK(checkpoint_error(model) == "");
    poke(model / shard, tensor, 0, 0xfc00u);  // -inf
    const std::string message = checkpoint_error(model);
    CHECK(contains(message, shard));
    CHECK(contains(message, "'" + tensor + "' (F16"));
    CHECK(contains(message, "holds -inf at element [0, 0]"));
  }
}

TEST_CASE("finite: metrics refuse non-finite logits instead of scoring them") {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const std::vector<float> teacher = {1, 2, 3, 4, 0, 0, 1, 0};
  std::vector<float> student = teacher;
  CHECK(llama::compare_logits(teacher.data(), student.data(), 2, 4).kl == doctest::Approx(0.0));
  student[6] = nan;  // position 1, token 2
  CHECK(error_of([&] { llama::compare_logits(teacher.data(), student.data(), 2, 4); }) ==
        "student: the logit of token 2 at position 1 is nan");
  // All-NaN logits on both sides would otherwise give top-1 = 1 (index 0 against index 0).
  const std::vector<float> all_nan(8, nan);
  CHECK(contains(error_of([&] { llama::compare_logits(all_nan.data(), all_nan.data(), 2, 4); }),
                 "teacher: the logit of token 0 at position 0 is nan"));
  student = teacher;
  student[0] = -std::numeric_limits<float>::infinity();
  CHECK(contains(error_of([&] { llama::compare_logits(teacher.data(), student.data(), 2, 4); }),
                 "student: the logit of token 0 at position 0 is -inf"));
}
