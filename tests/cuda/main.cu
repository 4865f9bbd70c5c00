// Entry point of the CUDA tests: exits with 77 (ctest's SKIP_RETURN_CODE) when no CUDA device is
// usable, so machines without a GPU report the suite as skipped, never as passed.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cuda_runtime_api.h>

#include <cstdio>

#include <fftmat/cuda.hpp>
#include <fftmat/planner.hpp>

int main(int argc, char** argv) {
  int devices = 0;
  const cudaError_t status = cudaGetDeviceCount(&devices);
  if (status != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device (cudaGetDeviceCount: %s, %d devices)\n",
                status == cudaSuccess ? "cudaSuccess" : cudaGetErrorName(status), devices);
    return 77;
  }
  // The CPU objects the GPU ones are built from plan many layouts once each: estimated FFTW
  // plans keep the suite fast.
  fftmat::set_planner_effort(fftmat::PlannerEffort::estimate);
  doctest::Context context(argc, argv);
  const int result = context.run();
  // Frees every stream's workspace and plans, so compute-sanitizer's leak check sees only leaks.
  fftmat::cuda::release_all_stream_resources();
  return result;
}
