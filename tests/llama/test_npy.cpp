#include <doctest/doctest.h>

#include "engine/npy.hpp"
#include "test_helpers.hpp"

TEST_CASE("npy: float32 round trip, header padded to 64 bytes, no temporary left behind") {
  const llama_test::TempDir dir;
  const std::vector<float> values{1.0f, -2.5f, 3.25f, 0.0f, 1e-30f, 7.0f};
  const auto path = dir.path() / "a.npy";
  llama::write_npy(path, values.data(), {2, 3});
  const std::string bytes = llama_test::read_file(path);
  CHECK((bytes.size() - values.size() * sizeof(float)) % 64 == 0);
  CHECK(bytes.find("'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }") != std::string::npos);
  CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), std::filesystem::directory_iterator()) == 1);
  const llama::FloatArray read = llama::read_npy(path);
  CHECK(read.shape == std::vector<std::size_t>{2, 3});
  CHECK(read.values == values);

  llama::write_npy(path, values.data(), {6});
  CHECK(llama::read_npy(path).shape == std::vector<std::size_t>{6});
}

TEST_CASE("npy: malformed files are errors") {
  const llama_test::TempDir dir;
  const std::vector<float> values(4, 1.0f);
  const auto path = dir.path() / "a.npy";
  llama::write_npy(path, values.data(), {4});
  const std::string good = llama_test::read_file(path);
  llama_test::write_file(path, good.substr(0, good.size() - 2));
  CHECK(llama_test::error_of([&] { llama::read_npy(path); }).find("needs 16 data bytes") != std::string::npos);
  llama_test::write_file(path, "not numpy at all");
  CHECK(llama_test::error_of([&] { llama::read_npy(path); }).find("not a .npy file") != std::string::npos);
}
