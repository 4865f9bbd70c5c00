# The CUDA backend is optional: FFTMAT_CUDA=AUTO enables it when a CUDA compiler is found, ON
# requires it, OFF skips it. CPU-only machines configure and build everything else unchanged.
set(FFTMAT_CUDA_ENABLED OFF)
if(NOT FFTMAT_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      # The local GPU when there is one; Hopper (sm_90) on build machines without a GPU.
      execute_process(COMMAND nvidia-smi --query-gpu=compute_cap --format=csv,noheader
                      OUTPUT_VARIABLE _fftmat_cc RESULT_VARIABLE _fftmat_smi ERROR_QUIET
                      OUTPUT_STRIP_TRAILING_WHITESPACE)
      if(_fftmat_smi EQUAL 0 AND _fftmat_cc)
        string(REGEX MATCH "^[0-9]+\\.[0-9]+" _fftmat_cc "${_fftmat_cc}")
        string(REPLACE "." "" _fftmat_cc "${_fftmat_cc}")
        set(CMAKE_CUDA_ARCHITECTURES ${_fftmat_cc})
      else()
        set(CMAKE_CUDA_ARCHITECTURES 90)
      endif()
    endif()
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(FFTMAT_CUDA_ENABLED ON)
  elseif(FFTMAT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FFTMAT_CUDA=ON but no CUDA compiler was found")
  endif()
endif()

if(FFTMAT_CUDA_ENABLED)
  add_library(fftmat_cuda INTERFACE)
  add_library(fftmat::cuda ALIAS fftmat_cuda)
  set_target_properties(fftmat_cuda PROPERTIES EXPORT_NAME cuda)
  target_link_libraries(fftmat_cuda INTERFACE fftmat CUDA::cudart CUDA::cufft CUDA::cublas)
  # Eigen (included by the CPU headers the GPU types are built from) calls constexpr std::complex
  # functions from __host__ __device__ code: without this flag nvcc warns on every such use.
  target_compile_options(fftmat_cuda INTERFACE $<$<COMPILE_LANGUAGE:CUDA>:--expt-relaxed-constexpr>)
  # The project's warning flags (CMakeLists.txt, fftmat_project_options) for our own .cu targets:
  # nvcc's host compilation gets them through -Xcompiler, and nvcc's own diagnostics become errors
  # with them. -Wpedantic is left out: nvcc's generated host stubs trip it in every file.
  add_library(fftmat_cuda_project_options INTERFACE)
  target_compile_options(fftmat_cuda_project_options INTERFACE
    $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wshadow,-Wconversion,-Wno-sign-conversion>
    $<$<AND:$<COMPILE_LANGUAGE:CUDA>,$<BOOL:${FFTMAT_WARNINGS_AS_ERRORS}>>:-Werror=all-warnings -Xcompiler=-Werror>)
  message(STATUS "fftmat: CUDA backend enabled (architectures ${CMAKE_CUDA_ARCHITECTURES})")
else()
  message(STATUS "fftmat: CUDA backend disabled")
endif()
