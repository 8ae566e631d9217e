// gg::distributed over Open MPI's C API: the environment, the collectives on Tensors (checked for
// the same shape and dtype on every rank), check_same and abort_all.
#include <distributed/distributed.hpp>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "mpi.hpp"
#include <fmt/format.h>
#include <fmt/ranges.h>

namespace gg::distributed {

namespace {
/// Whether this program's Environment initialised MPI (and has not finalised it).
bool g_initialized = false;
/// The thread support MPI_Init_thread provided.
int g_thread_level = MPI_THREAD_SINGLE;
} // namespace

namespace detail {
bool mpi_running() {
  return g_initialized;
}
bool threads_supported() {
  return g_initialized && g_thread_level == MPI_THREAD_MULTIPLE;
}
void check(int rc, std::string_view call) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  throw IOError(fmt::format("{} failed on rank {}: {}", call, rank(),
                            std::string_view(text, static_cast<std::size_t>(length))));
}
} // namespace detail

namespace {
using detail::check;
using detail::mpi_type;

/// World size and rank once MPI runs; refuses a launched process whose Environment does not exist.
void require_environment(std::string_view who) {
  if (launched() && !g_initialized)
    throw UsageError(fmt::format("gg::distributed::{}: this process was started by mpirun but no "
                                 "gg::distributed::Environment exists: create one at the start of main()",
                                 who));
}

/// FNV-1a, 64 bits: the same on every machine and build (std::hash is not).
std::uint64_t hash_of(std::string_view bytes) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : bytes) h = (h ^ static_cast<unsigned char>(c)) * 0x100000001b3ULL;
  return h;
}

/// Every rank's 64-bit value, in rank order.
std::vector<std::uint64_t> gather_all(std::uint64_t value) {
  std::vector<std::uint64_t> all(static_cast<std::size_t>(world_size()));
  check(MPI_Allgather(&value, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD), "MPI_Allgather");
  return all;
}

/// Whether every rank's value equals this rank's: one reduction of two numbers (the maximum of the
/// value and of its complement are both this rank's only when all are equal).
bool all_equal(std::uint64_t value) {
  std::uint64_t mine[2] = {value, ~value}, most[2] = {0, 0};
  check(MPI_Allreduce(mine, most, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
  return most[0] == mine[0] && most[1] == mine[1];
}

/// Throws on every rank when the ranks' tensors differ in dtype or shape, naming them.
void require_same_layout(const Tensor& t, std::string_view who) {
  if (!t.defined()) throw ValueError(fmt::format("gg::distributed::{}: the tensor is undefined", who));
  const std::string layout = fmt::format("{} {}", dtype_name(t.dtype()), t.shape().str());
  if (all_equal(hash_of(layout))) return;
  const std::vector<std::uint64_t> all = gather_all(hash_of(layout));
  std::vector<int> differ;
  for (std::size_t r = 0; r < all.size(); ++r)
    if (all[r] != all[0]) differ.push_back(static_cast<int>(r));
  throw ShapeError(
      fmt::format("gg::distributed::{}: the ranks' tensors differ in shape or dtype (rank {} has {}); "
                  "ranks {} differ from rank 0",
                  who, rank(), layout, fmt::join(differ, ", ")));
}

/// Calls f(pointer, count) over t's elements in pieces MPI's int counts can hold.
template <class F> void in_pieces(Tensor& t, F&& f) {
  char* p = static_cast<char*>(t.raw());
  const std::size_t size = dtype_size(t.dtype());
  for (std::int64_t done = 0, n = t.numel(); done < n;) {
    const std::int64_t count = std::min<std::int64_t>(n - done, INT_MAX / 2);
    f(p + static_cast<std::size_t>(done) * size, static_cast<int>(count));
    done += count;
  }
}

} // namespace

Environment::Environment(int& argc, char**& argv) {
  if (!launched() || g_initialized) return;
  int ready = 0;
  MPI_Initialized(&ready);
  if (ready) throw UsageError("gg::distributed::Environment: MPI was already initialised elsewhere");
  int provided = 0;
  // Any thread may call MPI: DistributedDataParallel's communication thread runs the all-reduces while
  // the training thread computes (without this level it makes them progress from the training thread).
  if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS)
    throw IOError("gg::distributed::Environment: MPI_Init_thread failed");
  g_thread_level = provided;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  g_initialized = true;
}

