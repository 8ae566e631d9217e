// conv_choice: the measurement behind conv2d's choice between oneDNN and im2col + GEMM (docs/performance.md).
// For the convolutions of the bench CNN and the Fashion-MNIST CNN (the tutorial's), float32, 1 and 2
// threads, it times forward, backward data and backward weights (with the bias) by
//   (a) gradgraph's im2col + GEMM kernels (kernel::use_dnnl(false));
//   (b) oneDNN's primitives on the tensors' own layouts (nchw, oihw): no reorders;
//   (c) oneDNN's primitives on the layouts they choose (format "any": nChw8c and blocked weights on
//       AVX2) with the reorders from and to nchw timed inside, as PyTorch 1.13 runs them;
//   (d) gradgraph's kernel::conv2d as it runs by default (oneDNN where chosen).
// The sides alternate, round after round; each cell is the best of the rounds (ms). float64 is im2col
// only: oneDNN has no f64 convolution. It also prints the largest difference of (b)-(d) from (a).
// Times are the process's CPU time per call on 1 thread (a loaded host does not inflate it) and the
// wall clock on 2. Usage: bench_conv_choice [rounds (default 5)] [threads (default: 1, then 2)]
#include <autodiff/autodiff.hpp>
#include <autodiff/src/kernels/kernels.hpp> // conv2d_backward, internal

#include <omp.h>
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <functional>
#include <string>
#include <unordered_map>
#include <vector>

#include "bench_util.hpp"

namespace {

using namespace gg;
using dnnl::memory;
using tag = memory::format_tag;

struct ConvShape {
  const char* name;
  std::int64_t n, c, h, w, oc, k, pad;
  bool dx; ///< the input's gradient is needed (not for a first layer)
};

const std::vector<ConvShape> k_shapes{
    {"bench CNN conv1 (1->16, 5x5, pad 2, 28x28, batch 64)", 64, 1, 28, 28, 16, 5, 2, false},
    {"bench CNN conv2 (16->32, 5x5, pad 2, 14x14, batch 64)", 64, 16, 14, 14, 32, 5, 2, true},
    {"Fashion-MNIST CNN conv1 (1->32, 3x3, pad 1, 28x28, batch 128)", 128, 1, 28, 28, 32, 3, 1, false},
    {"Fashion-MNIST CNN conv2 (32->64, 3x3, pad 1, 14x14, batch 128)", 128, 32, 14, 14, 64, 3, 1, true},
};

/// A tensor's float data as a oneDNN memory of the given dims and plain layout (no copy).
memory wrap(const dnnl::engine& eng, const memory::dims& dims, tag t, const Tensor& x) {
  return memory({dims, memory::data_type::f32, t}, eng, const_cast<float*>(x.data<float>()));
}

/// One convolution's oneDNN primitives, for plain layouts or for the layouts oneDNN prefers (then
/// with the reorders between them and the plain tensors).
struct DnnlConv {
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm{eng};
  memory::dims src, wei, bias, dst;
  dnnl::convolution_forward::primitive_desc fwd;
  dnnl::convolution_backward_data::primitive_desc bwd_data;
  dnnl::convolution_backward_weights::primitive_desc bwd_weights;
  std::string impl;

  DnnlConv(const ConvShape& s, bool blocked) {
    const std::int64_t o = s.h + 2 * s.pad - s.k + 1;
    src = {s.n, s.c, s.h, s.w}, wei = {s.oc, s.c, s.k, s.k}, bias = {s.oc}, dst = {s.n, s.oc, o, o};
    const memory::dims strides{1, 1}, dil{0, 0}, pad{s.pad, s.pad};
    const auto md = [&](const memory::dims& d, tag plain) {
      return memory::desc(d, memory::data_type::f32, blocked ? tag::any : plain);
    };
    const memory::desc bias_md(bias, memory::data_type::f32, tag::x);
    const auto direct = dnnl::algorithm::convolution_direct;
    fwd = {{dnnl::prop_kind::forward_training, direct, md(src, tag::nchw), md(wei, tag::oihw), bias_md,
            md(dst, tag::nchw), strides, dil, pad, pad},
           eng};
    bwd_data = {{direct, md(src, tag::nchw), md(wei, tag::oihw), md(dst, tag::nchw), strides, dil, pad, pad},
                eng,
                fwd};
    bwd_weights = {
        {direct, md(src, tag::nchw), md(wei, tag::oihw), bias_md, md(dst, tag::nchw), strides, dil, pad, pad},
        eng,
        fwd};
    impl = std::string(fwd.impl_info_str()) + " / " + bwd_data.impl_info_str() + " / " +
           bwd_weights.impl_info_str();
  }

