#pragma once
// The geometry of the packed spectra's panels (detail/complex_kernels.hpp), which the packing and
// every kernel set share.

#include "internal_header_check.hpp"

#include <Eigen/Core>

#ifndef FFTMAT_PREFETCH_LINES
#define FFTMAT_PREFETCH_LINES 16
#endif

namespace fftmat::detail {

/// Rows per packed panel: one AVX2 vector of floats (a complex column is one AVX-512 vector).
inline constexpr Eigen::Index kPanelRows = 8;
/// Software prefetch distance of the one-token kernels, in bytes of the panel stream.
inline constexpr Eigen::Index kPrefetchBytes = FFTMAT_PREFETCH_LINES * 64;

}  // namespace fftmat::detail
