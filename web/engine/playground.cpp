// The playground: settings checked (sizes before any allocation), the dataset generated and the MLP
// built as `gradgraph train` builds them (nn/data, cli/src/model_spec), training by minibatches with
// the optimizers `gradgraph train` makes (cli/src/optimizers), decision regions on a grid, and one sample's
// graph through the explorer.
#include "playground.hpp"

#include "common.hpp"
#include "explorer.hpp"

#include <autodiff/error.hpp>
#include <autodiff/ops.hpp>
#include <nn/data/dataloader.hpp>
#include <nn/data/datasets.hpp>
#include <nn/init.hpp>
#include <nn/losses.hpp>
#include <nn/metrics.hpp>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include <cli/src/messages.hpp>
#include <cli/src/model_spec.hpp>
#include <cli/src/optimizers.hpp>

namespace gg::web {

namespace {

using cli::json::Value;

const std::vector<std::string> k_datasets{"triangle", "xor", "moons", "circles", "spiral"};
const std::vector<std::string> k_activations{"sigmoid", "tanh", "relu", "leaky-relu"};
const std::vector<std::string> k_losses{"cross-entropy", "mse"};

/// What a "create" request asks for, checked.
struct Settings {
  std::string dataset, activation, loss, optimizer;
  std::int64_t samples = 200, batch_size = 32;
  double noise = 0.1;
  std::uint64_t seed = 0;
  std::vector<std::int64_t> hidden;
  std::map<std::string, double> given; ///< the optimizer's hyper-parameters the request gives
};

/// The hyper-parameters a field of the page sets: the optimizer's (optimizers.hpp, as `gradgraph
/// train` takes them) and, but for gd (the whole data each step), the batch size.
std::vector<cli::HyperParameter> page_parameters(const cli::OptimizerKind& kind) {
  std::vector<cli::HyperParameter> out = kind.parameters;
  if (std::string_view(kind.name) != "gd") out.push_back({"batch-size", 32});
  return out;
}

/// A field's default as the page shows it: the learning rate for the generated datasets (all of the
/// page's), as `gradgraph train --dataset` takes it, else PyTorch's.
std::string default_text(const cli::OptimizerKind& kind, const cli::HyperParameter& p) {
  if (p.flag) return p.fallback != 0 ? "true" : "false";
  return full_text(std::string_view(p.name) == "lr" ? kind.generated_lr : p.fallback);
}

std::string one_of(const Value& rq, const char* key, const std::vector<std::string>& choices) {
  const std::string v = string_member(rq, key);
  if (std::find(choices.begin(), choices.end(), v) == choices.end())
    throw ValueError(fmt::format("{} '{}': use {}", key, v, fmt::join(choices, ", ")));
  return v;
}

/// A request member holding a number as text (the page's fields) or as a number.
std::string field(const Value& rq, const char* key, const std::string& fallback) {
  if (!rq.contains(key)) return fallback;
  if (rq[key].is_string()) return rq[key].get<std::string>();
  if (rq[key].is_number()) return full_text(rq[key].get<double>());
  throw FormatError(fmt::format("the request's '{}' is neither a string nor a number", key));
}

Settings parse_settings(const Value& rq) {
  Settings s;
  s.dataset = one_of(rq, "dataset", k_datasets);
  s.activation = one_of(rq, "activation", k_activations);
  s.loss = one_of(rq, "loss", k_losses);
  s.optimizer = string_member(rq, "optimizer");
  const cli::OptimizerKind& kind = cli::optimizer_kind(s.optimizer);
  // The fields `gradgraph train` has as options are read as it reads them, with its messages.
  s.samples = cli::parse_number<std::int64_t>("--samples", field(rq, "samples", "200"));
  if (s.samples < 4 || s.samples > k_max_samples)
    throw ValueError(fmt::format("--samples {}: use 4 to {} (the page's limit; gradgraph train takes more)",
                                 s.samples, k_max_samples));
  s.noise = cli::parse_number<double>("--noise", field(rq, "noise", "0.1"));
  if (!(s.noise >= 0 && std::isfinite(s.noise)))
    throw ValueError(fmt::format("--noise {}: use a finite value >= 0", s.noise));
  s.seed = cli::parse_number<std::uint64_t>("--seed", field(rq, "seed", "0"));
  // Hidden layer sizes, "3" or "8,8" ("" for none: a linear model), refused before any allocation.
  const std::string hidden = field(rq, "hidden", "3");
  if (!hidden.empty()) {
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = std::min(hidden.find(',', start), hidden.size());
      if (static_cast<std::int64_t>(s.hidden.size()) == k_max_hidden_layers)
        throw ValueError(
            fmt::format("hidden layers '{}': at most {} hidden layers", hidden, k_max_hidden_layers));
      const std::string item = hidden.substr(start, end - start);
      const double units = cli::parse_value(fmt::format("hidden layers '{}'", hidden), item);
      if (units != std::floor(units) || units < 1 || units > static_cast<double>(k_max_units))
        throw ValueError(fmt::format("hidden layers '{}': a layer of {} units: use 1 to {} units per layer",
                                     hidden, item, k_max_units));
      s.hidden.push_back(static_cast<std::int64_t>(units));
      if (end == hidden.size()) break;
      start = end + 1;
    }
  }
  // The hyper-parameters' fields, read as `gradgraph train` reads its options (the same messages).
  const Value params = rq.contains("params") ? rq["params"] : Value::object();
  if (!params.is_object()) throw FormatError("the request's 'params' is not an object");
  for (const cli::HyperParameter& p : page_parameters(kind)) {
    if (!params.contains(p.name)) continue;
    const std::string text = field(params, p.name, "");
    const std::string option = fmt::format("--{}", p.name);
    if (p.flag) {
      if (text != "true" && text != "false")
        throw UsageError(fmt::format("{} '{}': use true or false", option, text));
      s.given[p.name] = text == "true" ? 1 : 0;
    } else if (std::string_view(p.name) == "batch-size") {
      s.batch_size = cli::parse_number<std::int64_t>(option, text);
      if (s.batch_size < 1 || s.batch_size > k_max_samples)
        throw ValueError(fmt::format("{} {}: use 1 to {}", option, s.batch_size, k_max_samples));
    } else {
      s.given[p.name] = cli::parse_number<double>(option, text);
    }
  }
  return s;
}

data::Dataset make_dataset(const Settings& s) {
  const std::string& n = s.dataset;
  if (n == "triangle") return data::triangle(s.samples, s.seed);
  if (n == "xor") return data::xor_dataset(s.samples, s.noise, s.seed);
  if (n == "moons") return data::two_moons(s.samples, s.noise, s.seed);
  if (n == "circles") return data::circles(s.samples, s.noise, 0.5, s.seed);
  return data::spiral(std::max<std::int64_t>(s.samples / 3, 1), 3, s.noise, s.seed);
}

/// The explain language's text for an activation of `z`.
std::string activation_text(const std::string& activation, const std::string& z) {
  if (activation == "leaky-relu") return fmt::format("relu({0}) - 0.01*relu(-{0})", z); // slope 0.01, nn's
  return fmt::format("{}({})", activation, z);
}

class Playground {
public:
  explicit Playground(Settings s) : s_(std::move(s)) {
    data_ = make_dataset(s_);
    classes_ = data_.num_classes;
    std::vector<std::int64_t> sizes{data_.x.shape()[1]};
    sizes.insert(sizes.end(), s_.hidden.begin(), s_.hidden.end());
    sizes.push_back(classes_);
    nn::manual_seed(s_.seed);
    model_ = cli::build_mlp(sizes, cli::parse_activation(s_.activation));
    optimizer_ = cli::make_optimizer(s_.optimizer, model_->parameters(), s_.given, true).optimizer;
    const std::int64_t n = data_.x.shape()[0];
    const std::int64_t batch = s_.optimizer == "gd" ? n : std::min(s_.batch_size, n);
    loader_.emplace(data_.x, data_.y,
                    data::DataLoaderOptions{.batch_size = batch, .shuffle = true, .seed = s_.seed});
    loader_->begin();
  }