  /// m in layout want: m itself, or a reordered copy.
  memory to(const memory& m, const memory::desc& want) {
    if (m.get_desc() == want) return m;
    memory r(want, eng);
    dnnl::reorder(m, r).execute(strm, const_cast<memory&>(m), r);
    return r;
  }
  /// Runs prim with args, the outputs `outs` (argument id -> plain memory) reordered back.
  void run(const dnnl::primitive& prim, std::unordered_map<int, memory> args,
           const std::vector<std::pair<int, memory>>& outs) {
    for (auto& [id, plain] : outs)
      if (!(args.at(id).get_desc() == plain.get_desc())) {
        memory fresh(args.at(id).get_desc(), eng);
        args[id] = fresh;
      }
    prim.execute(strm, args);
    for (auto& [id, plain] : outs)
      if (args.at(id).get_data_handle() != plain.get_data_handle())
        dnnl::reorder(args.at(id), const_cast<memory&>(plain))
            .execute(strm, args.at(id), const_cast<memory&>(plain));
    strm.wait();
  }

  void forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
    const memory ym = wrap(eng, dst, tag::nchw, y);
    run(dnnl::convolution_forward(fwd),
        {{DNNL_ARG_SRC, to(wrap(eng, src, tag::nchw, x), fwd.src_desc())},
         {DNNL_ARG_WEIGHTS, to(wrap(eng, wei, tag::oihw, w), fwd.weights_desc())},
         {DNNL_ARG_BIAS, wrap(eng, bias, tag::x, b)},
         {DNNL_ARG_DST, to(ym, fwd.dst_desc())}},
        {{DNNL_ARG_DST, ym}});
  }
  void backward_data(const Tensor& g, const Tensor& w, Tensor& dx) {
    const memory dxm = wrap(eng, src, tag::nchw, dx);
    run(dnnl::convolution_backward_data(bwd_data),
        {{DNNL_ARG_DIFF_DST, to(wrap(eng, dst, tag::nchw, g), bwd_data.diff_dst_desc())},
         {DNNL_ARG_WEIGHTS, to(wrap(eng, wei, tag::oihw, w), bwd_data.weights_desc())},
         {DNNL_ARG_DIFF_SRC, to(dxm, bwd_data.diff_src_desc())}},
        {{DNNL_ARG_DIFF_SRC, dxm}});
  }
  void backward_weights(const Tensor& g, const Tensor& x, Tensor& dw, Tensor& db) {
    const memory dwm = wrap(eng, wei, tag::oihw, dw);
    run(dnnl::convolution_backward_weights(bwd_weights),
        {{DNNL_ARG_DIFF_DST, to(wrap(eng, dst, tag::nchw, g), bwd_weights.diff_dst_desc())},
         {DNNL_ARG_SRC, to(wrap(eng, src, tag::nchw, x), bwd_weights.src_desc())},
         {DNNL_ARG_DIFF_WEIGHTS, to(dwm, bwd_weights.diff_weights_desc())},
         {DNNL_ARG_DIFF_BIAS, wrap(eng, bias, tag::x, db)}},
        {{DNNL_ARG_DIFF_WEIGHTS, dwm}});
  }
};

double max_rel_diff(const Tensor& a, const Tensor& b) {
  double worst = 0, scale = 1e-30;
  for (std::int64_t i = 0; i < a.numel(); ++i) scale = std::max(scale, double(std::abs(a.data<float>()[i])));
  for (std::int64_t i = 0; i < a.numel(); ++i)
    worst = std::max(worst, std::abs(double(a.data<float>()[i]) - b.data<float>()[i]) / scale);
  return worst;
}

