// Saving and loading a BlockCirculant through its layout fields and parameter vector.

#include <doctest/doctest.h>
#include <fftmat/block_circulant_layout.hpp>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <string>

#include "reference.hpp"

using namespace fftmat;
using Fields = std::map<std::string, std::string>;

namespace {

/// The message of the fftmat::invalid_argument that `f` throws ("" when it throws nothing).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const invalid_argument& e) {
    return e.what();
  }
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

template <class Matrix>
bool same_bits(const Matrix& a, const Matrix& b) {
  return a.rows() == b.rows() && a.cols() == b.cols() &&
         std::memcmp(a.data(), b.data(), sizeof(typename Matrix::Scalar) * std::size_t(a.size())) == 0;
}

/// A matrix saved as (fields, parameters) and loaded again: the layout, the parameters and the
/// spectra are the same, and so are its products, bit for bit; both match the dense definition.
template <class Scalar>
void check_round_trip(Eigen::Index m, Eigen::Index n, Eigen::Index b, Padding padding, SpectrumPrecision precision) {
  using Matrix = typename BlockCirculant<Scalar>::Matrix;
  const Eigen::Index p = (m + b - 1) / b, q = (n + b - 1) / b;
  const Eigen::VectorXd params = test::gaussian_vector(p * q * b, unsigned(m * 7 + n * 3 + b));
  const BlockCirculant<Scalar> original(m, n, b, params.cast<Scalar>(), padding, precision);

  const Fields fields = layout_fields(layout_of(original));
  const typename BlockCirculant<Scalar>::Vector stored = original.parameters();
  const BlockCirculantLayout layout = parse_layout_fields(fields);
  CHECK(layout == layout_of(original));
  CHECK(layout.parameter_count() == stored.size());
  const BlockCirculant<Scalar> loaded = from_layout<Scalar>(layout, stored);

  CHECK(loaded.spectrum_precision() == original.spectrum_precision());
  CHECK(loaded.padding() == padding);
  CHECK(same_bits(loaded.parameters(), original.parameters()));
  CHECK(std::memcmp(loaded.spectra(), original.spectra(),
                    sizeof(std::complex<Scalar>) * std::size_t(p * q * original.bins())) == 0);
  for (const Eigen::Index T : {1, 5, 40}) {
    const Matrix X = test::gaussian(n, T, unsigned(T)).cast<Scalar>();
    const Matrix Y = original.apply(X), Y_loaded = loaded.apply(X);
    CHECK(same_bits(Y_loaded, Y));
    const Matrix Z = test::gaussian(m, T, unsigned(T + 1)).cast<Scalar>();
    CHECK(same_bits(loaded.apply_transpose(Z), original.apply_transpose(Z)));
    // And both are the matrix the parameters define.
    const Eigen::MatrixXd dense = test::dense_block_circulant(m, n, b, params);
    const double tolerance = precision == SpectrumPrecision::bfloat16 && p >= 8 ? 5e-3 : 1e-5;
    CHECK(test::relative_error(Y_loaded.template cast<double>(), dense * X.template cast<double>()) < tolerance);
  }
}

}  // namespace

TEST_CASE("block-circulant layout: a saved and loaded matrix computes the same products bit for bit") {
  check_round_trip<float>(128, 64, 16, Padding::none, SpectrumPrecision::full);
  check_round_trip<float>(160, 64, 16, Padding::none, SpectrumPrecision::bfloat16);  // p = 10: packed, bfloat16
  check_round_trip<float>(64, 160, 16, Padding::none, SpectrumPrecision::full);       // p = 4: per-bin products
  check_round_trip<float>(100, 70, 16, Padding::zero, SpectrumPrecision::full);
  check_round_trip<double>(96, 48, 8, Padding::none, SpectrumPrecision::full);
}

