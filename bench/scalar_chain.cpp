// Scalar reverse mode against plain doubles and the C++ scalar-AD tools a user would pick: the chain
// x = a; repeat { x = x*b; x = x + a; x = tanh(x) } or one of ADBenchmark's sum_iter and prod_iter
// loops (the sum or the product of n inputs, one op per input), recorded and differentiated by
// gradgraph, ADOL-C and Sacado (where built in: bench/CMakeLists.txt) and evaluated with plain doubles.
//
//   bench_scalar_chain [N_OPS [RUNS]] [--workload chain|sum_iter|prod_iter] [--n N] [--no-peers] [--phases]
// (--no-peers: gradgraph and plain doubles only, for profiling gradgraph. --phases: the chain's
// recording, backward sweep and freeing timed apart, alternating with the plain loop, RUNS times.) One
// workload per process, so no tool's state (ADOL-C's location store, memory pools) carries over from another
// workload. Each run times every tool once, in turn (a burst of load from other jobs hits them alike); each
// figure is the best of RUNS. A timing covers about N_OPS ops (the chain once; a loop as many times as that
// takes) and includes making the inputs and reading the gradient out. Every tool's gradient is checked
// against the exact one first (exit 3 if wrong). Prints a summary, the peers' versions ("version
// adolc=2.7.2"), then "result workload=... n=... tool=... ns_per_op=... ratio_plain=... ratio_gradgraph=..."
// per tool.
#include <autodiff/autodiff.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifdef GG_HAVE_ADOLC
#include <adolc/adolc.h>
#endif
#ifdef GG_HAVE_SACADO
#include <Sacado_trad.hpp>
#include <Trilinos_version.h>
#endif

#include "bench_util.hpp"

