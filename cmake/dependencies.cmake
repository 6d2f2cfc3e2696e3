# The library's dependencies, all from Debian packages:
#   libeigen3-dev libtbb-dev libopenblas-dev libfmt-dev    the core (tensors, threads, GEMMs, messages)
#   nlohmann-json3-dev                                     config.json and safetensors headers
#   libutf8proc-dev                                        Unicode tables for the BERT tokenizer
# The same calls are repeated with find_dependency() in earlybertConfig.cmake.in, so a consumer of the
# installed package gets exactly what the build tree used.

list(APPEND CMAKE_MODULE_PATH "${CMAKE_CURRENT_LIST_DIR}")

find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(TBB REQUIRED)
find_package(fmt REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(utf8proc REQUIRED)

# OpenBLAS through CMake's own BLAS finding; the library calls openblas_* for its threading policy,
# so another vendor would not link.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