TEST_CASE("block-circulant layout: the fields as stored") {
  const BlockCirculantLayout layout{11008, 4096, 64, Padding::none, SpectrumPrecision::bfloat16, "F32"};
  const Fields expected{{"layout_version", "1"},
                        {"rows", "11008"},
                        {"cols", "4096"},
                        {"block_size", "64"},
                        {"padding", "none"},
                        {"spectrum_precision", "bfloat16"},
                        {"dtype", "F32"},
                        {"parameter_order", "c_ij[d] at ((i*q)+j)*b+d, shape [p,q,b]"}};
  CHECK(layout_fields(layout) == expected);
  CHECK(layout.block_rows() == 172);
  CHECK(layout.block_cols() == 64);
  CHECK(layout.parameter_count() == 11008 * 4096 / 64);
  const BlockCirculantLayout padded{100, 70, 16, Padding::zero, SpectrumPrecision::full, "F64"};
  CHECK(parse_layout_fields(layout_fields(padded)) == padded);
  CHECK(padded.parameter_count() == 7 * 5 * 16);
}

TEST_CASE("block-circulant layout: bad fields and parameters are errors naming the problem") {
  const BlockCirculantLayout good{64, 32, 16, Padding::none, SpectrumPrecision::full, "F32"};
  const auto parse_with = [&](const std::string& key, const std::string& value) {
    Fields fields = layout_fields(good);
    fields[key] = value;
    return error_of([&] { parse_layout_fields(fields); });
  };
  CHECK(contains(parse_with("rows", "-64"), "field \"rows\" = \"-64\" is not a positive decimal integer"));
  CHECK(contains(parse_with("cols", "3.2e1"), "field \"cols\" = \"3.2e1\" is not a positive decimal integer"));
  CHECK(contains(parse_with("block_size", ""), "field \"block_size\" = \"\" is not a positive decimal integer"));
  CHECK(contains(parse_with("block_size", "0"), "block size must be positive"));
  CHECK(contains(parse_with("rows", "1234567890123456789"), "is not a positive decimal integer"));
  CHECK(contains(parse_with("rows", "72"), "block size 16 does not divide rows 72"));
  CHECK(contains(parse_with("padding", "reflect"), "\"padding\" = \"reflect\" is neither \"none\" nor \"zero\""));
  CHECK(contains(parse_with("spectrum_precision", "fp16"), "\"spectrum_precision\" = \"fp16\" is neither"));
  CHECK(contains(parse_with("dtype", "BF16"), "\"dtype\" = \"BF16\" is neither \"F32\" nor \"F64\""));
  CHECK(contains(parse_with("layout_version", "2"), "layout version \"2\" is not supported"));
  CHECK(contains(parse_with("parameter_order", "column-major"), "\"parameter_order\" = \"column-major\" is not"));
  CHECK(contains(parse_with("colour", "blue"), "unknown field \"colour\""));
  Fields missing = layout_fields(good);
  missing.erase("cols");
  CHECK(contains(error_of([&] { parse_layout_fields(missing); }), "has no field \"cols\""));

  Eigen::VectorXf params = test::gaussian_vector(good.parameter_count(), 3).cast<float>();
  CHECK(error_of([&] { from_layout<float>(good, params); }).empty());
  CHECK(contains(error_of([&] { from_layout<double>(good, params.cast<double>()); }),
                 "layout has dtype F32, but a BlockCirculant of F64 was asked for"));
  CHECK(contains(error_of([&] { from_layout<float>(good, params.head(good.parameter_count() - 1)); }),
                 "expected 128 block-circulant parameters"));
  params[37] = std::numeric_limits<float>::quiet_NaN();
  CHECK(contains(error_of([&] { from_layout<float>(good, params); }), "parameter 37 (block row 1"));
  BlockCirculantLayout few_rows = good;  // p = 4: bfloat16 would be ignored, so a saved layout never says it
  few_rows.spectrum_precision = SpectrumPrecision::bfloat16;
  params[37] = 0;
  CHECK(contains(error_of([&] { from_layout<float>(few_rows, params); }),
                 "says bfloat16 spectra, but a matrix of 4 block rows"));
}
