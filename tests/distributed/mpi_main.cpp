// SPDX-License-Identifier: Apache-2.0
// The main of the tests that run under mpirun: MPI initialised around doctest, every process running
// every case (each case's collectives in the same order), and the job failing when any process fails.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "earlybert/distributed/mpi.hpp"

int main(int argc, char** argv) {
  earlybert::mpi_environment mpi(argc, argv);
  doctest::Context context(argc, argv);
  int failed = context.run() != 0 ? 1 : 0;
  MPI_Allreduce(MPI_IN_PLACE, &failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
  return failed;
}
