// What the sources of gg::distributed share about MPI: whether this program's Environment started
// it, the error check of MPI calls and the element type of a dtype. Internal (mpi.h stays out of the
// public headers).
#pragma once

#include <autodiff/tensor.hpp>

#include <string_view>

#include <mpi.h>

namespace gg::distributed::detail {

/// Whether this program's Environment initialised MPI (and has not finalised it).
bool mpi_running();
/// Whether MPI runs with MPI_THREAD_MULTIPLE: any thread may call it at any time.
bool threads_supported();
/// Throws an IOError naming the MPI call and this rank when rc is not MPI_SUCCESS.
void check(int rc, std::string_view call);
/// MPI's element type of a dtype.
inline MPI_Datatype mpi_type(DType dtype) {
  return dtype == f64 ? MPI_DOUBLE : MPI_FLOAT;
}

} // namespace gg::distributed::detail
