// conv2d by oneDNN: which passes it takes (the rule bench/conv_choice measured), the primitives and
// the reorders between our plain layouts and oneDNN's blocked ones, cached per shape (creating them
// costs far more than a small convolution), each run on the calling thread alone.
#include "conv_dnnl.hpp"
#include "gemm.hpp"

#include <atomic>

#ifdef GG_HAVE_DNNL
#include <oneapi/dnnl/dnnl.hpp>

#include <algorithm>
#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#endif

namespace gg::kernel {
namespace detail {
namespace {
std::atomic<bool> g_dnnl_allowed{true};
} // namespace

std::string conv_pass_name(ConvPass pass) {
  return pass == ConvPass::forward         ? "forward"
         : pass == ConvPass::backward_data ? "backward data"
                                           : "backward weights";
}

#ifndef GG_HAVE_DNNL
bool dnnl_conv_takes(const ConvGeometry&, std::int64_t, ConvPass) {
  return false;
}
bool dnnl_conv_forward(const ConvGeometry&, std::int64_t, std::int64_t, const float*, const float*,
                       const float*, float*) {
  return false;
}
bool dnnl_conv_backward_data(const ConvGeometry&, std::int64_t, std::int64_t, const float*, const float*,
                             float*) {
  return false;
}
bool dnnl_conv_backward_weights(const ConvGeometry&, std::int64_t, std::int64_t, const float*, const float*,
                                float*, float*) {
  return false;
}
std::string dnnl_conv_paths() {
  return "";
}
std::string dnnl_version_text() {
  return "";
}
#else

namespace {
using dnnl::memory;
using Tag = memory::format_tag;

/// How oneDNN runs a pass: on our plain layouts (nchw, oihw; oneDNN then multiplies im2col columns
/// by its own GEMM), or on the blocked layouts it chooses (its direct JIT kernels), reordered from and
/// to ours around each call, as PyTorch runs it.
enum class Layouts : std::uint8_t { none, plain, blocked };

/// The rule measured by bench/conv_choice on the bench and Fashion-MNIST CNNs (docs/performance.md):
/// with 8 or more input channels per group the blocked kernels win every pass, reorders included.
/// With fewer (a first layer on 1-3 channel images), on AVX2 the plain forward wins and im2col's
/// backward is as fast as oneDNN's; on AVX-512 im2col's forward wins (0.79 against 1.34-1.51 ms on the
/// bench CNN's first layer) and the blocked backward weights (0.56 against 1.04-1.09 ms; 1.94 against
/// 2.37-2.49 on the Fashion-MNIST CNN's).
Layouts layouts_for(const ConvGeometry& g, std::int64_t groups, ConvPass pass) {
  if (!g_dnnl_allowed.load(std::memory_order_relaxed)) return Layouts::none;
  if (g.c / groups >= 8) return Layouts::blocked;
  if (cpu_has_avx512()) return pass == ConvPass::backward_weights ? Layouts::blocked : Layouts::none;
  return pass == ConvPass::forward ? Layouts::plain : Layouts::none;
}

const dnnl::engine& engine() {
  static const dnnl::engine e(dnnl::engine::kind::cpu, 0);
  return e;
}

/// One argument of a primitive: its plain layout, the layout the primitive takes, and the reorder
/// between them (plain -> inner for inputs, inner -> plain for outputs) when they differ.
struct Operand {
  int arg;
  memory::desc plain, inner;
  bool output;
  std::optional<dnnl::reorder> reorder;
};

/// A cached pass: its primitive (empty when oneDNN declined the shape), operands and scratchpad.
struct Entry {
  std::optional<dnnl::primitive> prim;
  std::vector<Operand> operands;
  std::size_t scratch_bytes = 0;
};

using Key = std::array<std::int64_t, 17>;

struct Cache {
  std::mutex mutex;
  std::map<Key, std::shared_ptr<const Entry>> entries;
  std::map<std::string, std::vector<std::string>> paths; ///< implementation -> passes, for dnnl_conv_paths
};
Cache& cache() {
  static Cache c;
  return c;
}

memory::dims dims(std::initializer_list<std::int64_t> d) {
  return memory::dims(d);
}

/// The descriptors of one pass's tensors.
struct Descs {
  memory::desc src, weights, bias, dst;
};

Descs descs(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, bool any) {
  const auto f32 = memory::data_type::f32;
  const auto md = [&](const memory::dims& d, Tag plain) {
    return memory::desc(d, f32, any ? Tag::any : plain);
  };
  Descs d;
  d.src = md(dims({g.n, g.c, g.h, g.w}), Tag::nchw);
  d.dst = md(dims({g.n, outc, g.oh, g.ow}), Tag::nchw);
  d.weights = groups == 1 ? md(dims({outc, g.c, g.kh, g.kw}), Tag::oihw)
                          : md(dims({groups, outc / groups, g.c / groups, g.kh, g.kw}), Tag::goihw);
  d.bias = memory::desc(dims({outc}), f32, Tag::x);
  return d;
}

Operand operand(int arg, const memory::desc& plain, const memory::desc& inner, bool output) {
  Operand o{arg, plain, inner, output, std::nullopt};
  if (!(plain == inner))
    o.reorder = output ? dnnl::reorder({engine(), inner, engine(), plain})
                       : dnnl::reorder({engine(), plain, engine(), inner});
  return o;
}

/// Creates the pass's primitive (oneDNN's errors: an empty entry, im2col then runs the shape).
std::shared_ptr<const Entry> create(const ConvGeometry& g, std::int64_t outc, std::int64_t groups,
                                    ConvPass pass, bool bias, Layouts layouts, std::string& impl) {
  auto e = std::make_shared<Entry>();
  try {
    const Descs plain = descs(g, outc, groups, false),
                want = descs(g, outc, groups, layouts == Layouts::blocked);
    const memory::dims strides{g.sh, g.sw}, dilates{g.dh - 1, g.dw - 1}, pad_l{g.ph, g.pw},
        pad_r{(g.oh - 1) * g.sh + (g.kh - 1) * g.dh + 1 - g.h - g.ph,
              (g.ow - 1) * g.sw + (g.kw - 1) * g.dw + 1 - g.w - g.pw};
    const auto direct = dnnl::algorithm::convolution_direct;
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    const dnnl::convolution_forward::desc fd =
        bias ? dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, want.src,
                                               want.weights, want.bias, want.dst, strides, dilates, pad_l,
                                               pad_r)
             : dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, direct, want.src,
                                               want.weights, want.dst, strides, dilates, pad_l, pad_r);
    const dnnl::convolution_forward::primitive_desc fwd(fd, attr, engine());
    if (pass == ConvPass::forward) {
      e->operands = {operand(DNNL_ARG_SRC, plain.src, fwd.src_desc(), false),
                     operand(DNNL_ARG_WEIGHTS, plain.weights, fwd.weights_desc(), false),
                     operand(DNNL_ARG_DST, plain.dst, fwd.dst_desc(), true)};
      if (bias) e->operands.push_back(operand(DNNL_ARG_BIAS, plain.bias, fwd.bias_desc(), false));
      e->prim = dnnl::convolution_forward(fwd);
      e->scratch_bytes = fwd.scratchpad_desc().get_size();
      impl = fwd.impl_info_str();
    } else if (pass == ConvPass::backward_data) {
      const dnnl::convolution_backward_data::primitive_desc bd(
          {direct, want.src, want.weights, want.dst, strides, dilates, pad_l, pad_r}, attr, engine(), fwd);
      e->operands = {operand(DNNL_ARG_DIFF_DST, plain.dst, bd.diff_dst_desc(), false),
                     operand(DNNL_ARG_WEIGHTS, plain.weights, bd.weights_desc(), false),
                     operand(DNNL_ARG_DIFF_SRC, plain.src, bd.diff_src_desc(), true)};
      e->prim = dnnl::convolution_backward_data(bd);
      e->scratch_bytes = bd.scratchpad_desc().get_size();
      impl = bd.impl_info_str();
    } else {
      const dnnl::convolution_backward_weights::desc wd =
          bias ? dnnl::convolution_backward_weights::desc(direct, want.src, want.weights, want.bias, want.dst,
                                                          strides, dilates, pad_l, pad_r)
               : dnnl::convolution_backward_weights::desc(direct, want.src, want.weights, want.dst, strides,
                                                          dilates, pad_l, pad_r);
      const dnnl::convolution_backward_weights::primitive_desc bw(wd, attr, engine(), fwd);
      e->operands = {operand(DNNL_ARG_SRC, plain.src, bw.src_desc(), false),
                     operand(DNNL_ARG_DIFF_DST, plain.dst, bw.diff_dst_desc(), false),
                     operand(DNNL_ARG_DIFF_WEIGHTS, plain.weights, bw.diff_weights_desc(), true)};
      if (bias) e->operands.push_back(operand(DNNL_ARG_DIFF_BIAS, plain.bias, bw.diff_bias_desc(), true));
      e->prim = dnnl::convolution_backward_weights(bw);
      e->scratch_bytes = bw.scratchpad_desc().get_size();
      impl = bw.impl_info_str();
    }
  } catch (const dnnl::error&) {
    e->prim.reset();
  }
  return e;
}

/// The cached pass for this shape, created on first use.
std::shared_ptr<const Entry> entry(const ConvGeometry& g, std::int64_t outc, std::int64_t groups,
                                   ConvPass pass, bool bias, Layouts layouts) {
  const Key key{g.n,
                g.c,
                g.h,
                g.w,
                outc,
                g.kh,
                g.kw,
                g.sh,
                g.sw,
                g.ph,
                g.pw,
                g.dh,
                g.dw,
                groups,
                static_cast<std::int64_t>(pass),
                bias,
                static_cast<std::int64_t>(layouts)};
  Cache& c = cache();
  const std::lock_guard lock(c.mutex);
  if (auto it = c.entries.find(key); it != c.entries.end()) return it->second;
  const OneOpenMpThread one; // oneDNN sizes a primitive's work split for the threads it sees at creation
  if (c.entries.size() >= 256) c.entries.clear(); // many shapes (varying batch sizes): start again
  std::string impl;
  auto e = create(g, outc, groups, pass, bias, layouts, impl);
  c.entries.emplace(key, e);
  if (e->prim) {
    auto& passes = c.paths[fmt::format(
        "{} ({})", impl, layouts == Layouts::blocked ? "its blocked layouts, reordered" : "our layouts")];
    if (std::find(passes.begin(), passes.end(), conv_pass_name(pass)) == passes.end())
      passes.push_back(conv_pass_name(pass));
  }
  return e;
}

/// Runs the pass on the data at ptrs (in the order of the entry's operands): inputs reordered into
/// buffers of oneDNN's layouts where they differ, outputs reordered back. False when oneDNN failed.
bool run(const Entry& e, const std::vector<void*>& ptrs) {
  const OneOpenMpThread one;
  try {
    thread_local dnnl::stream stream(engine());
    std::vector<Tensor> buffers; // recycled through the tensors' buffer cache
    const auto buffer = [&](std::size_t bytes) {
      buffers.push_back(Tensor::empty({static_cast<std::int64_t>(bytes / sizeof(float) + 1)}, f32));
      return static_cast<void*>(buffers.back().data<float>());
    };
    std::unordered_map<int, memory> args;
    std::vector<std::pair<memory, memory>> back; // (inner, plain) of reordered outputs
    for (std::size_t i = 0; i < e.operands.size(); ++i) {
      const Operand& o = e.operands[i];
      memory plain(o.plain, engine(), ptrs[i]);
      if (!o.reorder) {
        args.emplace(o.arg, plain);
        continue;
      }
      memory inner(o.inner, engine(), buffer(o.inner.get_size()));
      if (o.output)
        back.emplace_back(inner, plain);
      else
        o.reorder->execute(stream, plain, inner);
      args.emplace(o.arg, inner);
    }
    if (e.scratch_bytes > 0)
      args.emplace(DNNL_ARG_SCRATCHPAD,
                   memory({dims({static_cast<std::int64_t>(e.scratch_bytes)}), memory::data_type::u8, Tag::x},
                          engine(), buffer(e.scratch_bytes)));
    e.prim->execute(stream, args);
    std::size_t k = 0;
    for (const Operand& o : e.operands)
      if (o.reorder && o.output) o.reorder->execute(stream, back[k].first, back[k].second), ++k;
    stream.wait();
    return true;
  } catch (const dnnl::error&) {
    return false;
  }
}

bool pass(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, ConvPass p, bool bias,
          const std::vector<void*>& ptrs) {
  const Layouts layouts = layouts_for(g, groups, p);
  if (layouts == Layouts::none) return false;
  const std::shared_ptr<const Entry> e = entry(g, outc, groups, p, bias, layouts);
  return e->prim && run(*e, ptrs);
}

void* mut(const float* p) {
  return const_cast<float*>(p); // oneDNN's memory objects take non-const handles; inputs are only read
}
} // namespace

