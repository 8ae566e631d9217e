// gg::optim against PyTorch 1.13 (tests/nn/data/optim_reference.csv, written by
// make_optim_reference.py there): every optimizer configuration's 100-step loss trajectory and final
// weights, f = θ² trajectories, defaults, schedulers, clipping; option and state validation; resume.
// GG_OPTIM_REPORT=1 in the environment prints the worst relative error of each configuration.
#include <autodiff/autodiff.hpp>
#include <nn/optim/optim.hpp>

#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

using gg::Shape;
using gg::Tensor;
using gg::Var;
namespace optim = gg::optim;

namespace {

using Reference = std::map<std::string, std::vector<double>>;

Reference load_reference() {
  const std::string path = std::string(GG_TEST_DATA) + "/optim_reference.csv";
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  Reference r;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::stringstream ss(line);
    std::string key, field;
    std::getline(ss, key, ',');
    std::vector<double>& values = r[key];
    while (std::getline(ss, field, ',')) values.push_back(std::strtod(field.c_str(), nullptr));
  }
  return r;
}

/// The PyTorch values stored under key (a test failure if absent).
const std::vector<double>& expected(const std::string& key) {
  static const Reference r = load_reference();
  const auto it = r.find(key);
  if (it == r.end()) FAIL("optim_reference.csv has no entry " << key);
  return it->second;
}

Tensor ref_tensor(const std::string& key, const Shape& shape, gg::DType dtype = gg::f64) {
  return Tensor(expected(key), shape, dtype);
}

bool report() {
  static const bool on = std::getenv("GG_OPTIM_REPORT") != nullptr;
  return on;
}

/// |a − b| / max(|b|, floor): relative error, absolute near zero.
double rel_err(double a, double b, double floor = 1e-3) {
  if (a == b) return 0;
  return std::abs(a - b) / std::max(std::abs(b), floor);
}

const char* const param_names[] = {"W1", "b1", "W2", "b2"};
const Shape param_shapes[] = {Shape{5, 3}, Shape{5}, Shape{2, 5}, Shape{2}};

/// x[8,3] → tanh(x·W1ᵀ + b1)·W2ᵀ + b2, MSE against y[8,2]: the reference script's model.
struct Model {
  Var x, y;
  std::vector<Var> params;

  /// The reference's data and initial weights, or the given weights.
  explicit Model(gg::DType dtype, const std::vector<Tensor>& weights = {}) {
    x = Var::constant(ref_tensor("data.x", {8, 3}, dtype));
    y = Var::constant(ref_tensor("data.y", {8, 2}, dtype));
    for (int i = 0; i < 4; ++i)
      params.emplace_back(weights.empty()
                              ? ref_tensor(std::string("init.") + param_names[i], param_shapes[i], dtype)
                              : weights[static_cast<std::size_t>(i)].clone());
  }
  Var loss() const {
    const Var h = gg::tanh(gg::matmul(x, gg::transpose(params[0])) + params[1]);
    const Var d = gg::matmul(h, gg::transpose(params[2])) + params[3] - y;
    return gg::mean(d * d);
  }
};

enum class Extra { none, step_lr, cosine, plateau, clip_norm, clip_value };

using Make = std::function<std::unique_ptr<optim::Optimizer>(std::vector<Var>)>;

struct Config {
  std::string name;
  Make make;
  Extra extra = Extra::none;
};

template <class O, class Options> Make make(Options options) {
  return [options](std::vector<Var> ps) { return std::make_unique<O>(std::move(ps), options); };
}

/// The configurations of make_optim_reference.py, under the same names.
const std::vector<Config>& configs() {
  using namespace optim;
  static const std::vector<Config> c = {
      {"gd", make<GD>(GDOptions(0.1))},
      {"sgd", make<SGD>(SGDOptions(0.1))},
      {"sgd_momentum", make<SGD>(SGDOptions(0.05).momentum(0.9))},
      {"sgd_dampening", make<SGD>(SGDOptions(0.05).momentum(0.9).dampening(0.3))},
      {"sgd_nesterov", make<SGD>(SGDOptions(0.05).momentum(0.9).nesterov(true))},
      {"sgd_weight_decay", make<SGD>(SGDOptions(0.1).weight_decay(0.05))},
      {"sgd_all", make<SGD>(SGDOptions(0.05).momentum(0.8).nesterov(true).weight_decay(0.02))},
      {"rmsprop", make<RMSprop>(RMSpropOptions(0.003))},
      {"rmsprop_centered", make<RMSprop>(RMSpropOptions(0.003).centered(true))},
      {"rmsprop_momentum", make<RMSprop>(RMSpropOptions(0.005).momentum(0.9))},
      {"rmsprop_weight_decay", make<RMSprop>(RMSpropOptions(0.003).weight_decay(0.1).alpha(0.95).eps(1e-4))},
      {"rmsprop_all",
       make<RMSprop>(
           RMSpropOptions(0.003).alpha(0.95).eps(1e-7).momentum(0.5).centered(true).weight_decay(0.01))},
      {"adam", make<Adam>(AdamOptions(0.01))},
      {"adam_defaults", make<Adam>(AdamOptions{})},
      {"adam_amsgrad", make<Adam>(AdamOptions(0.01).amsgrad(true))},
      {"adam_weight_decay", make<Adam>(AdamOptions(0.01).weight_decay(0.1).betas({0.8, 0.99}).eps(1e-6))},
      {"adamw", make<AdamW>(AdamWOptions(0.01))},
      {"adamw_amsgrad", make<AdamW>(AdamWOptions(0.01).weight_decay(0.1).amsgrad(true).betas({0.85, 0.995}))},
      {"adagrad", make<Adagrad>(AdagradOptions(0.1))},
      {"adagrad_decay",
       make<Adagrad>(AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1).eps(1e-8))},
      {"adagrad_weight_decay", make<Adagrad>(AdagradOptions(0.05).weight_decay(0.1))},
      {"adadelta", make<Adadelta>(AdadeltaOptions{})},
      {"adadelta_options", make<Adadelta>(AdadeltaOptions(0.5).rho(0.95).eps(1e-5).weight_decay(0.01))},
      {"nadam", make<NAdam>(NAdamOptions(0.01))},
      {"nadam_defaults", make<NAdam>(NAdamOptions{})},
      {"nadam_options",
       make<NAdam>(NAdamOptions(0.01).betas({0.85, 0.99}).eps(1e-6).weight_decay(0.01).momentum_decay(0.01))},
      {"sgd_steplr", make<SGD>(SGDOptions(0.1).momentum(0.9)), Extra::step_lr},
      {"adam_cosine", make<Adam>(AdamOptions(0.02)), Extra::cosine},
      {"sgd_plateau", make<SGD>(SGDOptions(0.2).momentum(0.5)), Extra::plateau},
      {"adam_clip_norm", make<Adam>(AdamOptions(0.02)), Extra::clip_norm},
      {"sgd_clip_value", make<SGD>(SGDOptions(0.1).momentum(0.9)), Extra::clip_value},
  };
  return c;
}

