// detail::Progress — the communication thread of DistributedDataParallel: non-blocking operations
// (MPI's collectives) started in the order they were posted and polled until they complete, on a
// thread of its own, so that they move while the caller computes (Open MPI advances a collective only
// inside its calls). Free of MPI (an operation is two functions), so tests/threads runs it under
// ThreadSanitizer with operations of its own. Internal to distributed/.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <utility>

#ifdef __linux__
#include <sys/prctl.h>
#endif

namespace gg::distributed::detail {

/// One non-blocking operation: start() begins it; poll() is then called until it returns true (done).
struct Operation {
  std::function<void()> start;
  std::function<bool()> poll;
};

/// Runs operations in the order they are posted: each started after the ones before it, all in flight
/// polled until done. With a thread (`threaded`), post() returns at once and the thread starts and polls
/// them, sleeping between rounds (2 µs, doubling to 100 µs while nothing moves; 20 µs at most while a
/// caller waits), so a waiting rank leaves the processor to the others instead of spinning. Without,
/// post() starts the operation on the caller's thread and pump() / wait() poll there. An operation
/// that throws ends the processing: every later post() and wait() rethrows its exception.
class Progress {
public:
  using Ticket = std::uint64_t;

  explicit Progress(bool threaded) {
    if (threaded) thread_ = std::thread([this] { run(); });
  }
  /// Completes the operations posted (a failure is dropped: the destructor cannot report it), then
  /// ends the thread. Call abandon() instead when other processes may never complete them.
  ~Progress() {
    if (!thread_.joinable()) {
      try {
        wait_all();
      } catch (...) { // NOLINT(bugprone-empty-catch): reported by wait() already, or never asked for
      }
      return;
    }
    {
      const std::lock_guard lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    thread_.join();
  }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool threaded() const { return thread_.joinable(); }

  /// Queues op after the operations posted before it; returns its ticket for wait().
  Ticket post(Operation op) {
    std::unique_lock lock(mutex_);
    rethrow_failure();
    entries_.push_back({std::move(op), false});
    const Ticket ticket = posted_++;
    if (threaded()) {
      lock.unlock();
      wake_.notify_all();
    } else {
      start_posted(lock);
    }
    return ticket;
  }

  /// Without a thread: polls the operations in flight once (a chance to progress). With one: nothing.
  void pump() {
    if (threaded()) return;
    std::unique_lock lock(mutex_);
    rethrow_failure();
    poll_in_flight(lock);
  }

  /// Returns when the operation of `ticket` and every one posted before it have completed; rethrows
  /// the exception of an operation that failed.
  void wait(Ticket ticket) {
    std::unique_lock lock(mutex_);
    if (!threaded()) {
      while (completed_ <= ticket) {
        rethrow_failure();
        poll_in_flight(lock);
      }
      return;
    }
    ++waiting_;
    nudged_ = true;
    wake_.notify_all(); // poll at once, and often, while someone waits
    done_.wait(lock, [&] { return completed_ > ticket || failure_; });
    --waiting_;
    if (completed_ <= ticket) rethrow_failure();
  }

  /// wait() for every operation posted so far.
  void wait_all() {
    Ticket last = 0;
    {
      const std::lock_guard lock(mutex_);
      if (posted_ == 0) return;
      last = posted_ - 1;
    }
    wait(last);
  }

  /// Leaves the thread running, detached, and this object alive forever: for a run that is ending by
  /// an error while other processes may never complete the operations in flight (their buffers must
  /// outlive them). Call on an object that will never be destroyed (a released unique_ptr's).
  void abandon() {
    if (thread_.joinable()) thread_.detach();
  }

private:
  struct Entry {
    Operation op;
    bool done = false;
  };

  void rethrow_failure() const {
    if (failure_) std::rethrow_exception(failure_);
  }

  /// Runs f() without the lock; an exception becomes the failure. Whether f ran without one.
  template <class F> bool unlocked(std::unique_lock<std::mutex>& lock, F&& f) {
    lock.unlock();
    std::exception_ptr error;
    try {
      f();
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    if (error && !failure_) failure_ = error;
    return !error;
  }

  /// Starts the posted operations not started yet, in order. Whether one started.
  bool start_posted(std::unique_lock<std::mutex>& lock) {
    bool any = false;
    while (started_ < posted_ && !failure_) {
      Entry& e = entries_[static_cast<std::size_t>(started_ - completed_)]; // push_back keeps it in place
      if (!unlocked(lock, [&] { e.op.start(); })) break;
      ++started_;
      any = true;
    }
    return any;
  }

  /// Polls each started operation not done yet and drops the done prefix. Whether one completed.
  bool poll_in_flight(std::unique_lock<std::mutex>& lock) {
    bool any = false;
    for (Ticket t = completed_; t < started_ && !failure_; ++t) {
      Entry& e = entries_[static_cast<std::size_t>(t - completed_)];
      if (e.done) continue;
      bool done = false;
      if (!unlocked(lock, [&] { done = e.op.poll(); })) break;
      if (done) e.done = any = true;
    }
    while (!entries_.empty() && entries_.front().done) {
      entries_.pop_front();
      ++completed_;
    }
    return any;
  }

  void run() {
#ifdef __linux__
    prctl(PR_SET_TIMERSLACK, 1000UL); // sleeps of a few µs, not Linux's default 50 µs slack
#endif
    using std::chrono::microseconds;
    std::unique_lock lock(mutex_);
    microseconds pause{2};
    while (!failure_) {
      const bool started = start_posted(lock);
      const bool completed = poll_in_flight(lock);
      if (completed) done_.notify_all();
      if (started || completed) pause = microseconds{2};
      if (completed_ == posted_) { // nothing in flight: sleep until something is posted
        if (stop_) return;
        wake_.wait(lock, [&] { return stop_ || posted_ > started_; });
        continue;
      }
      if (wake_.wait_for(lock, pause, [&] { return posted_ > started_ || nudged_; }))
        pause = microseconds{2};
      else
        pause = std::min(pause * 2, microseconds{waiting_ > 0 ? 20 : 100});
      nudged_ = false;
    }
    done_.notify_all(); // waiters see the failure
  }

  std::mutex mutex_;
  std::condition_variable wake_; ///< the thread: something posted, someone waits, or stop
  std::condition_variable done_; ///< the waiters: operations completed, or one failed
  std::deque<Entry> entries_;    ///< tickets completed_ to posted_ - 1
  Ticket posted_ = 0, started_ = 0, completed_ = 0;
  int waiting_ = 0;     ///< callers in wait()
  bool nudged_ = false; ///< a caller began to wait: poll at once
  bool stop_ = false;
  std::exception_ptr failure_;
  std::thread thread_; ///< last: started when every member above exists
};

} // namespace gg::distributed::detail
