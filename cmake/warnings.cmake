# Warnings for the project's own targets (tests, examples, benchmarks); never imposed on consumers.
add_library(earlybert_warnings INTERFACE)
target_compile_options(earlybert_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow
                                                    -Wnon-virtual-dtor -Wcast-align)

# GCC 12's AVX-512 intrinsic headers initialise "undefined" registers from themselves, which GCC
# then reports as (maybe) used uninitialized wherever Eigen's AVX-512 code is inlined (fixed in
# GCC 13). Only builds with -march=native on such a CPU see it, so only they are silenced.
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  string(TOUPPER "${CMAKE_BUILD_TYPE}" build_type)
  if("${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${build_type}}" MATCHES "-march=native")
    target_compile_options(earlybert_warnings INTERFACE -Wno-uninitialized -Wno-maybe-uninitialized)
  endif()
endif()