const Config& config(const std::string& name) {
  for (const Config& c : configs())
    if (c.name == name) return c;
  throw std::runtime_error("no configuration " + name);
}

struct Run {
  std::vector<double> losses; ///< before each step
  std::vector<Tensor> params; ///< after the last step
  double final_lr = 0;
};

/// Trains as the reference script does. With resume_at = k, after k steps everything is saved
/// (weights, optimizer and scheduler state) and training continues with new objects loaded from
/// the saved state.
Run train_run(const Config& c, gg::DType dtype, int steps = 100, int resume_at = -1) {
  auto model = std::make_unique<Model>(dtype);
  std::unique_ptr<optim::Optimizer> opt;
  std::unique_ptr<optim::LRScheduler> sched;
  std::unique_ptr<optim::ReduceLROnPlateau> plateau;
  auto build = [&] {
    sched.reset();
    plateau.reset();
    opt = c.make(model->params);
    if (c.extra == Extra::step_lr) sched = std::make_unique<optim::StepLR>(*opt, 10, 0.7);
    if (c.extra == Extra::cosine) sched = std::make_unique<optim::CosineAnnealingLR>(*opt, 30, 1e-3);
    if (c.extra == Extra::plateau)
      plateau = std::make_unique<optim::ReduceLROnPlateau>(
          *opt, optim::ReduceLROnPlateauOptions{}.factor(0.5).patience(2).threshold(0.02));
  };
  build();
  Run r;
  for (int t = 0; t < steps; ++t) {
    if (t == resume_at) {
      std::vector<Tensor> weights;
      for (const Var& p : model->params) weights.push_back(p.value().clone());
      const optim::StateList opt_state = opt->state();
      const optim::StateList sched_state = sched     ? sched->state()
                                           : plateau ? plateau->state()
                                                     : optim::StateList{};
      model = std::make_unique<Model>(dtype, weights);
      build();
      opt->load_state(opt_state);
      if (sched) sched->load_state(sched_state);
      if (plateau) plateau->load_state(sched_state);
    }
    opt->zero_grad();
    const Var loss = model->loss();
    loss.backward();
    r.losses.push_back(loss.item());
    if (c.extra == Extra::clip_norm) optim::clip_grad_norm(model->params, 0.05);
    if (c.extra == Extra::clip_value) optim::clip_grad_value(model->params, 0.02);
    opt->step();
    if (sched) sched->step();
    if (plateau) plateau->step(loss.item());
  }
  for (const Var& p : model->params) r.params.push_back(p.value());
  r.final_lr = opt->lr();
  return r;
}

struct Errors {
  double loss = 0;   ///< worst relative error of the loss over all steps
  double params = 0; ///< worst relative error of a final weight (absolute below 1e-3)
};

/// A run's errors against the reference under prefix.
Errors errors(const Run& r, const std::string& prefix) {
  const std::vector<double>& losses = expected(prefix + ".loss");
  REQUIRE(losses.size() == r.losses.size());
  Errors e;
  for (std::size_t t = 0; t < losses.size(); ++t) e.loss = std::max(e.loss, rel_err(r.losses[t], losses[t]));
  for (int i = 0; i < 4; ++i) {
    const std::vector<double>& w = expected(prefix + "." + param_names[i]);
    const std::vector<double> got = r.params[static_cast<std::size_t>(i)].to_vector();
    REQUIRE(got.size() == w.size());
    for (std::size_t j = 0; j < w.size(); ++j) e.params = std::max(e.params, rel_err(got[j], w[j]));
  }
  if (report())
    std::printf("  %-24s worst relative error: loss %.2g, weights %.2g\n", prefix.c_str(), e.loss, e.params);
  return e;
}

/// The ValueError message f throws ("no ValueError" when it throws none).
template <class F> std::string value_error(F&& f) {
  try {
    f();
  } catch (const gg::ValueError& e) {
    return e.what();
  }
  return "no ValueError";
}

std::vector<Var> two_params() {
  return {Var(Tensor({1, 2, 3, 4}, {2, 2})), Var(Tensor({0.5, -0.5}, {2}))};
}

} // namespace

TEST_CASE("optim: float64 trajectories match PyTorch over 100 steps, every configuration") {
  double worst_all = 0;
  for (const Config& c : configs()) {
    INFO("configuration " << c.name);
    const Errors e = errors(train_run(c, gg::f64), c.name);
    worst_all = std::max({worst_all, e.loss, e.params});
    CHECK(e.loss < 1e-9);
    CHECK(e.params < 1e-9);
  }
  if (report()) std::printf("  float64 worst of all: %.3g\n", worst_all);
  // The schedulers did act on those runs.
  CHECK(train_run(config("sgd_steplr"), gg::f64).final_lr < 0.1 * 0.7 * 0.7);
  CHECK(train_run(config("sgd_plateau"), gg::f64).final_lr < 0.2);
}