  Value describe() const {
    Value points = Value::array();
    for (std::int64_t i = 0; i < data_.x.shape()[0]; ++i)
      points.push_back({data_.x.flat(2 * i), data_.x.flat(2 * i + 1), static_cast<int>(data_.y.flat(i))});
    Value out{
        {"parameters", nn::parameter_count(*model_)}, {"classes", classes_}, {"points", std::move(points)}};
    out["bounds"] = bounds();
    return with_scores(std::move(out));
  }

  Value train(std::int64_t steps) {
    Value losses = Value::array();
    for (std::int64_t k = 0; k < steps; ++k) {
      if (batch_ == loader_->size()) {
        loader_->begin(); // the next epoch, reshuffled
        batch_ = 0;
      }
      const data::Batch b = loader_->batch(batch_++);
      const Var loss = batch_loss(model_->forward(Var::constant(b.x)), b.y);
      loss.backward();
      optimizer_->step();
      optimizer_->zero_grad();
      losses.push_back(loss.item());
      ++step_;
    }
    return with_scores({{"losses", std::move(losses)}});
  }

  /// The predicted class and its probability (cross-entropy: softmax; mse: the output, clamped to
  /// [0, 1]) on a size x size grid over the data's bounds, row by row from the top.
  Value grid(std::int64_t size) const {
    const std::vector<double> b = bounds();
    std::vector<double> xy;
    xy.reserve(static_cast<std::size_t>(2 * size * size));
    for (std::int64_t r = 0; r < size; ++r)
      for (std::int64_t c = 0; c < size; ++c) {
        xy.push_back(b[0] + (b[1] - b[0]) * (static_cast<double>(c) + 0.5) / static_cast<double>(size));
        xy.push_back(b[3] - (b[3] - b[2]) * (static_cast<double>(r) + 0.5) / static_cast<double>(size));
      }
    const NoGrad no_grad;
    Var out = model_->forward(Var::constant(Tensor(xy, {size * size, 2})));
    if (s_.loss == "cross-entropy") out = softmax(out, 1);
    Value classes = Value::array(), confidence = Value::array();
    const Tensor& v = out.value();
    for (std::int64_t i = 0; i < size * size; ++i) {
      std::int64_t best = 0;
      for (std::int64_t k = 1; k < classes_; ++k)
        if (v.flat(i * classes_ + k) > v.flat(i * classes_ + best)) best = k;
      classes.push_back(best);
      confidence.push_back(std::round(std::clamp(v.flat(i * classes_ + best), 0.0, 1.0) * 1000) / 1000);
    }
    return {{"size", size}, {"classes", std::move(classes)}, {"confidence", std::move(confidence)}};
  }