namespace {

enum class Kind { chain, sum_iter, prod_iter };

/// One workload: its kind, its inputs ({a, b} for the chain) and how many ops one gradient records.
struct Workload {
  Kind kind;
  std::vector<double> x;
  int reps = 0; ///< the chain's repeats (3 ops each)
  long ops = 0;
  short tag = 1; ///< ADOL-C's tape number for this workload
  std::string name() const {
    return kind == Kind::chain ? "chain" : kind == Kind::sum_iter ? "sum_iter" : "prod_iter";
  }
};

/// The function of a workload, for any number type T; `zero` and `one` are T's constants.
template <class T> T evaluate(const Workload& w, const std::vector<T>& x, const T& zero, const T& one) {
  using std::tanh;
  if (w.kind == Kind::chain) {
    T y = x[0];
    for (int i = 0; i < w.reps; ++i) {
      y = y * x[1];
      y = y + x[0];
      y = tanh(y);
    }
    return y;
  }
  T y = w.kind == Kind::sum_iter ? zero : one;
  for (const T& xi : x) {
    if (w.kind == Kind::sum_iter)
      y += xi;
    else
      y *= xi;
  }
  return y;
}

/// The exact gradient: forward-mode derivatives for the chain, 1 for the sum, products of the
/// other inputs (prefix times suffix) for the product.
std::vector<double> exact_gradient(const Workload& w) {
  const std::size_t n = w.x.size();
  if (w.kind == Kind::sum_iter) return std::vector<double>(n, 1.0);
  if (w.kind == Kind::chain) {
    const double a = w.x[0], b = w.x[1];
    double y = a, da = 1, db = 0;
    for (int i = 0; i < w.reps; ++i) {
      db = db * b + y, da = da * b, y = y * b;
      da += 1, y += a;
      y = std::tanh(y);
      const double d = 1 - y * y;
      da *= d, db *= d;
    }
    return {da, db};
  }
  std::vector<double> g(n, 1.0);
  double prefix = 1;
  for (std::size_t i = 0; i < n; ++i) g[i] = prefix, prefix *= w.x[i];
  double suffix = 1;
  for (std::size_t i = n; i-- > 0;) g[i] *= suffix, suffix *= w.x[i];
  return g;
}

/// A tool: its name and a function computing the workload's value at w.x and its gradient into g
/// (plain doubles: the value only).
struct Tool {
  std::string name;
  std::function<double(const Workload&, std::vector<double>& g)> gradient;
  bool differentiates = true;
};

// noinline keeps the compiler from folding the plain loop into the timing loop around it.
[[gnu::noinline]] double plain(const Workload& w, std::vector<double>&) {
  return evaluate<double>(w, w.x, 0.0, 1.0);
}

std::size_t g_tape_bytes = 0; ///< gradgraph's tape memory for the chain, measured after backward

double gradgraph(const Workload& w, std::vector<double>& g) {
  std::vector<gg::Var> x(w.x.begin(), w.x.end()); // leaves
  double value = 0;
  {
    const gg::Var y = evaluate<gg::Var>(w, x, gg::Var::constant(0.0), gg::Var::constant(1.0));
    y.backward();
    value = y.item();
    if (w.kind == Kind::chain) g_tape_bytes = gg::tape_stats().bytes;
  } // the graph is freed here: part of the cost
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = x[i].adj();
  return value;
}

#ifdef GG_HAVE_ADOLC
/// ADOL-C's buffer sizes for each tape (tapestats after a first recording and gradient with large
/// buffers), so the timed ones stay in memory: with its default buffers ADOL-C writes long tapes
/// and Taylor stacks to files.
struct AdolcSizes {
  unsigned ops = 0, locations = 0, values = 0, taylors = 0;
};
std::vector<AdolcSizes> g_adolc_sizes(256);

/// Records w on ADOL-C's tape `tag`, as its manual does: trace_on, the inputs marked independent
/// (<<=), the function, the output marked dependent (>>=), trace_off.
void adolc_record(const Workload& w, short tag) {
  const AdolcSizes& s = g_adolc_sizes[static_cast<std::size_t>(tag)];
  trace_on(tag, 0, s.ops, s.locations, s.values, s.taylors);
  std::vector<adouble> x(w.x.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] <<= w.x[i];
  adouble y = evaluate<adouble>(w, x, adouble(0.0), adouble(1.0));
  double value = 0;
  y >>= value;
  trace_off();
}

/// The gradient on ADOL-C's tape `tag` as its gradient() driver computes it (a forward sweep keeping
/// the Taylor values, then a reverse sweep), returning the function's value too.
double adolc_gradient(const Workload& w, short tag, std::vector<double>& g) {
  AdolcSizes& s = g_adolc_sizes[static_cast<std::size_t>(tag)];
  if (s.ops == 0) { // the first time: sizes from a recording and a gradient with large buffers
    const unsigned big = static_cast<unsigned>(std::min<long>(8 * w.ops + 4096, 1L << 30));
    s = {big, big, big, big};
    adolc_record(w, tag);
    gradient(tag, static_cast<int>(w.x.size()), w.x.data(), g.data());
    std::size_t counts[STAT_SIZE];
    tapestats(tag, counts);
    const auto fit = [](std::size_t n) { return static_cast<unsigned>(n + n / 64 + 1024); };
    s = {fit(counts[NUM_OPERATIONS]), fit(counts[NUM_LOCATIONS]), fit(counts[NUM_VALUES]),
         fit(counts[TAY_STACK_SIZE])};
    adolc_record(w, tag);
  }
  double value = 0;
  zos_forward(tag, 1, static_cast<int>(w.x.size()), 1, w.x.data(), &value);
  double seed = 1;
  fos_reverse(tag, 1, static_cast<int>(w.x.size()), &seed, g.data());
  return value;
}

/// ADOL-C recording a new tape for every gradient, as gradgraph and Sacado do.
double adolc(const Workload& w, std::vector<double>& g) {
  if (g_adolc_sizes[static_cast<std::size_t>(w.tag)].ops != 0) adolc_record(w, w.tag);
  return adolc_gradient(w, w.tag, g);
}

/// ADOL-C's strength where the control flow does not depend on the inputs: the tape recorded once
/// (on tag + 128) and only its gradient driver run at each new point, nothing recorded.
double adolc_replay(const Workload& w, std::vector<double>& g) {
  return adolc_gradient(w, static_cast<short>(w.tag + 128), g);
}
#endif

#ifdef GG_HAVE_SACADO
/// Sacado's reverse mode (Sacado::Rad, its tape reused after each Gradcomp), as ADBenchmark drives it.
double sacado(const Workload& w, std::vector<double>& g) {
  using R = Sacado::Rad::ADvar<double>;
  std::vector<R> x(w.x.begin(), w.x.end());
  const R y = evaluate<R>(w, x, R(0.0), R(1.0));
  R::Gradcomp();
  for (std::size_t i = 0; i < x.size(); ++i) g[i] = x[i].adj();
  return y.val();
}
#endif

/// --phases: gradgraph's chain as record, backward and free, each timed apart, and the plain loop
/// before each run; prints the best and the median ns/op of each over `runs` runs.
void print_phases(const Workload& w, int runs) {
  std::vector<double> plain_s, record_s, backward_s, free_s, total_s;
  std::vector<double> g(w.x.size());
  double sink = 0;
  for (int r = 0; r < runs; ++r) {
    auto t0 = bench::clock_type::now();
    sink += plain(w, g);
    plain_s.push_back(bench::seconds_since(t0));
    const std::vector<gg::Var> x(w.x.begin(), w.x.end());
    t0 = bench::clock_type::now();
    double recorded = 0, swept = 0;
    {
      const gg::Var y = evaluate<gg::Var>(w, x, gg::Var::constant(0.0), gg::Var::constant(1.0));
      recorded = bench::seconds_since(t0);
      y.backward();
      swept = bench::seconds_since(t0);
      sink += y.item();
    }
    const double total = bench::seconds_since(t0);
    record_s.push_back(recorded), backward_s.push_back(swept - recorded), free_s.push_back(total - swept);
    total_s.push_back(total);
    sink += x[0].adj();
  }
  const auto show = [&](const char* what, std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const double per_op = 1e9 / static_cast<double>(w.ops);
    std::printf("  %-9s best %7.2f  median %7.2f ns/op\n", what, v.front() * per_op,
                v[v.size() / 2] * per_op);
  };
  std::printf("scalar chain phases, %ld ops, %d runs\n", w.ops, runs);
  show("plain", plain_s);
  show("record", record_s);
  show("backward", backward_s);
  show("free", free_s);
  show("total", total_s);
  if (sink == 12345.678) std::printf(" \n");
}

std::vector<Tool> tools(bool peers) {
  std::vector<Tool> t{{"plain", plain, false}, {"gradgraph", gradgraph}};
  if (!peers) return t;
#ifdef GG_HAVE_ADOLC
  t.push_back({"adolc", adolc});
  t.push_back({"adolc_replay", adolc_replay});
#endif
#ifdef GG_HAVE_SACADO
  t.push_back({"sacado", sacado});
#endif
  return t;
}

/// Inputs for the loops: e^u with u uniform in [-1/2, 1/2], so that products of many stay far from
/// underflow and overflow (ADBenchmark's uniform [0, 2] reaches denormals within ~1000 factors).
std::vector<double> loop_inputs(long n) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> u(-0.5, 0.5);
  std::vector<double> x(static_cast<std::size_t>(n));
  for (double& v : x) v = std::exp(u(rng));
  return x;
}