TEST_CASE("optim: float32 trajectories match PyTorch with float32 state") {
  for (const char* name : {"sgd_momentum", "rmsprop_all", "adam", "adamw_amsgrad", "adagrad_decay",
                           "adadelta_options", "nadam_options"}) {
    INFO("configuration " << name);
    const Run r = train_run(config(name), gg::f32);
    for (const Tensor& p : r.params) CHECK(p.dtype() == gg::f32);
    const Errors e = errors(r, std::string("f32.") + name);
    CHECK(e.loss < 1e-4);
    CHECK(e.params < 1e-4);
  }
  // Per-element state keeps the parameter's dtype; the step count is float32 as PyTorch's.
  Model m(gg::f32);
  optim::NAdam opt(m.params);
  m.loss().backward();
  opt.step();
  for (const auto& [name, t] : opt.state()) {
    INFO(name);
    CHECK(t.dtype() == (name == "lr" ? gg::f64 : gg::f32));
  }
}

TEST_CASE("optim: from the same gradients every update equals PyTorch's to the last bit") {
  // Two parameters, 20 stored gradients (set through d(sum(p * G))/dp = G): only the optimizers'
  // arithmetic differs from PyTorch's here, and it is written to round as PyTorch's kernels do.
  const std::vector<double>& init = expected("exact.init");
  const std::vector<double>& grads = expected("exact.grads");
  REQUIRE(init.size() == 13);
  REQUIRE(grads.size() == 20 * 13);
  for (const Config& c : configs()) {
    if (c.extra != Extra::none) continue;
    for (gg::DType dtype : {gg::f64, gg::f32}) {
      INFO("configuration " << c.name << " " << gg::dtype_name(dtype));
      std::vector<Var> ps = {Var(Tensor(std::vector<double>(init.begin(), init.begin() + 7), {7}, dtype)),
                             Var(Tensor(std::vector<double>(init.begin() + 7, init.end()), {2, 3}, dtype))};
      auto opt = c.make(ps);
      for (std::size_t t = 0; t < 20; ++t) {
        opt->zero_grad();
        const auto g = grads.begin() + static_cast<std::ptrdiff_t>(13 * t);
        const Var loss =
            gg::sum(ps[0] * Var::constant(Tensor(std::vector<double>(g, g + 7), {7}, dtype))) +
            gg::sum(ps[1] * Var::constant(Tensor(std::vector<double>(g + 7, g + 13), {2, 3}, dtype)));
        loss.backward();
        opt->step();
      }
      std::vector<double> got = ps[0].value().to_vector();
      for (double v : ps[1].value().to_vector()) got.push_back(v);
      const std::vector<double>& want = expected((dtype == gg::f64 ? "exact." : "f32.exact.") + c.name);
      CHECK(got == want);
    }
  }
}

TEST_CASE("optim: GD, SGD, Adam and AdamW on a parameter large enough to split across the kernel threads "
          "update it as on one thread, to the last bit") {
  // 2^20 + 37 elements: kernel::parallel_for splits the update across 2 threads (GD and SGD from 2^20
  // elements, Adam's from 2^16), in ranges that need not be multiples of the vector width.
  const std::int64_t n = (std::int64_t{1} << 20) + 37;
  for (const gg::DType dtype : {gg::f32, gg::f64})
    for (const Config& c : configs()) {
      if (c.extra != Extra::none ||
          (c.name != "gd" && c.name.rfind("sgd", 0) != 0 && c.name.rfind("adam", 0) != 0))
        continue;
      INFO("configuration " << c.name << " " << gg::dtype_name(dtype));
      std::vector<std::vector<double>> finals;
      for (const int threads : {1, 2}) {
        gg::kernel::set_num_threads(threads);
        gg::Rng rng(7);
        std::vector<Var> ps = {Var(Tensor::randn({n}, rng, dtype))};
        auto opt = c.make(ps);
        for (int t = 0; t < 3; ++t) {
          opt->zero_grad();
          gg::sum(ps[0] * Var::constant(Tensor::randn({n}, rng, dtype))).backward();
          opt->step();
        }
        finals.push_back(ps[0].value().to_vector());
      }
      gg::kernel::set_num_threads(1);
      std::int64_t differ = 0; // (not CHECK(finals[0] == finals[1]): Catch would print 2^20 numbers)
      for (std::size_t i = 0; i < finals[0].size(); ++i) differ += finals[0][i] != finals[1][i];
      CHECK(differ == 0);
    }
}

TEST_CASE("optim: the f = theta^2 sanity trajectories of REFERENCES.md and PyTorch") {
  using namespace optim;
  struct Case {
    const char* name;
    Make make;
  };
  const std::vector<Case> cases = {
      {"sgd", make<SGD>(SGDOptions(0.1))},
      {"sgd_momentum", make<SGD>(SGDOptions(0.1).momentum(0.9))},
      {"rmsprop", make<RMSprop>(RMSpropOptions{})},
      {"adam", make<Adam>(AdamOptions{})},
      {"adamw", make<AdamW>(AdamWOptions{})},
      {"adagrad", make<Adagrad>(AdagradOptions{})},
      {"adadelta", make<Adadelta>(AdadeltaOptions{})},
      {"nadam", make<NAdam>(NAdamOptions{})},
  };
  for (const Case& c : cases) {
    INFO(c.name);
    // A scalar leaf (the teaching case) and a 0-d tensor leaf take the same path.
    for (bool tensor_leaf : {false, true}) {
      Var theta = tensor_leaf ? Var(Tensor::scalar(1.0)) : Var(1.0);
      auto opt = c.make({theta});
      std::vector<double> seq;
      for (int t = 0; t < 5; ++t) {
        opt->zero_grad();
        (theta * theta).backward();
        opt->step();
        seq.push_back(theta.item());
      }
      const std::vector<double>& want = expected(std::string("scalar.") + c.name);
      CHECK(seq == want); // to the last bit: the same arithmetic on a scalar
      if (std::string(c.name) == "sgd")
        CHECK_THAT(
            seq,
            Catch::Matchers::Approx(std::vector<double>{0.8, 0.64, 0.512, 0.4096, 0.32768}).margin(1e-15));
      if (std::string(c.name) == "sgd_momentum")
        CHECK_THAT(std::vector<double>(seq.begin(), seq.begin() + 3),
                   Catch::Matchers::Approx(std::vector<double>{0.8, 0.46, 0.062}).margin(1e-15));
      if (std::string(c.name) == "adam")
        CHECK_THAT(
            std::vector<double>(seq.begin(), seq.begin() + 3),
            Catch::Matchers::Approx(std::vector<double>{0.999, 0.998000026, 0.997000096}).margin(5e-10));
    }
  }
}

