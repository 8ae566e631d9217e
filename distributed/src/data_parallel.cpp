// DistributedDataParallel: the buckets of gradients, filled by the parameters' post-accumulate-grad
// hooks and all-reduced in order (MPI_Iallreduce on a communicator of its own, run by a communication
// thread) while backward goes on; the broadcast of rank 0's model at the start; the trainer's small
// collectives.
#include <distributed/data_parallel.hpp>

#include <chrono>
#include <climits>
#include <cstring>
#include <exception>

#include <fmt/format.h>

#include "mpi.hpp"
#include "progress.hpp"

namespace gg::distributed {

using detail::check;
using detail::mpi_type;

struct DistributedDataParallel::State {
  struct Param {
    Var var;
    std::string name;
    std::size_t bucket = 0;
    std::int64_t offset = 0; ///< first element in its bucket's buffer
    bool marked = false;     ///< its gradient is in the bucket this step
  };
  struct Bucket {
    DType dtype = f32;
    Tensor buffer; ///< the parameters' gradients, flat, in the bucket's order
    std::vector<std::size_t> params;
    std::size_t pending = 0; ///< parameters whose gradient has not arrived this step
  };
  MPI_Comm comm = MPI_COMM_NULL;
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  std::vector<MPI_Request> requests; ///< one per bucket (MPI_REQUEST_NULL when none is in flight)
  /// Every collective on comm goes through it, in order: the buckets' and the trainer's numbers.
  std::unique_ptr<detail::Progress> progress;
  detail::Progress::Ticket last_bucket = 0; ///< the ticket of the last bucket started this step
  std::vector<HookHandle> hooks;
  std::size_t started = 0; ///< buckets whose all-reduce has started this step (always a prefix)
  bool collecting = false; ///< a step's gradients are arriving
  bool synced = false;     ///< this step's averages are in .grad()
  double scale = 1;        ///< this rank's weight in the sum (rows / global_rows, or 1 / world size)

  /// Starts the all-reduce (op) of count elements at data, in place, after those posted before it.
  detail::Progress::Ticket all_reduce(void* data, int count, MPI_Datatype type, MPI_Op op,
                                      MPI_Request& request) {
    return progress->post({[=, this, &request] {
                             check(MPI_Iallreduce(MPI_IN_PLACE, data, count, type, op, comm, &request),
                                   "MPI_Iallreduce");
                           },
                           [&request] {
                             int done = 0;
                             check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
                             return done != 0;
                           }});
  }
  /// values replaced on every rank by their combination over the ranks (op: MPI_SUM, MPI_MAX), through
  /// the communication thread: a rank that waits for the others sleeps instead of spinning in MPI.
  void reduce(std::vector<double>& values, MPI_Op op);
  /// Starts bucket k's all-reduce.
  void start_bucket(std::size_t k) {
    Bucket& b = buckets[k];
    last_bucket = all_reduce(b.buffer.raw(), static_cast<int>(b.buffer.numel()), mpi_type(b.dtype), MPI_SUM,
                             requests[k]);
  }
  void start_step() {
    for (Param& p : params) p.marked = false;
    for (Bucket& b : buckets) b.pending = b.params.size();
    started = 0;
    collecting = true;
    synced = false;
  }
  /// grad × scale into p's place in its bucket (zeros for an undefined gradient).
  void copy_in(const Param& p, const Tensor& grad) {
    Bucket& b = buckets[p.bucket];
    const std::int64_t n = p.var.numel();
    if (!grad.defined()) {
      std::memset(static_cast<char*>(b.buffer.raw()) +
                      static_cast<std::size_t>(p.offset) * dtype_size(b.dtype),
                  0, static_cast<std::size_t>(n) * dtype_size(b.dtype));
      return;
    }
    const Tensor g = grad.to(b.dtype);
    if (b.dtype == f64) {
      const double* src = g.data<double>();
      double* dst = b.buffer.data<double>() + p.offset;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i] * scale;
    } else {
      const float* src = g.data<float>();
      float* dst = b.buffer.data<float>() + p.offset;
      for (std::int64_t i = 0; i < n; ++i) dst[i] = static_cast<float>(src[i] * scale);
    }
  }
};

namespace {

/// "name f32 [3, 4]" lines: what every rank's model must agree on.
std::string layout_of(const std::vector<std::pair<std::string, Var>>& params) {
  std::string text;
  for (const auto& [name, v] : params)
    text += fmt::format("{} {} {}\n", name, dtype_name(v.dtype()), v.shape().str());
  return text;
}

int count_of(std::int64_t n, std::string_view what) {
  if (n > INT_MAX)
    throw ValueError(fmt::format("DistributedDataParallel: {} of {} elements is too large for MPI", what, n));
  return static_cast<int>(n);
}

} // namespace

