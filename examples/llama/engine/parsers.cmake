# The parsers of untrusted checkpoint files -- safetensors headers, config.json and
# model.safetensors.index.json -- as one library, defined by a function so that two builds of the
# same source list exist: fftmat_llama_parsers in fftmat_llama_engine (examples/llama) and the
# fuzzer-instrumented one that the fuzz target links (tests/fuzz, built without the examples).
# Callers add their own compile options and link nlohmann_json.
function(fftmat_add_llama_parsers name)
  add_library(${name} STATIC
    "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/config.cpp"
    "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/safetensors.cpp"
    "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/shard_index.cpp")
  target_include_directories(${name} PUBLIC "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/.."  # "engine/config.hpp"
                                            "${PROJECT_SOURCE_DIR}/include")  # fftmat/error.hpp
  target_compile_features(${name} PUBLIC cxx_std_17)
  target_link_libraries(${name} PUBLIC nlohmann_json::nlohmann_json)
endfunction()