TEST_CASE("optim: defaults equal PyTorch's") {
  using namespace optim;
  auto same = [](const std::vector<double>& got, const std::string& key) {
    INFO(key);
    CHECK(got == expected(key));
  };
  const SGDOptions sgd(0.1);
  same({sgd.momentum(), sgd.dampening(), sgd.weight_decay(), double(sgd.nesterov())}, "defaults.SGD");
  const RMSpropOptions rms;
  same({rms.lr(), rms.alpha(), rms.eps(), rms.weight_decay(), rms.momentum(), double(rms.centered())},
       "defaults.RMSprop");
  const AdamOptions adam;
  same({adam.lr(), adam.betas()[0], adam.betas()[1], adam.eps(), adam.weight_decay(), double(adam.amsgrad())},
       "defaults.Adam");
  const AdamWOptions adamw;
  same({adamw.lr(), adamw.betas()[0], adamw.betas()[1], adamw.eps(), adamw.weight_decay(),
        double(adamw.amsgrad())},
       "defaults.AdamW");
  const AdagradOptions ada;
  same({ada.lr(), ada.lr_decay(), ada.weight_decay(), ada.initial_accumulator_value(), ada.eps()},
       "defaults.Adagrad");
  const AdadeltaOptions delta;
  same({delta.lr(), delta.rho(), delta.eps(), delta.weight_decay()}, "defaults.Adadelta");
  const NAdamOptions nadam;
  same({nadam.lr(), nadam.betas()[0], nadam.betas()[1], nadam.eps(), nadam.weight_decay(),
        nadam.momentum_decay()},
       "defaults.NAdam");
  const ReduceLROnPlateauOptions pl;
  same({pl.factor(), double(pl.patience()), pl.threshold(), double(pl.cooldown()), pl.min_lr(), pl.eps()},
       "defaults.ReduceLROnPlateau");
  CHECK(pl.mode() == PlateauMode::min);
  CHECK(pl.threshold_mode() == ThresholdMode::rel);
  // Optimizers built from a bare learning rate, as LibTorch's.
  SGD s(two_params(), 0.5);
  CHECK(s.lr() == 0.5);
  Adam a(two_params());
  CHECK(a.lr() == 1e-3);
  CHECK(a.name() == "Adam");
}

TEST_CASE("optim: options are validated with the optimizer, the field and the value in the message") {
  using namespace optim;
  const auto ps = two_params();
  CHECK(value_error([&] { SGD(ps, -0.1); }) == "SGD: lr must be >= 0, got -0.1");
  CHECK(value_error([&] { GD(ps, -1); }) == "GD: lr must be >= 0, got -1");
  CHECK(value_error([&] { SGD(ps, SGDOptions(0.1).momentum(-0.5)); }) ==
        "SGD: momentum must be >= 0, got -0.5");
  CHECK(value_error([&] { SGD(ps, SGDOptions(0.1).weight_decay(-1e-4)); }) ==
        "SGD: weight_decay must be >= 0, got -0.0001");
  CHECK(value_error([&] { SGD(ps, SGDOptions(0.1).nesterov(true)); }) ==
        "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum 0 and dampening 0");
  CHECK(value_error([&] { SGD(ps, SGDOptions(0.1).nesterov(true).momentum(0.9).dampening(0.1)); }) ==
        "SGD: nesterov requires momentum > 0 and dampening = 0, got momentum 0.9 and dampening 0.1");
  CHECK(value_error([&] {
          Adam(ps, AdamOptions{}.betas({1.5, 0.999}));
        }) == "Adam: betas[0] must be in [0, 1), got 1.5");
  CHECK(value_error([&] {
          Adam(ps, AdamOptions{}.betas({0.9, 1.0}));
        }) == "Adam: betas[1] must be in [0, 1), got 1");
  CHECK(value_error([&] { Adam(ps, AdamOptions{}.eps(-1e-8)); }) == "Adam: eps must be >= 0, got -1e-08");
  CHECK(value_error([&] { Adam(ps, AdamOptions(std::nan(""))); }) == "Adam: lr must be >= 0, got nan");
  CHECK(value_error([&] { AdamW(ps, AdamWOptions{}.weight_decay(-0.01)); }) ==
        "AdamW: weight_decay must be >= 0, got -0.01");
  CHECK(value_error([&] { RMSprop(ps, RMSpropOptions{}.alpha(-0.9)); }) ==
        "RMSprop: alpha must be >= 0, got -0.9");
  CHECK(value_error([&] { RMSprop(ps, RMSpropOptions{}.momentum(-1)); }) ==
        "RMSprop: momentum must be >= 0, got -1");
  CHECK(value_error([&] { RMSprop(ps, RMSpropOptions{}.eps(-1)); }) == "RMSprop: eps must be >= 0, got -1");
  CHECK(value_error([&] { Adagrad(ps, AdagradOptions{}.lr_decay(-1)); }) ==
        "Adagrad: lr_decay must be >= 0, got -1");
  CHECK(value_error([&] { Adagrad(ps, AdagradOptions{}.initial_accumulator_value(-0.1)); }) ==
        "Adagrad: initial_accumulator_value must be >= 0, got -0.1");
  CHECK(value_error([&] { Adadelta(ps, AdadeltaOptions{}.rho(1.1)); }) ==
        "Adadelta: rho must be in [0, 1], got 1.1");
  CHECK(value_error([&] { Adadelta(ps, AdadeltaOptions{}.rho(1.0)); }) ==
        "no ValueError"); // PyTorch allows rho = 1
  CHECK(value_error([&] { NAdam(ps, NAdamOptions{}.momentum_decay(-4e-3)); }) ==
        "NAdam: momentum_decay must be >= 0, got -0.004");
  CHECK(value_error([&] {
          NAdam(ps, NAdamOptions{}.betas({0.9, -0.1}));
        }) == "NAdam: betas[1] must be in [0, 1), got -0.1");
  // The parameter list.
  CHECK(value_error([&] { Adam(std::vector<Var>{}); }) == "Adam: got an empty parameter list");
  CHECK(value_error([&] { Adam({ps[0], Var()}); }) == "Adam: parameter 1 is an undefined Var");
  CHECK(value_error([&] {
          Adam({ps[0], ps[1], ps[0]});
        }) == "Adam: parameter 2 appears more than once in the parameter list");
  CHECK(value_error([&] { Adam({gg::tanh(ps[0])}); }) ==
        "Adam: parameter 0 is computed by an op (tanh); only leaves can be optimized");
  // set_lr, schedulers, clipping.
  Adam opt(ps);
  CHECK(value_error([&] { opt.set_lr(-1); }) == "Adam: lr must be >= 0, got -1");
  CHECK(value_error([&] { StepLR(opt, 0); }) == "StepLR: step_size must be >= 1, got 0");
  CHECK(value_error([&] { CosineAnnealingLR(opt, 0); }) == "CosineAnnealingLR: t_max must be >= 1, got 0");
  CHECK(value_error([&] { ReduceLROnPlateau(opt, ReduceLROnPlateauOptions{}.factor(1.0)); }) ==
        "ReduceLROnPlateau: factor must be < 1, got 1");
  CHECK(value_error([&] { clip_grad_norm(ps, 1.0, 0); }) ==
        "clip_grad_norm: norm_type must be > 0 or infinity, got 0");
  CHECK(value_error([&] { clip_grad_norm(ps, -1.0); }) == "clip_grad_norm: max_norm must be >= 0, got -1");
  CHECK(value_error([&] { clip_grad_value(ps, -0.5); }) == "clip_grad_value: clip must be >= 0, got -0.5");
}