  /// Sample `index`'s forward pass and loss as an explain program with the current weights.
  SampleProgram sample_program(std::int64_t index) const {
    const std::int64_t n = data_.x.shape()[0];
    if (index < 0 || index >= n) throw ValueError(fmt::format("sample {}: use 0 to {}", index, n - 1));
    SampleProgram sp{"", Value::object()};
    std::vector<std::string> prev;
    for (std::int64_t j = 0; j < data_.x.shape()[1]; ++j) {
      prev.push_back(fmt::format("x{}", j + 1));
      cli::json::append(sp.inputs, prev.back(), full_text(data_.x.flat(index * data_.x.shape()[1] + j)));
    }
    std::vector<std::string> statements;
    const auto params = model_->named_parameters(); // 0.weight, 0.bias, 2.weight, ...
    const std::size_t layers = params.size() / 2;
    for (std::size_t l = 0; l < layers; ++l) {
      const Tensor& w = params[2 * l].second.value();
      const Tensor& bias = params[2 * l + 1].second.value();
      const std::int64_t outs = w.shape()[0], ins = w.shape()[1];
      const bool last = l + 1 == layers;
      std::vector<std::string> next;
      for (std::int64_t i = 0; i < outs; ++i) {
        std::string sum;
        for (std::int64_t j = 0; j < ins; ++j) {
          const std::string name = fmt::format("w{}_{}_{}", l + 1, i + 1, j + 1);
          cli::json::append(sp.inputs, name, full_text(w.flat(i * ins + j)));
          sum += fmt::format("{}*{} + ", name, prev[static_cast<std::size_t>(j)]);
        }
        const std::string b = fmt::format("b{}_{}", l + 1, i + 1);
        cli::json::append(sp.inputs, b, full_text(bias.flat(i)));
        const std::string z = last ? fmt::format("o{}", i + 1) : fmt::format("z{}_{}", l + 1, i + 1);
        statements.push_back(fmt::format("{} = {}{}", z, sum, b));
        if (last) {
          next.push_back(z);
        } else {
          const std::string h = fmt::format("h{}_{}", l + 1, i + 1);
          statements.push_back(fmt::format("{} = {}", h, activation_text(s_.activation, z)));
          next.push_back(h);
        }
      }
      prev = std::move(next);
    }
    const auto target = static_cast<std::int64_t>(data_.y.flat(index));
    std::vector<std::string> terms;
    if (s_.loss == "cross-entropy") {
      for (const std::string& o : prev) terms.push_back(fmt::format("exp({})", o));
      statements.push_back(fmt::format("loss = log({}) - {}", fmt::join(terms, " + "),
                                       prev[static_cast<std::size_t>(target)]));
    } else { // the mean of squared errors against the one-hot target, as nn::mse_loss
      for (std::size_t k = 0; k < prev.size(); ++k)
        terms.push_back(static_cast<std::int64_t>(k) == target ? fmt::format("({} - 1)^2", prev[k])
                                                               : fmt::format("{}^2", prev[k]));
      statements.push_back(fmt::format("loss = ({}) / {}", fmt::join(terms, " + "), prev.size()));
    }
    sp.program = fmt::format("{}", fmt::join(statements, ";\n"));
    return sp;
  }