DistributedDataParallel::DistributedDataParallel(nn::Module& module, DataParallelOptions options)
    : module_(&module), options_(options), rank_(distributed::rank()), world_size_(distributed::world_size()),
      state_(std::make_unique<State>()) {
  if (options_.bucket_bytes == 0)
    throw ValueError("DistributedDataParallel: bucket_bytes must be at least 1");
  const auto named = module.named_parameters();
  check_same(layout_of(named), "models (parameter names, shapes or dtypes differ)");
  State& s = *state_;
  // Buckets in reverse registration order: a network's last layers finish their gradients first.
  std::size_t bytes = 0;
  for (std::size_t k = named.size(); k-- > 0;) {
    const auto& [name, v] = named[k];
    if (!v.requires_grad()) continue;
    const std::size_t size = static_cast<std::size_t>(v.numel()) * dtype_size(v.dtype());
    if (s.buckets.empty() || s.buckets.back().dtype != v.dtype() ||
        (bytes > 0 && bytes + size > options_.bucket_bytes)) {
      s.buckets.emplace_back().dtype = v.dtype();
      bytes = 0;
    }
    State::Bucket& b = s.buckets.back();
    s.params.push_back(
        {v, name, s.buckets.size() - 1, static_cast<std::int64_t>(bytes / dtype_size(v.dtype())), false});
    b.params.push_back(s.params.size() - 1);
    bytes += size;
  }
  for (State::Bucket& b : s.buckets) {
    std::int64_t n = 0;
    for (const std::size_t i : b.params) n += s.params[i].var.numel();
    b.buffer = Tensor::zeros({count_of(n, "a bucket")}, b.dtype);
  }
  s.requests.assign(s.buckets.size(), MPI_REQUEST_NULL);
  s.scale = 1.0 / world_size_;
  if (world_size_ == 1) return; // one process: its gradients are the batch's already
  check(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm), "MPI_Comm_dup");
  stats_.threaded = options_.communication_thread && detail::threads_supported();
  s.progress = std::make_unique<detail::Progress>(stats_.threaded);
  for (const auto& [name, v] : named) { // rank 0's model everywhere
    Tensor value = v.value();
    broadcast(value, 0);
    Var(v).set_value(value); // written in place: the leaf's version moves on
  }
  for (auto& [name, t] : module.named_buffers()) broadcast(t, 0);
  for (std::size_t i = 0; i < s.params.size(); ++i)
    s.hooks.push_back(
        s.params[i].var.register_post_accumulate_grad_hook([this, i](Var& leaf) { ready(i, leaf); }));
}

DistributedDataParallel::~DistributedDataParallel() {
  State& s = *state_;
  for (HookHandle& h : s.hooks) h.remove();
  if (s.comm == MPI_COMM_NULL) return;
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  if (std::uncaught_exceptions() > 0) {
    // An error unwinds: waiting for all-reduces in flight, or freeing the communicator, could wait for
    // ranks that will never get there. The buffers must outlive MPI's use, and the communication
    // thread may poll them: leave both (the run is ending; abort_all follows).
    s.progress->abandon();
    (void)state_.release();
    return;
  }
  s.progress.reset(); // completes what is in flight and ends the thread
  MPI_Comm_free(&s.comm);
}

std::vector<std::vector<std::string>> DistributedDataParallel::buckets() const {
  std::vector<std::vector<std::string>> r;
  for (const State::Bucket& b : state_->buckets) {
    auto& names = r.emplace_back();
    for (const std::size_t i : b.params) names.push_back(state_->params[i].name);
  }
  return r;
}

void DistributedDataParallel::ready(std::size_t param, const Var& leaf) {
  State& s = *state_;
  if (!s.collecting) s.start_step();
  State::Param& p = s.params[param];
  if (p.marked)
    throw UsageError(fmt::format(
        "DistributedDataParallel: the gradient of '{}' arrived twice in one step, before the others "
        "(two backward passes?): call finish_gradients() after each backward pass",
        p.name));
  p.marked = true;
  s.copy_in(p, leaf.grad());
  --s.buckets[p.bucket].pending;
  // Start the buckets now complete, in order: every rank starts the same all-reduces in the same order.
  while (s.started < s.buckets.size() && s.buckets[s.started].pending == 0) {
    s.start_bucket(s.started);
    ++s.started, ++stats_.buckets, ++stats_.buckets_in_backward;
  }
  // Without the communication thread MPI progresses only inside its calls: give it some at each hook.
  s.progress->pump();
  if (s.started == s.buckets.size()) finish_gradients();
}