TEST_CASE("optim: state and load_state resume every configuration bit-identically") {
  for (const Config& c : configs()) {
    INFO("configuration " << c.name);
    for (gg::DType dtype : {gg::f64, gg::f32}) {
      const Run whole = train_run(c, dtype, 30);
      const Run resumed = train_run(c, dtype, 30, 13);
      CHECK(resumed.losses == whole.losses);
      for (std::size_t i = 0; i < 4; ++i) CHECK(resumed.params[i].to_vector() == whole.params[i].to_vector());
      CHECK(resumed.final_lr == whole.final_lr);
    }
  }
}

TEST_CASE("optim: state names follow torch.optim and load_state rejects what does not fit") {
  using namespace optim;
  auto ps = two_params();
  Adam opt(ps, AdamOptions{}.amsgrad(true));
  std::vector<std::string> names;
  for (const auto& e : opt.state()) names.push_back(e.first);
  CHECK(names == std::vector<std::string>{"lr"}); // state is created at the first step
  (gg::sum(ps[0] * ps[0]) + gg::sum(ps[1])).backward();
  opt.step();
  names.clear();
  for (const auto& e : opt.state()) names.push_back(e.first);
  CHECK(names == std::vector<std::string>{"lr", "state.0.step", "state.0.exp_avg", "state.0.exp_avg_sq",
                                          "state.0.max_exp_avg_sq", "state.1.step", "state.1.exp_avg",
                                          "state.1.exp_avg_sq", "state.1.max_exp_avg_sq"});
  const StateList good = opt.state();
  CHECK(good[1].second.item() == 1); // step
  CHECK(good[1].second.dtype() == gg::f32);

  auto with = [&](const std::string& name, const Tensor& t) {
    StateList s = good;
    for (auto& e : s)
      if (e.first == name) e.second = t;
    return s;
  };
  auto without = [&](const std::string& name) {
    StateList s;
    for (const auto& e : good)
      if (e.first != name) s.push_back(e);
    return s;
  };
  auto plus = [&](const std::string& name, const Tensor& t) {
    StateList s = good;
    s.emplace_back(name, t);
    return s;
  };
  const std::string expected_keys =
      "(expected \"lr\" and \"state.<i>.<key>\" with i < 2 and key one of {step, "
      "exp_avg, exp_avg_sq, max_exp_avg_sq})";
  Adam other(two_params(), AdamOptions{}.amsgrad(true));
  CHECK(value_error([&] {
          other.load_state(plus("state.0.momentum_buffer", Tensor::zeros({2, 2})));
        }) == "Adam.load_state: unknown entry \"state.0.momentum_buffer\" " + expected_keys);
  CHECK(value_error([&] { other.load_state(plus("state.2.step", Tensor::scalar(1))); }) ==
        "Adam.load_state: unknown entry \"state.2.step\" " + expected_keys);
  CHECK(value_error([&] { other.load_state(plus("momentum", Tensor::scalar(1))); }) ==
        "Adam.load_state: unknown entry \"momentum\" " + expected_keys);
  CHECK(value_error([&] { other.load_state(plus("state.x.step", Tensor::scalar(1))); }) ==
        "Adam.load_state: unknown entry \"state.x.step\" " + expected_keys);
  CHECK(value_error([&] { other.load_state(with("state.1.exp_avg", Tensor::zeros({3}))); }) ==
        "Adam.load_state: entry \"state.1.exp_avg\" has shape [3] but parameter 1 needs [2]");
  CHECK(value_error([&] { other.load_state(without("state.1.exp_avg_sq")); }) ==
        "Adam.load_state: missing entry \"state.1.exp_avg_sq\"");
  CHECK(value_error([&] { other.load_state(without("lr")); }) == "Adam.load_state: missing entry \"lr\"");
  CHECK(value_error([&] { other.load_state(plus("state.0.step", Tensor::scalar(1))); }) ==
        "Adam.load_state: entry \"state.0.step\" appears twice");
  // Adam without amsgrad has no max_exp_avg_sq.
  Adam plain(two_params());
  CHECK(value_error([&] {
          plain.load_state(good);
        }).starts_with("Adam.load_state: unknown entry \"state.0.max_exp_avg_sq\""));
  // A failed load changes nothing; a good one copies (later steps do not alias the list).
  CHECK(other.state().size() == 1);
  other.load_state(good);
  const StateList loaded = other.state();
  REQUIRE(loaded.size() == good.size());
  for (std::size_t i = 0; i < good.size(); ++i) {
    CHECK(loaded[i].first == good[i].first);
    CHECK(loaded[i].second.to_vector() == good[i].second.to_vector());
  }
  other.set_lr(0.5);
  CHECK(other.state()[0].second.item() == 0.5);
  CHECK(good[0].second.item() == 1e-3);

  // Schedulers.
  StepLR sched(opt, 3);
  CHECK(value_error([&] {
          sched.load_state({{"last_epoch", Tensor::scalar(2)}});
        }) == "LRScheduler.load_state: missing entry \"base_lr\"");
  CHECK(value_error([&] {
          sched.load_state({{"epoch", Tensor::scalar(2)}});
        }) == "LRScheduler.load_state: unknown entry \"epoch\"");
}

