#pragma once
// The GPU backend of fftmat (DESIGN.md section 5, docs/gpu.md): fftmat::cuda::BlockCirculant and
// fftmat::cuda::Circulant, built from their CPU counterparts, multiplying device arrays on a
// caller's stream with cuFFT, cuBLAS, Thrust and two custom kernels. Compile the including file
// with nvcc and link fftmat::cuda. Errors: fftmat::invalid_argument for bad arguments,
// fftmat::cuda_error for a failed CUDA / cuFFT / cuBLAS call.

#include "cuda/error.hpp"
#include "cuda/block_circulant.cuh"
#include "cuda/circulant.cuh"