bool dnnl_conv_takes(const ConvGeometry& g, std::int64_t groups, ConvPass pass) {
  return layouts_for(g, groups, pass) != Layouts::none;
}

bool dnnl_conv_forward(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* x,
                       const float* w, const float* b, float* y) {
  std::vector<void*> ptrs{mut(x), mut(w), y};
  if (b) ptrs.push_back(mut(b));
  return pass(g, outc, groups, ConvPass::forward, b != nullptr, ptrs);
}

bool dnnl_conv_backward_data(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* dy,
                             const float* w, float* dx) {
  return pass(g, outc, groups, ConvPass::backward_data, false, {mut(dy), mut(w), dx});
}

bool dnnl_conv_backward_weights(const ConvGeometry& g, std::int64_t outc, std::int64_t groups, const float* x,
                                const float* dy, float* dw, float* db) {
  std::vector<void*> ptrs{mut(x), mut(dy), dw};
  if (db) ptrs.push_back(db);
  return pass(g, outc, groups, ConvPass::backward_weights, db != nullptr, ptrs);
}

namespace {
std::string version() {
  const dnnl::version_t* v = dnnl_version();
  return fmt::format("oneDNN {}.{}.{}", v->major, v->minor, v->patch);
}
} // namespace

std::string dnnl_version_text() {
  return g_dnnl_allowed.load(std::memory_order_relaxed) ? version() : "";
}

std::string dnnl_conv_paths() {
  Cache& c = cache();
  const std::lock_guard lock(c.mutex);
  if (c.paths.empty()) return "";
  std::string s = version();
  const char* sep = " ";
  for (const auto& [impl, passes] : c.paths) {
    s += fmt::format("{}{}: {}", sep, impl, fmt::join(passes, ", "));
    sep = "; ";
  }
  return s;
}
#endif

} // namespace detail

void use_dnnl(bool on) {
  detail::g_dnnl_allowed.store(on);
}
} // namespace gg::kernel
