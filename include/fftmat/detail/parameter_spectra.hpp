#pragma once
// The one batched real FFT between a block-circulant matrix's p*q first columns (stored one after
// another, docs/design.md, Conventions) and their frequency-major half spectra: bin f of block
// k = i*q + j at f*blocks + k, so that every bin is a contiguous row-major p x q matrix. The
// matrix computes its spectra with it (BlockCirculant) and the calibrated fit turns solved spectra
// back into first columns with it (Calibrator::fit). Both sides are AlignedBuffers because the
// cached plans are made on SIMD-aligned arrays and FFTW's new-array execution needs the same
// alignment (FFTW manual, section 4.6).

#include "internal_header_check.hpp"

#include <Eigen/Core>

#include <complex>
#include <cstddef>

#include "fftw.hpp"

namespace fftmat::detail {

/// The transforms of `blocks` real blocks of length `block_size` in the layout above.
template <class Scalar>
BatchedRealFft<Scalar> parameter_fft(Eigen::Index block_size, Eigen::Index blocks) {
  const int b = static_cast<int>(block_size), count = static_cast<int>(blocks);
  return BatchedRealFft<Scalar>(b, count, b, count, 1);
}

/// The unnormalised half spectra of the `blocks` first columns in `columns` (blocks * block_size
/// values) into `spectra` (grown to (block_size/2 + 1) * blocks values).
template <class Scalar>
void first_columns_to_spectra(const AlignedBuffer<Scalar>& columns, Eigen::Index block_size, Eigen::Index blocks,
                              AlignedBuffer<std::complex<Scalar>>& spectra) {
  spectra.resize(static_cast<std::size_t>((block_size / 2 + 1) * blocks));
  BatchedRealFft<Scalar>::forward(parameter_fft<Scalar>(block_size, blocks).plan(true, Direction::forward),
                                  columns.data(), spectra.data());
}

/// The inverse of first_columns_to_spectra without the 1/block_size normalisation, into `columns`
/// (grown to blocks * block_size values). Destroys `spectra`.
template <class Scalar>
void spectra_to_first_columns(AlignedBuffer<std::complex<Scalar>>& spectra, Eigen::Index block_size,
                              Eigen::Index blocks, AlignedBuffer<Scalar>& columns) {
  columns.resize(static_cast<std::size_t>(blocks * block_size));
  BatchedRealFft<Scalar>::inverse(parameter_fft<Scalar>(block_size, blocks).plan(true, Direction::inverse),
                                  spectra.data(), columns.data());
}

}  // namespace fftmat::detail
