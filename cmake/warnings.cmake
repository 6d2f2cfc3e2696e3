# Warnings for the project's own targets (tests, examples, benchmarks); never imposed on consumers.
add_library(earlybert_warnings INTERFACE)
target_compile_options(earlybert_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                    -Wnon-virtual-dtor -Wcast-align)
# GCC 12 reports false "may be used uninitialized" warnings inside its own AVX-512 intrinsic headers
# when Eigen is compiled with -march=native on an AVX-512 CPU.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  target_compile_options(earlybert_warnings INTERFACE -Wno-maybe-uninitialized)
endif()
