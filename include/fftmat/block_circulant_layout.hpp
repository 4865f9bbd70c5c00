#pragma once
// Saving and loading a BlockCirculant (docs/design.md, "Saving and loading"): the matrix is its
// layout -- everything but the numbers -- plus its parameter vector. The layout travels as text
// fields (string -> string, what safetensors' __metadata__ or any key-value store holds), the
// parameters as one tensor of shape [p, q, b] in the stored order, c_ij[d] at ((i*q) + j)*b + d.
//
//   save:  layout_fields(layout_of(A)) and A.parameters()
//   load:  from_layout<float>(parse_layout_fields(fields), parameters)
//
// Loading validates everything (known fields only, integers in range, the shape, the scalar type,
// the parameter count, finite values) and rebuilds the spectra from the parameters with the same
// code the original ran, so the loaded matrix's products equal the original's bit for bit in any
// process that would compute the original's bit for bit (same build, CPU, kernel set, thread
// count and FFTW plans; docs/design.md says when plans can differ).

#include <Eigen/Core>

#include <map>
#include <string>
#include <type_traits>

#include "block_circulant.hpp"
#include "error.hpp"

namespace fftmat {

/// A block-circulant matrix's description without its parameters.
struct BlockCirculantLayout {
  Eigen::Index rows = 0, cols = 0, block_size = 0;
  Padding padding = Padding::none;
  /// What products read: as BlockCirculant::spectrum_precision() reports it (the effective one).
  SpectrumPrecision spectrum_precision = SpectrumPrecision::full;
  /// The parameters' scalar type in safetensors' spelling: "F32" (float) or "F64" (double).
  std::string dtype = "F32";

  Eigen::Index block_rows() const noexcept { return (rows + block_size - 1) / block_size; }  ///< p
  Eigen::Index block_cols() const noexcept { return (cols + block_size - 1) / block_size; }  ///< q
  /// p*q*b, the length of the parameter vector (and the product of the tensor shape [p, q, b]).
  Eigen::Index parameter_count() const noexcept { return block_rows() * block_cols() * block_size; }

