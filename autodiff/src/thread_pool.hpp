// The kernels' worker threads (internal): helpers that sleep on a condition variable between jobs
// (after a bounded spin watching for the next one: GRADGRAPH_SPIN_US, 200 us by default), so an idle
// process leaves no core busy; the caller claims chunks of the job too, so a
// helper slow to wake delays nothing. (libgomp's default spin-then-sleep wait, 300,000 spins, made
// a 2-thread training step 14x slower than 1 thread on a loaded 2-core machine:
// docs/performance.md.)
#pragma once

#include <cstdint>

namespace gg::detail {

/// Calls call(ctx, lo, hi) on disjoint chunks covering [0, n) (a few per part, at most n), run by
/// the caller and up to parts - 1 pool threads, and returns when all are done. False (nothing run) when the
/// pool is busy with another thread's job or when called from inside a job: the caller then runs
/// the whole range itself. `call` must not throw.
bool run_parallel(std::int64_t n, int parts, void (*call)(void*, std::int64_t, std::int64_t), void* ctx);
/// Whether the calling thread is running a chunk of a run_parallel job (a job started there runs on it).
bool in_parallel_job();
/// GRADGRAPH_SPIN_US's value (`text`, null when unset) as the pool reads it: microseconds from 0 to
/// 1,000,000 (larger ones are taken as 1,000,000); unset or empty, or anything else after a warning
/// (gg::warn, naming the variable and its text), the default, 200.
int spin_us_of(const char* text);

} // namespace gg::detail
