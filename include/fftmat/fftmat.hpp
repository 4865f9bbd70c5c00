#pragma once
// fftmat: FFT-structured matrices (circulant, block-circulant) and the projections that fit them
// to dense weights, and the low-rank baseline at the same budget. CPU backend (FFTW + Eigen). For
// the GPU backend include <fftmat/cuda.hpp>.

#include "block_circulant.hpp"  // IWYU pragma: export
#include "block_circulant_layout.hpp"  // IWYU pragma: export
#include "block_circulant_plus_low_rank.hpp"  // IWYU pragma: export
#include "calibrator.hpp"       // IWYU pragma: export
#include "circulant.hpp"        // IWYU pragma: export
#include "error.hpp"            // IWYU pragma: export
#include "input_spectrum.hpp"   // IWYU pragma: export
#include "kernel_isa.hpp"       // IWYU pragma: export
#include "low_rank.hpp"         // IWYU pragma: export
#include "planner.hpp"          // IWYU pragma: export
#include "projection.hpp"       // IWYU pragma: export
#include "scaled_block_circulant.hpp"  // IWYU pragma: export
#include "threading.hpp"        // IWYU pragma: export
#include "version.hpp"          // IWYU pragma: export
