# FindFFTW3
# ---------
# Finds FFTW 3 (Debian's libfftw3-dev ships no usable CMake config).
#
# Components: float (libfftw3f), double (libfftw3). Imported targets: FFTW3::fftw3f, FFTW3::fftw3.
# Result variables: FFTW3_FOUND, FFTW3_INCLUDE_DIR, FFTW3_<component>_LIBRARY.

find_package(PkgConfig QUIET)
if(PKG_CONFIG_FOUND)
  pkg_check_modules(PC_FFTW3 QUIET fftw3)
endif()

find_path(FFTW3_INCLUDE_DIR fftw3.h HINTS ${PC_FFTW3_INCLUDE_DIRS})

set(_fftw3_float_name fftw3f)
set(_fftw3_double_name fftw3)
if(NOT FFTW3_FIND_COMPONENTS)
  set(FFTW3_FIND_COMPONENTS float double)
endif()
foreach(_comp IN LISTS FFTW3_FIND_COMPONENTS)
  set(_name ${_fftw3_${_comp}_name})
  if(NOT _name)
    message(FATAL_ERROR "FindFFTW3: unknown component '${_comp}' (known: float, double)")
  endif()
  find_library(FFTW3_${_comp}_LIBRARY NAMES ${_name} HINTS ${PC_FFTW3_LIBRARY_DIRS})
  if(FFTW3_${_comp}_LIBRARY AND FFTW3_INCLUDE_DIR)
    set(FFTW3_${_comp}_FOUND TRUE)
    if(NOT TARGET FFTW3::${_name})
      add_library(FFTW3::${_name} UNKNOWN IMPORTED)
      set_target_properties(FFTW3::${_name} PROPERTIES
        IMPORTED_LOCATION "${FFTW3_${_comp}_LIBRARY}"
        INTERFACE_INCLUDE_DIRECTORIES "${FFTW3_INCLUDE_DIR}")
    endif()
  endif()
  mark_as_advanced(FFTW3_${_comp}_LIBRARY)
endforeach()

include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(FFTW3 REQUIRED_VARS FFTW3_INCLUDE_DIR HANDLE_COMPONENTS)
mark_as_advanced(FFTW3_INCLUDE_DIR)
