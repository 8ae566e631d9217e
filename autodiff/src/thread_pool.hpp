// The kernels' worker threads (internal): helpers that sleep on a condition variable between jobs,
// so that splitting a large loop costs one wake-up and an idle helper costs nothing. (OpenMP's
// default spin-then-sleep wait made a 2-thread training step 14x slower than 1 thread on a loaded
// 2-core machine: docs/performance.md.)
#pragma once

#include <cstdint>

namespace gg::detail {

/// Calls call(ctx, lo, hi) on `parts` disjoint chunks covering [0, n), the caller running the first
/// chunk and pool threads the others, and returns when all are done. False (nothing run) when the
/// pool is busy with another thread's job or when called from inside a job: the caller then runs
/// the whole range itself. `call` must not throw.
bool run_parallel(std::int64_t n, int parts, void (*call)(void*, std::int64_t, std::int64_t), void* ctx);

} // namespace gg::detail