  Value sample(std::int64_t index) const {
    const SampleProgram sp = sample_program(index);
    ExplainRequest rq{sp.program, {}, true};
    for (const auto& [name, v] : sp.inputs.items()) rq.inputs.emplace_back(name, v.get<std::string>());
    // Counted before evaluating, as the explorer's own limit is.
    const std::size_t ops =
        static_cast<std::size_t>(std::count(sp.program.begin(), sp.program.end(), '*')) * 3;
    if (ops > k_max_sample_nodes)
      throw ValueError(
          fmt::format("this model is too large to draw one sample's graph (about {} operations; the "
                      "page draws up to {}): use fewer or smaller hidden layers",
                      ops, k_max_sample_nodes));
    Value out{{"index", index}, {"program", sp.program}, {"inputs", sp.inputs}};
    out["explain"] = explain(rq);
    return out;
  }

private:
  Var batch_loss(const Var& out, const Tensor& y) const {
    if (s_.loss == "cross-entropy") return nn::cross_entropy(out, y);
    Tensor onehot = Tensor::zeros(out.shape(), out.dtype());
    for (std::int64_t i = 0; i < y.numel(); ++i)
      onehot.set_flat(i * classes_ + static_cast<std::int64_t>(y.flat(i)), 1);
    return nn::mse_loss(out, Var::constant(onehot));
  }