TEST_CASE("optim: zero_grad forgets gradients and step skips parameters without one") {
  using namespace optim;
  auto ps = two_params();
  const std::vector<double> before1 = ps[1].value().to_vector();
  SGD opt(ps, SGDOptions(0.1).momentum(0.9));
  gg::sum(ps[0] * ps[0]).backward(); // ps[1] gets no gradient
  opt.step();
  const std::vector<double> after1 = {0.8, 1.6, 2.4, 3.2};
  CHECK_THAT(ps[0].value().to_vector(), Catch::Matchers::Approx(after1).epsilon(1e-15));
  CHECK(ps[1].value().to_vector() == before1);
  CHECK(opt.state().size() == 2); // lr and state.0.momentum_buffer only
  opt.zero_grad();
  CHECK_FALSE(ps[0].has_grad());
  CHECK_FALSE(ps[1].has_grad());
  const std::vector<double> now = ps[0].value().to_vector();
  opt.step(); // nothing has a gradient: nothing moves
  CHECK(ps[0].value().to_vector() == now);
  // Adagrad makes its state at construction, like torch.optim.Adagrad.
  Adagrad ada(two_params(), AdagradOptions{}.initial_accumulator_value(0.5));
  const StateList s = ada.state();
  REQUIRE(s.size() == 5);
  CHECK(s[2].first == "state.0.sum");
  CHECK(s[2].second.to_vector() == std::vector<double>(4, 0.5));
  CHECK(ada.parameters().size() == 2);
}

TEST_CASE("optim: learning-rate schedulers give PyTorch's sequences") {
  using namespace optim;
  auto check_sequence = [](const std::string& key, auto make_sched, int steps) {
    INFO(key);
    SGD opt({Var(Tensor::zeros({1}))}, 0.1);
    auto sched = make_sched(opt);
    std::vector<double> seq = {sched.get_last_lr()};
    for (int t = 0; t < steps; ++t) {
      sched.step();
      seq.push_back(sched.get_last_lr());
      CHECK(opt.lr() == sched.get_last_lr());
    }
    const std::vector<double>& want = expected("sched." + key);
    REQUIRE(seq.size() == want.size());
    CHECK(seq == want); // to the last bit: the same double arithmetic and libm
    CHECK(sched.last_epoch() == steps);
  };
  check_sequence(
      "step", [](Optimizer& o) { return StepLR(o, 3, 0.5); }, 20);
  check_sequence(
      "step_default_gamma", [](Optimizer& o) { return StepLR(o, 2); }, 10);
  check_sequence(
      "exponential", [](Optimizer& o) { return ExponentialLR(o, 0.9); }, 30);
  check_sequence(
      "cosine", [](Optimizer& o) { return CosineAnnealingLR(o, 10, 0.001); }, 45);
  check_sequence(
      "cosine_default", [](Optimizer& o) { return CosineAnnealingLR(o, 7); }, 30);
}

TEST_CASE("optim: ReduceLROnPlateau follows PyTorch in every mode") {
  using namespace optim;
  const std::vector<double>& metrics = expected("plateau.metrics");
  const std::vector<std::pair<std::string, ReduceLROnPlateauOptions>> cases = {
      {"min_rel", ReduceLROnPlateauOptions{}.patience(2)},
      {"min_abs",
       ReduceLROnPlateauOptions{}.threshold_mode(ThresholdMode::abs).threshold(0.01).patience(1).factor(0.3)},
      {"max_rel", ReduceLROnPlateauOptions{}.mode(PlateauMode::max).patience(3).factor(0.5).cooldown(1)},
      {"max_abs_cooldown", ReduceLROnPlateauOptions{}
                               .mode(PlateauMode::max)
                               .threshold_mode(ThresholdMode::abs)
                               .threshold(0.05)
                               .factor(0.5)
                               .patience(1)
                               .cooldown(2)
                               .min_lr(0.02)},
      {"eps", ReduceLROnPlateauOptions{}.factor(0.5).patience(0).min_lr(0.0995).eps(1e-3)},
  };
  for (const auto& [name, options] : cases) {
    INFO(name);
    SGD opt({Var(Tensor::zeros({1}))}, 0.1);
    ReduceLROnPlateau sched(opt, options);
    CHECK(sched.get_last_lr() == 0.1);
    std::vector<double> seq;
    for (double m : metrics) {
      sched.step(m);
      seq.push_back(opt.lr());
      CHECK(sched.get_last_lr() == opt.lr());
    }
    const std::vector<double>& want = expected("plateau." + name);
    REQUIRE(seq.size() == want.size());
    CHECK(seq == want);
  }
}