/// Fails (exit 3) when a tool's gradient differs from the exact one beyond rounding.
void check_gradient(const Tool& tool, const Workload& w) {
  std::vector<double> g(w.x.size());
  tool.gradient(w, g);
  const std::vector<double> want = exact_gradient(w);
  for (std::size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - want[i]) <= 1e-9 * std::max(1.0, std::abs(want[i])))) {
      std::fprintf(
          stderr, "bench_scalar_chain: %s's gradient of %s (n=%zu) is wrong at input %zu: %.17g, not %.17g\n",
          tool.name.c_str(), w.name().c_str(), w.x.size(), i, g[i], want[i]);
      std::exit(3);
    }
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> positional;
  std::string kind = "chain";
  long n = 1024;
  bool peers = true, phases = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--no-peers")
      peers = false;
    else if (arg == "--phases")
      phases = true;
    else if (arg == "--workload" && i + 1 < argc)
      kind = argv[++i];
    else if (arg == "--n" && i + 1 < argc)
      n = std::atol(argv[++i]);
    else
      positional.push_back(arg);
  }
  const long n_ops = positional.size() > 0 ? std::atol(positional[0].c_str()) : 1'000'000;
  const int runs = positional.size() > 1 ? std::atoi(positional[1].c_str()) : 7;
  if ((kind != "chain" && kind != "sum_iter" && kind != "prod_iter") || n < 1 || n_ops < 3 || runs < 1) {
    std::fprintf(stderr,
                 "usage: bench_scalar_chain [N_OPS [RUNS]] [--workload chain|sum_iter|prod_iter] [--n N] "
                 "[--no-peers] [--phases]\n");
    return 2;
  }
  Workload w;
  if (kind == "chain") {
    volatile double va = 0.5, vb = 0.999; // volatile: the plain loop cannot be folded at compile time
    w = {Kind::chain, {va, vb}};
    w.reps = static_cast<int>(n_ops / 3);
    w.ops = 3L * w.reps;
  } else {
    w = {kind == "sum_iter" ? Kind::sum_iter : Kind::prod_iter, loop_inputs(n), 0, n};
  }
  w.tag = 1;
  if (phases) {
    if (w.kind != Kind::chain) {
      std::fprintf(stderr, "bench_scalar_chain: --phases times the chain only\n");
      return 2;
    }
    print_phases(w, runs);
    return 0;
  }

  const std::vector<Tool> all = tools(peers);
  for (const Tool& t : all)
    if (t.differentiates) check_gradient(t, w);

  std::vector<double> best(all.size(), 1e9); // seconds per op; each timing covers about n_ops ops
  const long calls = std::max(1L, n_ops / w.ops);
  std::vector<double> g(w.x.size());
  double sink = 0;
  for (int r = 0; r < runs; ++r)
    for (std::size_t ti = 0; ti < all.size(); ++ti) {
      const auto t0 = bench::clock_type::now();
      for (long c = 0; c < calls; ++c) sink += all[ti].gradient(w, g);
      best[ti] = std::min(best[ti], bench::seconds_since(t0) / static_cast<double>(calls * w.ops));
    }

  if (w.kind == Kind::chain) {
    const double ops = static_cast<double>(w.ops);
    std::printf("scalar chain, %.0f ops, best of %d\n", ops, runs);
    std::printf("  plain doubles (forward only):   %8.2f ns/op\n", best[0] * 1e9);
    std::printf("  gradgraph record+backward+free: %8.2f ns/op\n", best[1] * 1e9);
    std::printf("  ratio gradgraph/plain:          %8.2f\n", best[1] / best[0]);
    std::printf("  tape memory:                    %8.1f bytes/op\n",
                static_cast<double>(g_tape_bytes) / ops);
  } else {
    std::printf("%s, n = %ld, %ld gradients a timing, best of %d\n", w.name().c_str(), n, calls, runs);
  }
#ifdef GG_HAVE_ADOLC
  std::printf("version adolc=%s\n", GG_ADOLC_VERSION);
#endif
#ifdef GG_HAVE_SACADO
  std::printf("version sacado=%s\n", TRILINOS_VERSION_STRING);
#endif
  const long size = w.kind == Kind::chain ? w.ops : n;
  for (std::size_t ti = 0; ti < all.size(); ++ti)
    std::printf("result workload=%s n=%ld tool=%s ns_per_op=%.4f ratio_plain=%.4f ratio_gradgraph=%.4f\n",
                w.name().c_str(), size, all[ti].name.c_str(), best[ti] * 1e9, best[ti] / best[0],
                best[ti] / best[1]);
  return sink == 12345.678 ? 1 : 0;
}
