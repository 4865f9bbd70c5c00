// The status-check macros, on the host only (no device needed): this test runs everywhere the
// toolkit is installed and so checks the error decoding even on machines without a GPU.
#include <doctest/doctest.h>

#include <fftmat/cuda/error.hpp>

#include <string>
#include <type_traits>

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

TEST_CASE("each checker takes exactly its own status type") {
  using fftmat::cuda::detail::check_cublas;
  using fftmat::cuda::detail::check_cuda;
  using fftmat::cuda::detail::check_cufft;
  const auto accepts = [](auto checker, auto status) {
    return std::is_invocable_v<decltype(checker), decltype(status), const char*, const char*, int>;
  };
  CHECK(accepts(&check_cuda, cudaSuccess));
  CHECK(accepts(&check_cufft, CUFFT_SUCCESS));
  CHECK(accepts(&check_cublas, CUBLAS_STATUS_SUCCESS));
  // A status of another library, or a plain int, does not convert: the wrong macro fails to compile.
  CHECK_FALSE(accepts(&check_cuda, CUFFT_SUCCESS));
  CHECK_FALSE(accepts(&check_cuda, 0));
  CHECK_FALSE(accepts(&check_cufft, cudaSuccess));
  CHECK_FALSE(accepts(&check_cufft, CUBLAS_STATUS_SUCCESS));
  CHECK_FALSE(accepts(&check_cublas, cudaSuccess));
  CHECK_FALSE(accepts(&check_cublas, 0));
}
