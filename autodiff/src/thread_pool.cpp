// The kernels' thread pool: helper threads created on first use, sleeping between jobs; one job at a
// time (a second thread's job, or a job started from inside a job, runs on its caller instead).
#include "thread_pool.hpp"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace gg::detail {

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
      parts_ = parts;
      next_ = 1;
      pending_ = parts - 1;
    }
    wake_.notify_all();
    run_part(0);
    std::unique_lock lock(m_);
    done_.wait(lock, [this] { return pending_ == 0; });
    return true;
  }

private:
  void run_part(int p) {
    const std::int64_t chunk = (n_ + parts_ - 1) / parts_;
    const std::int64_t lo = std::min(n_, p * chunk), hi = std::min(n_, lo + chunk);
    t_in_job = true;
    if (lo < hi) call_(ctx_, lo, hi);
    t_in_job = false;
  }

  void work() {
    std::unique_lock lock(m_);
    for (;;) {
      wake_.wait(lock, [this] { return stop_ || next_ < parts_; });
      if (stop_) return;
      while (next_ < parts_) {
        const int p = next_++;
        lock.unlock();
        run_part(p);
        lock.lock();
        if (--pending_ == 0) done_.notify_one();
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
  int parts_ = 0, next_ = 0, pending_ = 0;
  bool stop_ = false;
};

} // namespace

bool run_parallel(std::int64_t n, int parts, void (*call)(void*, std::int64_t, std::int64_t), void* ctx) {
  static Pool pool;
  return pool.run(n, parts, call, ctx);
}

} // namespace gg::detail
