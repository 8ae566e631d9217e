// The kernels' thread pool: helper threads created on first use that sleep on a condition variable
// between jobs, after a bounded spin watching for the next one (GRADGRAPH_SPIN_US, 200 us by default);
// one job at a time (a second thread's job, or a job started from inside a job, runs on its caller instead).
#include "thread_pool.hpp"

#include <autodiff/warning.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <vector>

#if __has_include(<sys/resource.h>)
#include <sys/resource.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace gg::detail {

namespace {
/// How long a helper watches for the next job after one before it sleeps, and the caller for its
/// helpers' chunks to end: 200 us by default, GRADGRAPH_SPIN_US microseconds when set (0: sleep at
/// once), as OpenMP's KMP_BLOCKTIME / GOMP_SPINCOUNT and OpenBLAS's OPENBLAS_THREAD_TIMEOUT set theirs.
/// Only a process that asked for more than one kernel thread has helpers. Waking a sleeping thread
/// takes tens of microseconds on a virtual machine (the pool's round trip in bench/micro.cpp), as long
/// as half of a split product: on the quiet 2-core host the 784-128-10 step at batch 64 on 2 threads
/// took 0.20-0.21 ms with 200 us against 0.27-0.32 with 0, and no 2-thread bench row was slower; with
/// other processes on the 2 cores (load 4) it took 0.35-0.59 against 0.29-0.45: the spin takes the
/// time the scheduler would give the caller (docs/performance.md, "Waking the kernels' helper"), so a
/// shared, oversubscribed machine wants GRADGRAPH_SPIN_US=0. Bounded, so an idle process leaves no
/// core busy (libgomp's default, 300,000 spins before it sleeps, made a 2-thread step 14x slower on
/// this 2-core machine).
constexpr int k_default_spin_us = 200;
} // namespace

int spin_us_of(const char* text) {
  if (text == nullptr || *text == '\0') return k_default_spin_us;
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(text, &end, 10);
  if (*end == '\0' && v >= 0 && errno == 0) return static_cast<int>(std::min<long>(v, 1'000'000));
  if (*end == '\0' && v > 0) return 1'000'000; // out of long's range: as large as allowed
  warn(
      fmt::format("GRADGRAPH_SPIN_US='{}' is not a number of microseconds (0 to 1000000); the kernel threads "
                  "spin the default {} us between jobs",
                  text, k_default_spin_us));
  return k_default_spin_us;
}

#ifdef GG_NO_THREADS
// Built without threads (GG_THREADS=OFF: the WebAssembly engine has none): every job runs on its caller.
bool run_parallel(std::int64_t, int, void (*)(void*, std::int64_t, std::int64_t), void*) {
  return false;
}
bool in_parallel_job() {
  return false;
}
#else
namespace {

thread_local bool t_in_job = false;

/// The calling thread's involuntary context switches so far: another thread wanted its core.
long involuntary_switches() {
#ifdef RUSAGE_THREAD
  rusage u{};
  getrusage(RUSAGE_THREAD, &u);
  return u.ru_nivcsw;
#else
  return 0;
#endif
}

void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

class Pool {
public:
  Pool() : spin_(spin_us_of(std::getenv("GRADGRAPH_SPIN_US"))) {}