  friend bool operator==(const BlockCirculantLayout& a, const BlockCirculantLayout& b) {
    return a.rows == b.rows && a.cols == b.cols && a.block_size == b.block_size && a.padding == b.padding &&
           a.spectrum_precision == b.spectrum_precision && a.dtype == b.dtype;
  }
  friend bool operator!=(const BlockCirculantLayout& a, const BlockCirculantLayout& b) { return !(a == b); }
};

namespace detail {

/// The value of the layout field "parameter_order": the one parameter convention, spelled out so
/// that a reader of the stored fields need not know fftmat.
inline constexpr char kParameterOrder[] = "c_ij[d] at ((i*q)+j)*b+d, shape [p,q,b]";
inline constexpr char kLayoutVersion[] = "1";

template <class Scalar>
constexpr const char* dtype_of() {
  return std::is_same_v<Scalar, double> ? "F64" : "F32";
}

inline Eigen::Index parse_extent(const std::map<std::string, std::string>& fields, const char* key) {
  const std::string& text = fields.at(key);
  // Decimal digits only (no sign, no spaces), and few enough that the value fits an Index.
  bool digits = !text.empty() && text.size() <= 18;
  for (const char c : text) digits = digits && c >= '0' && c <= '9';
  require(digits, "block-circulant layout field \"", key, "\" = \"", text, "\" is not a positive decimal integer");
  return static_cast<Eigen::Index>(std::stoll(text));
}

}  // namespace detail

/// The layout of `A`.
template <class Scalar>
BlockCirculantLayout layout_of(const BlockCirculant<Scalar>& A) {
  return BlockCirculantLayout{A.rows(), A.cols(), A.block_size(), A.padding(), A.spectrum_precision(),
                              detail::dtype_of<Scalar>()};
}

/// The layout as text fields: layout_version ("1"), rows, cols, block_size, padding ("none" or
/// "zero"), spectrum_precision ("full" or "bfloat16"), dtype ("F32" or "F64") and parameter_order
/// (the convention above, as text).
inline std::map<std::string, std::string> layout_fields(const BlockCirculantLayout& layout) {
  return {{"layout_version", detail::kLayoutVersion},
          {"rows", std::to_string(layout.rows)},
          {"cols", std::to_string(layout.cols)},
          {"block_size", std::to_string(layout.block_size)},
          {"padding", layout.padding == Padding::zero ? "zero" : "none"},
          {"spectrum_precision", layout.spectrum_precision == SpectrumPrecision::bfloat16 ? "bfloat16" : "full"},
          {"dtype", layout.dtype},
          {"parameter_order", detail::kParameterOrder}};
}

/// The layout that layout_fields wrote. Throws fftmat::invalid_argument naming the field for a
/// missing or unknown field, a value that is not one the format allows, or a shape that
/// BlockCirculant::validate_shape refuses.
inline BlockCirculantLayout parse_layout_fields(const std::map<std::string, std::string>& fields) {
  const std::map<std::string, std::string> expected = layout_fields(BlockCirculantLayout{});
  for (const auto& [key, value] : expected) {
    detail::require(fields.count(key) == 1, "block-circulant layout has no field \"", key, "\"");
  }
  for (const auto& [key, value] : fields) {
    detail::require(expected.count(key) == 1, "block-circulant layout has an unknown field \"", key, "\"");
  }
  const auto one_of = [&](const char* key, const char* first, const char* second) {
    const std::string& value = fields.at(key);
    detail::require(value == first || value == second, "block-circulant layout field \"", key, "\" = \"", value,
                    "\" is neither \"", first, "\" nor \"", second, "\"");
    return value == first;
  };
  detail::require(fields.at("layout_version") == detail::kLayoutVersion, "block-circulant layout version \"",
                  fields.at("layout_version"), "\" is not supported (this fftmat reads version ",
                  detail::kLayoutVersion, ")");
  detail::require(fields.at("parameter_order") == detail::kParameterOrder,
                  "block-circulant layout field \"parameter_order\" = \"", fields.at("parameter_order"),
                  "\" is not fftmat's order \"", detail::kParameterOrder, "\"");
  BlockCirculantLayout layout;
  layout.rows = detail::parse_extent(fields, "rows");
  layout.cols = detail::parse_extent(fields, "cols");
  layout.block_size = detail::parse_extent(fields, "block_size");
  layout.padding = one_of("padding", "none", "zero") ? Padding::none : Padding::zero;
  layout.spectrum_precision =
      one_of("spectrum_precision", "full", "bfloat16") ? SpectrumPrecision::full : SpectrumPrecision::bfloat16;
  layout.dtype = one_of("dtype", "F32", "F64") ? "F32" : "F64";
  if (layout.dtype == "F32") {
    BlockCirculant<float>::validate_shape(layout.rows, layout.cols, layout.block_size, layout.padding);
  } else {
    BlockCirculant<double>::validate_shape(layout.rows, layout.cols, layout.block_size, layout.padding);
  }
  return layout;
}

/// The matrix of `layout` with `parameters` (p*q*b of them, in the stored order). Throws
/// fftmat::invalid_argument when the layout's dtype is not Scalar's, the count is wrong, a
/// parameter is not finite (naming it), or the layout says bfloat16 spectra for a matrix whose
/// products never read them (fewer than 8 block rows; layout_of records "full" there).
template <class Scalar>
BlockCirculant<Scalar> from_layout(const BlockCirculantLayout& layout,
                                   const Eigen::Ref<const typename BlockCirculant<Scalar>::Vector>& parameters) {
  detail::require(layout.dtype == detail::dtype_of<Scalar>(), "block-circulant layout has dtype ", layout.dtype,
                  ", but a BlockCirculant of ", detail::dtype_of<Scalar>(), " was asked for");
  BlockCirculant<Scalar> matrix(layout.rows, layout.cols, layout.block_size, parameters, layout.padding,
                                layout.spectrum_precision);
  detail::require(matrix.spectrum_precision() == layout.spectrum_precision,
                  "block-circulant layout says bfloat16 spectra, but a matrix of ", matrix.block_rows(),
                  " block rows (fewer than 8) always reads full-precision spectra");
  return matrix;
}

}  // namespace fftmat
