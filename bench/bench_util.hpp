// Shared by the benchmark programs: the clock, best-of-N timing of a repeated step, the process's
// resident memory, and the "key=value" result lines that bench/run reads.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include <time.h>

namespace bench {

using clock_type = std::chrono::steady_clock;

inline double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// A field of /proc/self/status in MiB ("VmHWM": peak resident set size, "VmRSS": current).
inline double status_mib(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::stod(line.substr(field.size() + 1)) / 1024.0;
  return 0;
}
inline double peak_rss_mib() {
  return status_mib("VmHWM");
}
inline double current_rss_mib() {
  return status_mib("VmRSS");
}

/// The CPU time this process has used so far (all its threads), in seconds.
inline double cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

/// The fields " cpu_ms=... load_cpu_ms=... train_cpu_ms=... eval_cpu_ms=..." of a run that loads its
/// data, trains and evaluates, from the CPU times (cpu_seconds) at its start and after each phase.
inline std::string cpu_phases(double start, double loaded, double trained, double end) {
  const auto ms = [](double s) { return std::to_string(s * 1e3); };
  return " cpu_ms=" + ms(end - start) + " load_cpu_ms=" + ms(loaded - start) +
         " train_cpu_ms=" + ms(trained - loaded) + " eval_cpu_ms=" + ms(end - trained);
}

/// Seconds per step: the best and the median over `repeats` timed runs of `steps` steps each.
struct Timing {
  double best = 0, median = 0;
  long steps = 0; ///< steps per timed run
};

/// Times step(): a warm-up of at least 3 steps and 0.05 s, then `repeats` runs whose step count is
/// chosen so that all of them together take about `seconds`.
template <class F> Timing time_steps(F&& step, double seconds, int repeats) {
  auto t0 = clock_type::now();
  long warm = 0;
  while (warm < 3 || seconds_since(t0) < 0.05) step(), ++warm;
  const double per_step = seconds_since(t0) / static_cast<double>(warm);
  Timing t;
  t.steps = std::max(1L, static_cast<long>(seconds / repeats / per_step));
  std::vector<double> runs;
  for (int r = 0; r < repeats; ++r) {
    t0 = clock_type::now();
    for (long i = 0; i < t.steps; ++i) step();
    runs.push_back(seconds_since(t0) / static_cast<double>(t.steps));
  }
  std::sort(runs.begin(), runs.end());
  t.best = runs.front();
  t.median = runs[runs.size() / 2];
  return t;
}

} // namespace bench