  ~Pool() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
      jobs_.fetch_add(1, std::memory_order_relaxed);
    }
    wake_.notify_all();
    for (std::thread& t : threads_) t.join();
  }

  bool run(std::int64_t n, int parts, void (*call)(void*, std::int64_t, std::int64_t), void* ctx) {
    if (t_in_job) return false;
    std::unique_lock busy(run_mutex_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard lock(m_);
      while (static_cast<int>(threads_.size()) < parts - 1) threads_.emplace_back([this] { work(); });
      call_ = call;
      ctx_ = ctx;
      n_ = n;
      // A few chunks per thread, claimed by whoever is free: waking a sleeping helper takes tens of
      // microseconds on a virtual machine (measured: a 2-thread ReLU of 65,536 floats took 109 us
      // against 7 us on one thread when the caller waited for the helper's half), so the caller
      // goes on claiming chunks and waits only for the ones a helper has started.
      chunks_ = static_cast<int>(std::min<std::int64_t>(n, std::int64_t{4} * parts));
      next_ = 0;
      running_ = 0;
      jobs_.fetch_add(1, std::memory_order_relaxed);
    }
    wake_.notify_all();
    for (;;) {
      int p;
      {
        std::lock_guard lock(m_);
        if (next_ >= chunks_) break;
        p = next_++;
      }
      run_chunk(p);
    }
    // The helpers' chunks are about as long as the caller's: watch them end rather than sleep (a
    // sleeping caller is woken tens of microseconds late).
    if (spin_.count() > 0) spin([this] { return running_.load(std::memory_order_acquire) == 0; });
    std::unique_lock lock(m_);
    done_.wait(lock, [this] { return running_ == 0; });
    chunks_ = 0; // a helper waking late finds nothing to do
    return true;
  }

private:
  void run_chunk(int p) {
    const std::int64_t size = (n_ + chunks_ - 1) / chunks_;
    const std::int64_t lo = std::min(n_, p * size), hi = std::min(n_, lo + size);
    t_in_job = true;
    if (lo < hi) call_(ctx_, lo, hi);
    t_in_job = false;
  }

  /// A helper's loop: the chunks of each job, then a bounded spin watching jobs_, then sleep. On a
  /// host busier than its cores a spin takes a core another thread wants (the caller's among them:
  /// the scheduler shares one budget between a session's threads), so a helper preempted while it
  /// spins sleeps between the next k_rest jobs before it tries spinning again.
  void work() {
    constexpr int k_rest = 64;
    int rest = 0;
    std::unique_lock lock(m_);
    for (;;) {
      if (stop_) return;
      while (next_ < chunks_) {
        const int p = next_++;
        ++running_;
        lock.unlock();
        run_chunk(p);
        lock.lock();
        if (--running_ == 0) done_.notify_one();
      }
      const std::uint32_t seen = jobs_.load(std::memory_order_relaxed);
      if (rest > 0) {
        --rest;
      } else if (spin_.count() > 0) {
        lock.unlock();
        const long preempted = involuntary_switches();
        const bool moved = spin([this, seen] { return jobs_.load(std::memory_order_relaxed) != seen; });
        if (involuntary_switches() != preempted) rest = k_rest;
        lock.lock();
        if (moved) continue;
      }
      wake_.wait(lock, [this] { return stop_ || next_ < chunks_; });
    }
  }

  /// Spins (with a pause instruction) until done() or spin_ is over; done()'s last value.
  template <class F> bool spin(F done) const {
    const auto until = std::chrono::steady_clock::now() + spin_;
    for (unsigned i = 1;; ++i) {
      cpu_relax();
      if (done()) return true;
      if (i % 64 == 0 && std::chrono::steady_clock::now() >= until) return false;
    }
  }

  std::mutex run_mutex_; // one job at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  void (*call_)(void*, std::int64_t, std::int64_t) = nullptr;
  void* ctx_ = nullptr;
  std::int64_t n_ = 0;
  int chunks_ = 0, next_ = 0;   ///< chunks of the job, next to claim
  std::atomic<int> running_{0}; ///< chunks being run by helpers (changed under m_)
  bool stop_ = false;
  const std::chrono::microseconds spin_;
  /// Bumped (under m_) for each job and to stop: what a spinning helper watches.
  std::atomic<std::uint32_t> jobs_{0};
};

} // namespace

bool run_parallel(std::int64_t n, int parts, void (*call)(void*, std::int64_t, std::int64_t), void* ctx) {
  static Pool pool;
  return pool.run(n, parts, call, ctx);
}

bool in_parallel_job() {
  return t_in_job;
}
#endif

} // namespace gg::detail