double cpu_seconds() {
  timespec t{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

/// Seconds per call of f over a run of at least 40 ms and 3 calls: the process's CPU time on one
/// thread (which other jobs on a loaded host do not inflate), the wall clock on more.
double time_call(const std::function<void()>& f, int threads) {
  f();
  const double c0 = cpu_seconds();
  const auto t0 = bench::clock_type::now();
  long calls = 0;
  while (calls < 3 || bench::seconds_since(t0) < 0.04) f(), ++calls;
  const double spent = threads == 1 ? cpu_seconds() - c0 : bench::seconds_since(t0);
  return spent / static_cast<double>(calls);
}

void measure(const ConvShape& s, int threads, int rounds) {
  kernel::set_num_threads(threads);
  omp_set_num_threads(threads);
  Rng rng(7);
  const Tensor x = Tensor::randn({s.n, s.c, s.h, s.w}, rng, f32),
               w = Tensor::randn({s.oc, s.c, s.k, s.k}, rng, f32), b = Tensor::randn({s.oc}, rng, f32);
  const kernel::Windows win{s.k, s.k, 1, 1, s.pad, s.pad};
  kernel::use_dnnl(false);
  const Tensor ref_y = kernel::conv2d(x, w, b, win);
  const Tensor g = Tensor::randn(ref_y.shape(), rng, f32);
  const auto ref = kernel::conv2d_backward(g, x, w, win, 1, {true, true, true});
  DnnlConv plain(s, false), blocked(s, true);
  struct Side {
    const char* name;
    std::function<void()> fwd, bwd_data, bwd_weights;
    /// Both gradients as a training step asks for them (conv2d_backward: one call, g reordered once).
    std::function<void()> bwd_both = {};
    double t[4] = {1e300, 1e300, 1e300, 1e300};
  };
  Tensor y = Tensor::empty(ref_y.shape(), f32), dx = Tensor::empty(x.shape(), f32),
         dw = Tensor::empty(w.shape(), f32), db = Tensor::empty(b.shape(), f32);
  const auto dnnl_side = [&](const char* name, DnnlConv& d) {
    return Side{name, [&] { d.forward(x, w, b, y); }, [&] { d.backward_data(g, w, dx); },
                [&] { d.backward_weights(g, x, dw, db); }};
  };
  const auto ours = [&](const char* name, bool dnnl) {
    return Side{
        name, [&, dnnl] { kernel::use_dnnl(dnnl), y = kernel::conv2d(x, w, b, win); },
        [&, dnnl] {
          kernel::use_dnnl(dnnl), dx = kernel::conv2d_backward(g, x, w, win, 1, {true, false, false})[0];
        },
        [&, dnnl] {
          kernel::use_dnnl(dnnl);
          auto r = kernel::conv2d_backward(g, x, w, win, 1, {false, true, true});
          dw = r[1], db = r[2];
        },
        [&, dnnl] {
          kernel::use_dnnl(dnnl);
          auto r = kernel::conv2d_backward(g, x, w, win, 1, {s.dx, true, true});
          dx = r[0], dw = r[1], db = r[2];
        }};
  };
  std::vector<Side> sides{ours("im2col + GEMM", false), dnnl_side("oneDNN, plain layouts", plain),
                          dnnl_side("oneDNN, its layouts + reorders", blocked),
                          ours("gradgraph default", true)};
  std::printf("\n%s, %d thread%s\n", s.name, threads, threads > 1 ? "s" : "");
  std::printf("  oneDNN implementations (fwd / bwd data / bwd weights): plain %s; its layouts %s\n",
              plain.impl.c_str(), blocked.impl.c_str());
  for (Side& side : sides) { // correctness first
    side.fwd(), side.bwd_data(), side.bwd_weights();
    std::printf("  %-32s max relative difference from im2col: y %.1e, dx %.1e, dw %.1e, db %.1e\n", side.name,
                max_rel_diff(ref_y, y), max_rel_diff(ref[0], dx), max_rel_diff(ref[1], dw),
                max_rel_diff(ref[2], db));
  }
  for (int r = 0; r < rounds; ++r)
    for (Side& side : sides) {
      side.t[0] = std::min(side.t[0], time_call(side.fwd, threads));
      if (s.dx) side.t[1] = std::min(side.t[1], time_call(side.bwd_data, threads));
      side.t[2] = std::min(side.t[2], time_call(side.bwd_weights, threads));
      if (side.bwd_both) side.t[3] = std::min(side.t[3], time_call(side.bwd_both, threads));
    }
  std::printf("  | side | forward ms | backward data ms | backward weights+bias ms | step's sum ms | both "
              "gradients in one call ms |\n");
  for (const Side& side : sides) {
    const double bd = s.dx ? side.t[1] : 0;
    std::printf("  | %s | %.3f | %s | %.3f | %.3f | %s |\n", side.name, side.t[0] * 1e3,
                s.dx ? std::to_string(bd * 1e3).substr(0, 5).c_str() : "(not needed)", side.t[2] * 1e3,
                (side.t[0] + bd + side.t[2]) * 1e3,
                side.bwd_both ? std::to_string(side.t[3] * 1e3).substr(0, 5).c_str() : "-");
  }
}

} // namespace

int main(int argc, char** argv) {
  const int rounds = argc > 1 ? std::atoi(argv[1]) : 5;
  const int only_threads = argc > 2 ? std::atoi(argv[2]) : 0;
  const dnnl::version_t* v = dnnl_version();
  std::printf("oneDNN %d.%d.%d (CPU runtime %s), gradgraph conv2d: %s\n", v->major, v->minor, v->patch,
              v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other", kernel::conv2d_library().c_str());
  for (int threads : {1, 2})
    if (only_threads == 0 || threads == only_threads)
      for (const ConvShape& s : k_shapes) measure(s, threads, rounds);
  // float64: im2col only (oneDNN has no f64 convolution)
  std::printf("\nfloat64 (im2col + GEMM only: oneDNN has no f64 convolution), ms forward / backward\n");
  for (int threads : {1, 2})
    for (const ConvShape& s : k_shapes) {
      if (only_threads != 0 && threads != only_threads) continue;
      kernel::set_num_threads(threads);
      Rng rng(7);
      const Tensor x = Tensor::randn({s.n, s.c, s.h, s.w}, rng, f64),
                   w = Tensor::randn({s.oc, s.c, s.k, s.k}, rng, f64), b = Tensor::randn({s.oc}, rng, f64);
      const kernel::Windows win{s.k, s.k, 1, 1, s.pad, s.pad};
      const Tensor g = Tensor::randn(kernel::conv2d(x, w, b, win).shape(), rng, f64);
      const double f = time_call([&] { (void)kernel::conv2d(x, w, b, win); }, threads);
      const double bw = time_call(
          [&] {
            (void)kernel::conv2d_backward(g, x, w, win, 1, {s.dx, true, true});
          },
          threads);
      std::printf("  %s, %d thread%s: %.3f / %.3f\n", s.name, threads, threads > 1 ? "s" : "", f * 1e3,
                  bw * 1e3);
    }
}