void DistributedDataParallel::begin_step(std::int64_t rows, std::int64_t global_rows) {
  if (global_rows < 1 || rows < 0 || rows > global_rows)
    throw ValueError(
        fmt::format("DistributedDataParallel::begin_step: {} rows of a batch of {}", rows, global_rows));
  State& s = *state_;
  if (s.collecting)
    throw UsageError("DistributedDataParallel::begin_step: the previous step's gradients are still being "
                     "averaged: call finish_gradients() after its backward pass");
  s.scale = static_cast<double>(rows) / static_cast<double>(global_rows);
  s.synced = false;
  if (world_size_ > 1 && options_.broadcast_buffers)
    for (auto& [name, t] : module_->named_buffers()) broadcast(t, 0);
}

void DistributedDataParallel::finish_gradients() {
  State& s = *state_;
  if (world_size_ == 1 || s.synced) return;
  if (!s.collecting) s.start_step(); // no backward on this rank (no rows): it contributes zeros
  for (std::size_t k = s.started; k < s.buckets.size(); ++k) {
    for (const std::size_t i : s.buckets[k].params)
      if (!s.params[i].marked) s.copy_in(s.params[i], Tensor()); // no gradient here: zero
    s.start_bucket(k);
    ++stats_.buckets;
  }
  s.started = s.buckets.size();
  const auto t0 = std::chrono::steady_clock::now();
  s.progress->wait(s.last_bucket);
  stats_.wait_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  for (State::Param& p : s.params) {
    const State::Bucket& b = s.buckets[p.bucket];
    const std::size_t size = dtype_size(b.dtype), n = static_cast<std::size_t>(p.var.numel());
    const char* src = static_cast<const char*>(b.buffer.raw()) + static_cast<std::size_t>(p.offset) * size;
    if (p.var.has_grad() && !p.var.is_scalar_node()) { // the leaf's own gradient storage: in place
      Tensor g = p.var.grad();
      std::memcpy(g.raw(), src, n * size);
    } else {
      Tensor g = Tensor::zeros(p.var.shape(), b.dtype);
      std::memcpy(g.raw(), src, n * size);
      p.var.set_grad(g);
    }
  }
  s.collecting = false;
  s.synced = true;
  s.scale = 1.0 / world_size_;
  ++stats_.steps;
}

void DistributedDataParallel::State::reduce(std::vector<double>& values, MPI_Op op) {
  if (comm == MPI_COMM_NULL || values.empty()) return; // one process
  MPI_Request request = MPI_REQUEST_NULL;
  progress->wait(all_reduce(values.data(), count_of(static_cast<std::int64_t>(values.size()), "a reduction"),
                            MPI_DOUBLE, op, request));
}

void DistributedDataParallel::all_reduce_sum(std::vector<double>& values) {
  state_->reduce(values, MPI_SUM);
}

void DistributedDataParallel::all_reduce_max(std::vector<double>& values) {
  state_->reduce(values, MPI_MAX);
}

Tensor DistributedDataParallel::all_gather_rows(const Tensor& rows) {
  if (world_size_ == 1) return rows;
  if (!rows.defined() || rows.rank() < 1)
    throw ValueError("DistributedDataParallel::all_gather_rows: a tensor of rows (rank 1 or more)");
  Shape row = rows.shape();
  row[0] = 1;
  check_same(fmt::format("{} {}", dtype_name(rows.dtype()), row.str()),
             "row layouts (dtype or trailing shape) in all_gather_rows");
  const std::int64_t per_row = row.numel();
  state_->progress->wait_all(); // this thread's collectives on the communicator come after those posted
  std::int64_t mine = rows.shape()[0];
  std::vector<std::int64_t> counts(static_cast<std::size_t>(world_size_));
  check(MPI_Allgather(&mine, 1, MPI_INT64_T, counts.data(), 1, MPI_INT64_T, state_->comm), "MPI_Allgather");
  std::vector<int> elements, displs;
  std::int64_t total = 0;
  for (const std::int64_t c : counts) {
    displs.push_back(count_of(total * per_row, "a gathered tensor"));
    elements.push_back(count_of(c * per_row, "a gathered block"));
    total += c;
  }
  Shape shape = rows.shape();
  shape[0] = total;
  Tensor out = Tensor::zeros(shape, rows.dtype());
  const Tensor& src = rows;
  check(MPI_Allgatherv(src.raw(), elements[static_cast<std::size_t>(rank_)], mpi_type(rows.dtype()),
                       out.raw(), elements.data(), displs.data(), mpi_type(rows.dtype()), state_->comm),
        "MPI_Allgatherv");
  return out;
}

} // namespace gg::distributed
