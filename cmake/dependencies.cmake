# The five dependencies, all from Debian packages:
#   libeigen3-dev libtbb-dev libopenblas-dev libfmt-dev (library) and doctest-dev (tests).
# The same calls are repeated with find_dependency() in earlybertConfig.cmake.in, so a consumer of the
# installed package gets exactly what the build tree used.

find_package(Eigen3 3.4 REQUIRED NO_MODULE)
find_package(TBB REQUIRED)
find_package(fmt REQUIRED)

# OpenBLAS through CMake's own BLAS finding; the library calls openblas_* for its threading policy,
# so another vendor would not link.
set(BLA_VENDOR OpenBLAS)
find_package(BLAS REQUIRED)