TEST_CASE("optim: clip_grad_norm and clip_grad_value match torch.nn.utils") {
  using namespace optim;
  auto params = [] {
    std::vector<Var> ps = {Var(Tensor::zeros({3, 4})), Var(Tensor::zeros({5})), Var(Tensor::zeros({2}))};
    // Gradients ref g0 and g1 through d(sum(p * g))/dp; the third parameter gets none.
    gg::sum(ps[0] * Var::constant(ref_tensor("clip.g0", {3, 4}))).backward();
    gg::sum(ps[1] * Var::constant(ref_tensor("clip.g1", {5}))).backward();
    return ps;
  };
  for (const char* name : {"l2", "l2_no_clip", "l1", "inf", "l3"}) {
    INFO(name);
    const std::vector<double>& spec =
        expected(std::string("clip.norm.") + name); // max_norm, norm_type, total
    auto ps = params();
    const double total = clip_grad_norm(ps, spec[0], spec[1]);
    CHECK(rel_err(total, spec[2]) < 1e-14);
    const std::vector<double> g0 = ps[0].grad().to_vector(), g1 = ps[1].grad().to_vector();
    const std::vector<double>& w0 = expected(std::string("clip.norm.") + name + ".g0");
    const std::vector<double>& w1 = expected(std::string("clip.norm.") + name + ".g1");
    for (std::size_t i = 0; i < w0.size(); ++i) CHECK(rel_err(g0[i], w0[i]) < 1e-14);
    for (std::size_t i = 0; i < w1.size(); ++i) CHECK(rel_err(g1[i], w1[i]) < 1e-14);
    CHECK_FALSE(ps[2].has_grad());
  }
  auto ps = params();
  clip_grad_value(ps, 0.25);
  CHECK(ps[0].grad().to_vector() == expected("clip.value.g0"));
  CHECK(ps[1].grad().to_vector() == expected("clip.value.g1"));
  // No gradients: total norm 0. A scalar leaf's gradient is clipped too.
  CHECK(clip_grad_norm({Var(Tensor::zeros({2}))}, 1.0) == 0);
  Var s = 3.0;
  (s * s).backward(); // grad 6
  CHECK(clip_grad_norm({s}, 1.5) == 6);
  CHECK(s.grad().item() == Approx(1.5 * 6 / (6 + 1e-6)).epsilon(1e-15));
  clip_grad_value({s}, 0.5);
  CHECK(s.grad().item() == 0.5);
  // Float32 gradients are scaled in float32.
  Var f(Tensor({3, -4}, {2}, gg::f32));
  gg::sum(f * f).backward(); // grad (6, -8), norm 10
  CHECK(clip_grad_norm({f}, 5) == 10);
  CHECK(f.grad().dtype() == gg::f32);
  CHECK_THAT(f.grad().to_vector(), Catch::Matchers::Approx(std::vector<double>{3, -4}).epsilon(1e-6));
}

