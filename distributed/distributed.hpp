// gg::distributed: the processes of a data-parallel run over MPI (Open MPI's C API), as
// torch.distributed's collectives — world_size(), rank(), all_reduce, broadcast, barrier — on
// Tensors, plus the checks a run needs: every rank started alike (check_same), and one rank's failure
// ending all of them with its message (abort_all). Started without mpirun, the program is one
// process, rank 0 of 1, and every collective is the identity: the same program runs either way.
#pragma once

#include <autodiff/tensor.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace gg::distributed {

/// The MPI environment of a program: MPI_Init_thread when the process was started by mpirun (or
/// another MPI launcher), nothing otherwise; MPI_Finalize when it goes. One per program, in main(),
/// before any other call of this namespace. Its destructor waits for no rank: a rank that leaves
/// early by an exception should call abort_all (run() does) so the others do not wait for it.
class Environment {
public:
  Environment(int& argc, char**& argv);
  ~Environment();
  Environment(const Environment&) = delete;
  Environment& operator=(const Environment&) = delete;
};

/// Whether this process is one of several started by an MPI launcher (its environment says so:
/// Open MPI's OMPI_COMM_WORLD_SIZE, or PMI_SIZE / PMIX_RANK of other launchers).
bool launched();
/// The number of processes (1 without mpirun).
int world_size();
/// This process's rank, 0 to world_size() - 1 (0 without mpirun).
int rank();

/// How all_reduce combines the ranks' tensors.
enum class ReduceOp : std::uint8_t { sum, mean, max };

/// Replaces t, on every rank, by the elementwise combination of every rank's t (same shape and dtype
/// on all ranks: checked, a ShapeError naming the ranks otherwise). Every rank gets the same bits:
/// Open MPI reduces in an order fixed by the world size and the message size, never by timing.
/// mean is the sum divided by world_size().
void all_reduce(Tensor& t, ReduceOp op = ReduceOp::sum);
/// Replaces t on every rank by root's t (same shape and dtype everywhere: checked).
void broadcast(Tensor& t, int root = 0);
/// Returns when every rank has called it.
void barrier();

/// Checks that every rank holds the same text — its options, a fingerprint of its data — and throws
/// a ValueError on every rank otherwise, naming `what` and the ranks that differ from rank 0 (the
/// ranks compare 64-bit hashes of the texts).
void check_same(std::string_view value, std::string_view what);

/// Ends every rank of the run: prints "gradgraph: rank R of N: message" on standard error and has
/// the launcher stop every process with exit code `code` (MPI_Abort). Without mpirun: prints the
/// message and exits with `code`.
[[noreturn]] void abort_all(std::string_view message, int code);

} // namespace gg::distributed
