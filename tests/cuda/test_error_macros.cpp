// The status-check macros, on the host only (no device needed): this test runs everywhere the
// toolkit is installed and so checks the error decoding even on machines without a GPU.
#include <doctest/doctest.h>

#include <fftmat/cuda/error.hpp>

#include <string>

TEST_CASE("FFTMAT_CUDA_CHECK throws fftmat::cuda_error naming call, file, line and status") {
  CHECK_NOTHROW(FFTMAT_CUDA_CHECK(cudaSuccess));
  try {
    FFTMAT_CUDA_CHECK(cudaErrorInvalidValue);
    FAIL("no exception");
  } catch (const fftmat::cuda_error& e) {
    const std::string what = e.what();
    CHECK(what.find("cudaErrorInvalidValue") != std::string::npos);
    CHECK(what.find("test_error_macros.cpp:") != std::string::npos);
    CHECK(what.find("invalid argument") != std::string::npos);  // cudaGetErrorString's text
    CHECK(e.status() == static_cast<int>(cudaErrorInvalidValue));
  }
  CHECK_THROWS_AS(FFTMAT_CUDA_CHECK(cudaErrorMemoryAllocation), fftmat::error);
}

TEST_CASE("FFTMAT_CUFFT_CHECK and FFTMAT_CUBLAS_CHECK decode their status codes") {
  CHECK_NOTHROW(FFTMAT_CUFFT_CHECK(CUFFT_SUCCESS));
  CHECK_THROWS_WITH_AS(FFTMAT_CUFFT_CHECK(CUFFT_INVALID_SIZE), doctest::Contains("CUFFT_INVALID_SIZE"),
                       fftmat::cuda_error);
  CHECK_THROWS_WITH_AS(FFTMAT_CUFFT_CHECK(cufftResult(0x1E)), doctest::Contains("unknown cufftResult"),
                       fftmat::cuda_error);
  CHECK_NOTHROW(FFTMAT_CUBLAS_CHECK(CUBLAS_STATUS_SUCCESS));
  CHECK_THROWS_WITH_AS(FFTMAT_CUBLAS_CHECK(CUBLAS_STATUS_NOT_INITIALIZED),
                       doctest::Contains("CUBLAS_STATUS_NOT_INITIALIZED"), fftmat::cuda_error);
  // The call text is part of the message.
  CHECK_THROWS_WITH_AS(FFTMAT_CUBLAS_CHECK(CUBLAS_STATUS_INVALID_VALUE),
                       doctest::Contains("CUBLAS_STATUS_INVALID_VALUE failed at"), fftmat::cuda_error);
}