Environment::~Environment() {
  if (!g_initialized) return;
  int done = 0;
  MPI_Finalized(&done);
  if (!done) MPI_Finalize();
  g_initialized = false;
}

bool launched() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"})
    if (std::getenv(name) != nullptr) return true;
  return false;
}

int world_size() {
  require_environment("world_size");
  if (!g_initialized) return 1;
  int n = 1;
  check(MPI_Comm_size(MPI_COMM_WORLD, &n), "MPI_Comm_size");
  return n;
}

int rank() {
  if (!g_initialized) return 0;
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

void all_reduce(Tensor& t, ReduceOp op) {
  require_environment("all_reduce");
  if (!g_initialized) {
    if (!t.defined()) throw ValueError("gg::distributed::all_reduce: the tensor is undefined");
    return; // one process: the sum, the mean and the maximum of one tensor are itself
  }
  require_same_layout(t, "all_reduce");
  const MPI_Datatype type = mpi_type(t.dtype());
  const MPI_Op mpi_op = op == ReduceOp::max ? MPI_MAX : MPI_SUM;
  in_pieces(t, [&](void* p, int count) {
    check(MPI_Allreduce(MPI_IN_PLACE, p, count, type, mpi_op, MPI_COMM_WORLD), "MPI_Allreduce");
  });
  if (op == ReduceOp::mean) {
    const double n = world_size();
    if (t.dtype() == f64)
      for (double *p = t.data<double>(), *e = p + t.numel(); p != e; ++p) *p /= n;
    else
      for (float *p = t.data<float>(), *e = p + t.numel(); p != e; ++p) *p = static_cast<float>(*p / n);
  }
}

void broadcast(Tensor& t, int root) {
  require_environment("broadcast");
  if (root < 0 || root >= world_size())
    throw ValueError(
        fmt::format("gg::distributed::broadcast: root {} is not a rank of 0 to {}", root, world_size() - 1));
  if (!g_initialized) {
    if (!t.defined()) throw ValueError("gg::distributed::broadcast: the tensor is undefined");
    return;
  }
  require_same_layout(t, "broadcast");
  const MPI_Datatype type = mpi_type(t.dtype());
  in_pieces(t,
            [&](void* p, int count) { check(MPI_Bcast(p, count, type, root, MPI_COMM_WORLD), "MPI_Bcast"); });
}

void barrier() {
  require_environment("barrier");
  if (g_initialized) check(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier");
}

void check_same(std::string_view value, std::string_view what) {
  require_environment("check_same");
  if (!g_initialized) return;
  const std::uint64_t h = hash_of(value);
  if (all_equal(h)) return;
  const std::vector<std::uint64_t> all = gather_all(h);
  std::vector<int> differ;
  for (std::size_t r = 0; r < all.size(); ++r)
    if (all[r] != all[0]) differ.push_back(static_cast<int>(r));
  throw ValueError(fmt::format("the ranks were started with different {}: rank{} {} differ{} from rank 0",
                               what, differ.size() > 1 ? "s" : "", fmt::join(differ, ", "),
                               differ.size() > 1 ? "" : "s"));
}

void abort_all(std::string_view message, int code) {
  if (g_initialized && world_size() > 1) {
    std::fprintf(stderr, "gradgraph: rank %d of %d: %.*s\n", rank(), world_size(),
                 static_cast<int>(message.size()), message.data());
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
  }
  std::fprintf(stderr, "gradgraph: %.*s\n", static_cast<int>(message.size()), message.data());
  std::fflush(stderr);
  std::exit(code);
}

} // namespace gg::distributed
