// The kernels' thread pool: helper threads created on first use, sleeping between jobs; one job at a
// time (a second thread's job, or a job started from inside a job, runs on its caller instead).
#include "thread_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace gg::detail {

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

class Pool {
public:
  ~Pool() {
    {
      std::lock_guard lock(m_);
      stop_ = true;
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

  void work() {
    std::unique_lock lock(m_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || next_ < chunks_; });
      if (stop_) return;
      while (next_ < chunks_) {
        const int p = next_++;
        ++running_;
        lock.unlock();
        run_chunk(p);
        lock.lock();
        if (--running_ == 0) done_.notify_one();
      }
    }
  }

  std::mutex run_mutex_; // one job at a time
  std::mutex m_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> threads_;
  void (*call_)(void*, std::int64_t, std::int64_t) = nullptr;
  void* ctx_ = nullptr;
  std::int64_t n_ = 0;
  int chunks_ = 0, next_ = 0, running_ = 0; ///< chunks of the job, next to claim, being run by helpers
  bool stop_ = false;
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