namespace {

// torch.optim's _single_tensor_adam(w) one element at a time, with the plain divisions. GCC may
// fuse a multiply and an add of different statements into an FMA (its -ffp-contract=fast default):
// off for this function, so each operation rounds as PyTorch's does (clang fuses only inside one
// expression, and none here has a multiply feeding an add outside std::fma).
#if defined(__GNUC__) && !defined(__clang__)
#define GG_TEST_NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define GG_TEST_NO_CONTRACT
#endif

struct AdamCase {
  double lr, b1, b2, eps, wd;
  bool amsgrad, decoupled;
};

template <class T>
GG_TEST_NO_CONTRACT void adam_reference(const AdamCase& a, int step, std::vector<T>& p,
                                        const std::vector<T>& grad, std::vector<T>& m, std::vector<T>& v,
                                        std::vector<T>& vmax) {
  const double bc1 = 1 - std::pow(a.b1, step), bc2 = 1 - std::pow(a.b2, step);
  const T step_size = static_cast<T>(-(a.lr / bc1)), bc2_sqrt = static_cast<T>(std::sqrt(bc2));
  const T b1 = static_cast<T>(a.b1), b2 = static_cast<T>(a.b2), omb1 = static_cast<T>(1 - a.b1),
          omb2 = static_cast<T>(1 - a.b2), wd = static_cast<T>(a.wd), decay = static_cast<T>(1 - a.lr * a.wd),
          eps = static_cast<T>(a.eps);
  for (std::size_t i = 0; i < p.size(); ++i) {
    T g = grad[i];
    if (!a.decoupled && a.wd != 0) g = std::fma(wd, p[i], g);
    if (a.decoupled) p[i] = p[i] * decay;
    m[i] = std::fma(omb1, g, m[i] * b1);
    v[i] = std::fma(omb2 * g, g, v[i] * b2);
    T second = v[i];
    if (a.amsgrad) second = vmax[i] = (v[i] > vmax[i] || v[i] != v[i]) ? v[i] : vmax[i];
    const T denom = std::sqrt(second) / bc2_sqrt + eps;
    p[i] = p[i] + (step_size * m[i]) / denom;
  }
}

/// The bits of each value, every NaN as one (which NaN an operation with two NaN operands returns
/// follows the order the compiler gave them, as in PyTorch's own kernels).
template <class T> std::vector<std::uint64_t> bits(const std::vector<T>& x) {
  std::vector<std::uint64_t> b;
  for (T v : x) {
    std::uint64_t u = 0;
    std::memcpy(&u, &v, sizeof v);
    b.push_back(v != v ? ~std::uint64_t{0} : u);
  }
  return b;
}

template <class T> std::vector<T> values_of(const Tensor& t) {
  return std::vector<T>(t.data<T>(), t.data<T>() + t.numel());
}

/// Random values of every magnitude, then the edge values, in a tensor of n > 16 elements (the
/// vector loop and its tail both run).
template <class T> std::vector<T> adam_values(std::mt19937_64& rng, std::size_t n, bool edges) {
  std::uniform_real_distribution<double> mantissa(-1, 1);
  std::uniform_int_distribution<int> exponent(-40, 10);
  std::vector<T> x(n);
  for (T& v : x) v = static_cast<T>(std::ldexp(mantissa(rng), exponent(rng)));
  if (!edges) return x;
  const T lim_max = std::numeric_limits<T>::max(), den = std::numeric_limits<T>::denorm_min(),
          inf = std::numeric_limits<T>::infinity();
  const std::vector<T> e = {T(0),
                            -T(0),
                            den,
                            -den,
                            std::numeric_limits<T>::min() / 3,
                            T(1e-30),
                            lim_max,
                            -lim_max,
                            std::sqrt(lim_max),
                            inf,
                            -inf,
                            std::numeric_limits<T>::quiet_NaN(),
                            -std::numeric_limits<T>::quiet_NaN()};
  std::uniform_int_distribution<std::size_t> where(0, n - 1);
  for (std::size_t k = 0; k < n / 8; ++k) x[where(rng)] = e[k % e.size()];
  return x;
}

template <class T> void check_adam_bits(const AdamCase& a) {
  const gg::DType dtype = std::is_same_v<T, float> ? gg::f32 : gg::f64;
  constexpr std::size_t n = 1000 + 37;
  std::mt19937_64 rng(7);
  std::vector<T> p = adam_values<T>(rng, n, false), m(n), v(n), vmax(n);
  Var param(Tensor::empty({static_cast<std::int64_t>(n)}, dtype));
  std::copy(p.begin(), p.end(), param.value().data<T>());
  std::unique_ptr<optim::Optimizer> opt;
  if (a.decoupled)
    opt = std::make_unique<optim::AdamW>(
        std::vector<Var>{param},
        optim::AdamWOptions(a.lr).betas({a.b1, a.b2}).eps(a.eps).weight_decay(a.wd).amsgrad(a.amsgrad));
  else
    opt = std::make_unique<optim::Adam>(
        std::vector<Var>{param},
        optim::AdamOptions(a.lr).betas({a.b1, a.b2}).eps(a.eps).weight_decay(a.wd).amsgrad(a.amsgrad));
  for (int step = 1; step <= 40; ++step) {
    // The first steps without edge values (a NaN or inf stays in m and v for good).
    const std::vector<T> g = adam_values<T>(rng, n, step > 30);
    Tensor gt = Tensor::empty({static_cast<std::int64_t>(n)}, dtype);
    std::copy(g.begin(), g.end(), gt.data<T>());
    param.set_grad(gt);
    opt->step();
    adam_reference(a, step, p, g, m, v, vmax);
    INFO("step " << step);
    REQUIRE(bits(values_of<T>(param.value())) == bits(p));
  }
}

} // namespace

TEST_CASE("optim: Adam and AdamW equal the plain divisions to the last bit on random and edge values") {
  // adam.cpp divides sqrt(v) by sqrt(1 − β₂ᵗ) as a multiply by the reciprocal in double (float
  // tensors): it must round as the division does on every value, gradients of 0, −0, denormals,
  // huge, inf and NaN included.
  const std::vector<AdamCase> cases = {
      {1e-3, 0.9, 0.999, 1e-8, 0, false, false},   {0.01, 0.8, 0.99, 1e-6, 0.1, false, false},
      {0.01, 0.9, 0.999, 1e-8, 0, true, false},    {0.01, 0.85, 0.995, 1e-8, 0.1, true, true},
      {0.01, 0.9, 0.999, 1e-8, 0.01, false, true}, {0.1, 0.5, 0.9999999, 0, 0, false, false},
      {0.1, 0.0, 0.0, 0, 0.5, true, false},        {1e-3, 0.9, 0.3, 1e-3, 0.2, false, true},
  };
  for (const AdamCase& a : cases) {
    INFO("lr " << a.lr << " betas " << a.b1 << ", " << a.b2 << " eps " << a.eps << " weight_decay " << a.wd
               << " amsgrad " << a.amsgrad << (a.decoupled ? " AdamW" : " Adam"));
    check_adam_bits<float>(a);
    check_adam_bits<double>(a);
  }
}

TEST_CASE("optim: x / c equals float(double(x) * (1 / double(c))) for every float x and Adam's divisors") {
  // The claim adam.cpp's multiply rests on, over every significand of x (the exponent of x only
  // scales both sides exactly while the quotient is normal) and divisors sqrt(1 − β₂ᵗ) of three β₂.
  std::vector<float> divisors;
  for (double b2 : {0.999, 0.99, 0.9999999})
    for (int t : {1, 2, 3, 7, 10, 100, 1000, 12345})
      divisors.push_back(static_cast<float>(std::sqrt(1 - std::pow(b2, t))));
  std::size_t wrong = 0;
  for (float c : divisors) {
    const double r = 1.0 / static_cast<double>(c);
    for (std::uint32_t s = 0; s < (1u << 23); ++s) {
      float x;
      const std::uint32_t u = 0x3f800000u | s; // [1, 2)
      std::memcpy(&x, &u, 4);
      wrong += static_cast<float>(static_cast<double>(x) * r) != x / c;
    }
  }
  CHECK(wrong == 0);
}