  /// The whole dataset's loss and accuracy now, with the step and epoch counts.
  Value with_scores(Value out) const {
    const NoGrad no_grad;
    const Var scores = model_->forward(Var::constant(data_.x));
    out["step"] = step_;
    out["epoch"] = loader_->epoch();
    out["loss"] = number(batch_loss(scores, data_.y).item());
    out["accuracy"] = number(metrics::accuracy(scores.value(), data_.y));
    return out;
  }

  /// xmin, xmax, ymin, ymax of the data, widened by a tenth on each side.
  std::vector<double> bounds() const {
    double b[4] = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (std::int64_t i = 0; i < data_.x.shape()[0]; ++i)
      for (int a = 0; a < 2; ++a) {
        const double v = data_.x.flat(2 * i + a);
        b[2 * a] = std::min(b[2 * a], v), b[2 * a + 1] = std::max(b[2 * a + 1], v);
      }
    std::vector<double> out;
    for (int a = 0; a < 2; ++a) {
      const double pad = std::max(0.1 * (b[2 * a + 1] - b[2 * a]), 1e-3);
      out.push_back(b[2 * a] - pad);
      out.push_back(b[2 * a + 1] + pad);
    }
    return out;
  }

  Settings s_;
  data::Dataset data_;
  std::int64_t classes_ = 0;
  std::shared_ptr<nn::Sequential> model_;
  std::unique_ptr<optim::Optimizer> optimizer_;
  std::optional<data::DataLoader> loader_;
  std::int64_t batch_ = 0, step_ = 0;
};

std::unique_ptr<Playground> g_playground; // one per engine instance (one per Web Worker)

Playground& current() {
  if (!g_playground) throw UsageError("the playground has no model yet: call playground.create first");
  return *g_playground;
}

Value options() {
  Value optimizers = Value::array();
  for (const cli::OptimizerKind& kind : cli::optimizer_kinds()) {
    Value params = Value::array();
    for (const cli::HyperParameter& p : page_parameters(kind))
      params.push_back({{"name", p.name}, {"default", default_text(kind, p)}, {"flag", p.flag}});
    optimizers.push_back({{"name", kind.name}, {"params", std::move(params)}});
  }
  return {{"datasets", k_datasets},
          {"activations", k_activations},
          {"losses", k_losses},
          {"optimizers", std::move(optimizers)},
          {"limits",
           {{"units", k_max_units},
            {"hidden_layers", k_max_hidden_layers},
            {"samples", k_max_samples},
            {"steps_per_call", k_max_steps_per_call},
            {"grid", k_max_grid},
            {"sample_nodes", k_max_sample_nodes}}}};
}

} // namespace

std::string playground_call(std::string_view method, std::string_view request) {
  return guarded([&]() -> Value {
    const Value rq = parse_object(request.empty() ? "{}" : request, "the playground request");
    if (method == "options") return options();
    if (method == "create") {
      Settings s = parse_settings(rq);
      g_playground.reset(); // the old model's memory first
      g_playground = std::make_unique<Playground>(std::move(s));
      return g_playground->describe();
    }
    if (method == "train") {
      const double steps = number_member(rq, "steps", 1);
      if (steps != std::floor(steps) || steps < 1 || steps > static_cast<double>(k_max_steps_per_call))
        throw ValueError(fmt::format("steps {}: use 1 to {} per call", steps, k_max_steps_per_call));
      return current().train(static_cast<std::int64_t>(steps));
    }
    if (method == "grid") {
      const double size = number_member(rq, "size", 50);
      if (size != std::floor(size) || size < 2 || size > static_cast<double>(k_max_grid))
        throw ValueError(fmt::format("grid size {}: use 2 to {}", size, k_max_grid));
      return current().grid(static_cast<std::int64_t>(size));
    }
    if (method == "sample") return current().sample(static_cast<std::int64_t>(number_member(rq, "index", 0)));
    throw UsageError(fmt::format("the playground has no method '{}'", method));
  });
}

} // namespace gg::web
