#pragma once
// The GPU backend of fftmat (docs/gpu.md): fftmat::cuda::BlockCirculant and
// fftmat::cuda::Circulant, built from their CPU counterparts, multiplying device arrays on a
// caller's stream with cuFFT, cuBLAS, Thrust and two custom kernels, with workspace and plans
// held per stream (fftmat/cuda/stream_context.hpp). Compile the including file with nvcc and link
// fftmat::cuda. Errors: fftmat::invalid_argument for bad arguments, fftmat::cuda_error for a
// failed CUDA / cuFFT / cuBLAS call.

#include "cuda/error.hpp"
#include "cuda/stream_context.hpp"
#include "cuda/block_circulant.cuh"
#include "cuda/circulant.cuh"
