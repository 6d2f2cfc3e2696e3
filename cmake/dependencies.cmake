# The library's dependencies, all from Debian packages:
#   libeigen3-dev libtbb-dev libopenblas-dev libfmt-dev    the core (tensors, threads, GEMMs, messages)
#   nlohmann-json3-dev                                     config.json and safetensors headers
#   libutf8proc-dev                                        Unicode tables for the BERT tokenizer
#   libopenmpi-dev (optional)                              data-parallel training across processes
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

# MPI is optional: with it, the earlybert::mpi target (distributed/mpi.hpp), a program that trains
# across the processes of an MPI job, and the tests that run under mpirun; without it, one process.
option(EARLYBERT_WITH_MPI "Look for MPI and build data-parallel training when it is found" ON)
if(EARLYBERT_WITH_MPI)
  set(MPI_CXX_SKIP_MPICXX ON)  # the C API through the C++ compiler; not the removed C++ bindings
  find_package(MPI COMPONENTS CXX)
endif()
if(MPI_CXX_FOUND)
  message(STATUS "earlybert: MPI ${MPI_CXX_VERSION} found: data-parallel training is built (mpirun: ${MPIEXEC_EXECUTABLE})")
else()
  message(STATUS "earlybert: MPI not found (or EARLYBERT_WITH_MPI is OFF): training runs in one process only")
endif()
