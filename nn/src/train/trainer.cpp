// The training loop: fit() over epochs and batches with the callbacks' hooks, the step, evaluation,
// the finite-value checks, and checkpoints that carry everything a bit-exact resume needs.
#include <nn/train/trainer.hpp>

#include <autodiff/autodiff.hpp>
#include <nn/optim/clip.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <set>

#include <fmt/format.h>

namespace gg::train {

namespace {

bool all_finite(const Tensor& t) {
  const auto finite = [](const auto* p, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return false;
    return true;
  };
  return t.dtype() == f32 ? finite(t.data<float>(), t.numel()) : finite(t.data<double>(), t.numel());
}

/// "nan", "inf" or "-inf" for a value that is not finite.
std::string non_finite_name(double v) {
  return std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
}

/// Entries of `all` whose name starts with prefix, with the prefix removed.
optim::StateList with_prefix(const optim::StateList& all, std::string_view prefix) {
  optim::StateList out;
  for (const auto& [name, t] : all)
    if (name.starts_with(prefix)) out.emplace_back(name.substr(prefix.size()), t);
  return out;
}

/// A position number from checkpoint metadata (FormatError naming the file and key otherwise).
std::int64_t position_entry(const safetensors::File& file, const std::string& key) {
  const auto it = file.metadata.find(key);
  if (it == file.metadata.end())
    throw FormatError(
        fmt::format("{}: no '{}' in its metadata: it is not a training checkpoint", file.path, key));
  const std::string& text = it->second;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw FormatError(fmt::format("{}: {} '{}' is not a whole number", file.path, key, text));
  return v;
}

} // namespace

std::optional<double> find(const Logs& logs, std::string_view name) {
  for (const auto& [key, value] : logs)
    if (key == name) return value;
  return std::nullopt;
}

std::optional<std::string> first_non_finite(const nn::Module& model) {
  for (const auto& [name, t] : model.state_dict())
    if (!all_finite(t)) return name;
  return std::nullopt;
}

namespace {
constexpr std::uint64_t k_prime1 = 0x9E3779B185EBCA87ULL, k_prime2 = 0xC2B2AE3D27D4EB4FULL;
/// One 64-bit lane step (xxHash64's round).
std::uint64_t round(std::uint64_t acc, std::uint64_t word) {
  acc += word * k_prime2;
  acc = (acc << 31) | (acc >> 33);
  return acc * k_prime1;
}
} // namespace

std::string fingerprint(const std::vector<Tensor>& tensors) {
  // Four independent lanes over 8-byte words keep several multiplications in flight: ~10 GB/s, so
  // Fashion-MNIST's 188 MB take ~20 ms.
  std::uint64_t lanes[4] = {1, 2, 3, 4};
  std::uint64_t total = 0;
  for (const Tensor& t : tensors) {
    lanes[0] = round(lanes[0], t.defined() ? static_cast<std::uint64_t>(t.dtype()) + 1 : 0);
    if (!t.defined()) continue;
    lanes[1] = round(lanes[1], static_cast<std::uint64_t>(t.rank()));
    for (const std::int64_t d : t.shape()) lanes[2] = round(lanes[2], static_cast<std::uint64_t>(d));
    const auto* bytes = t.dtype() == f32 ? reinterpret_cast<const unsigned char*>(t.data<float>())
                                         : reinterpret_cast<const unsigned char*>(t.data<double>());
    const std::size_t n = static_cast<std::size_t>(t.numel()) * (t.dtype() == f32 ? 4 : 8);
    std::size_t i = 0;
    for (; i + 32 <= n; i += 32)
      for (int k = 0; k < 4; ++k) {
        std::uint64_t w = 0;
        std::memcpy(&w, bytes + i + 8 * k, 8);
        lanes[k] = round(lanes[k], w);
      }
    for (; i < n; ++i) lanes[3] = round(lanes[3], bytes[i]);
    total += n;
  }
  std::uint64_t h = total * k_prime1;
  for (const std::uint64_t lane : lanes) h = round(h ^ lane, lane);
  h ^= h >> 33, h *= k_prime2, h ^= h >> 29;
  return fmt::format("{:016x}", h);
}

Trainer::Trainer(nn::Module& model, optim::Optimizer& optimizer, LossFn loss, TrainerOptions options)
    : model_(&model), optimizer_(&optimizer), loss_(std::move(loss)), options_(std::move(options)) {
  if (options_.epochs < 1)
    throw ValueError(fmt::format("Trainer: epochs must be at least 1, got {}", options_.epochs));
  if (!(options_.clip_grad_norm >= 0) || !(options_.clip_grad_value >= 0))
    throw ValueError(
        fmt::format("Trainer: clip_grad_norm and clip_grad_value must be >= 0 (0: off), got {} and {}",
                    options_.clip_grad_norm, options_.clip_grad_value));
  if (!(options_.clip_norm_type > 0))
    throw ValueError(fmt::format("Trainer: clip_norm_type must be > 0, got {}", options_.clip_norm_type));
  if (options_.eval_batch_size < 0)
    throw ValueError(fmt::format("Trainer: eval_batch_size must be >= 0, got {}", options_.eval_batch_size));
  if (!loss_) throw ValueError("Trainer: no loss function");
}

Trainer& Trainer::add_metric(std::string name, MetricFn metric) {
  metrics_.emplace_back(std::move(name), std::move(metric));
  return *this;
}

Trainer& Trainer::add_callback(Callback& callback) {
  callbacks_.push_back(&callback);
  return *this;
}

Trainer& Trainer::add_scheduler(optim::LRScheduler& scheduler, SchedulerInterval interval) {
  schedulers_.emplace_back(&scheduler, interval);
  return *this;
}

Trainer& Trainer::add_scheduler(optim::ReduceLROnPlateau& scheduler, std::string monitor) {
  plateaus_.push_back({&scheduler, std::move(monitor)});
  return *this;
}

Trainer& Trainer::set_data_parallel(DataParallel& data_parallel) {
  data_parallel_ = &data_parallel;
  return *this;
}

bool Trainer::agree_on_stop() {
  if (!data_parallel_) return stop_requested();
  std::vector<double> reason{static_cast<double>(stop_.load())};
  data_parallel_->all_reduce_max(reason);
  if (reason[0] >= 0 && !stop_requested()) stop_.store(static_cast<int>(reason[0]));
  return reason[0] >= 0;
}

void Trainer::stop(StopReason reason) {
  stop_.store(static_cast<int>(reason));
}

double Trainer::step(const Tensor& x, const Tensor& y, Var& output) {
  optimizer_->zero_grad();
  const std::int64_t rows = x.shape().rank() > 0 ? x.shape()[0] : 1;
  Var loss;
  double value = 0;
  if (!data_parallel_ || rows > 0) {
    output = (*model_)(Var::constant(x));
    loss = loss_(output, y);
    value = loss.item();
  }
  if (data_parallel_) { // the whole batch's loss: the processes' mean losses weighted by their rows
    const std::int64_t weight = options_.loss_weight && rows > 0 ? options_.loss_weight(y) : rows;
    std::vector<double> sums{value * static_cast<double>(weight), static_cast<double>(weight)};
    data_parallel_->all_reduce_sum(sums);
    value = sums[0] / sums[1];
    data_parallel_->begin_step(weight, static_cast<std::int64_t>(sums[1]));
  }
  if (options_.check_finite && !std::isfinite(value))
    throw DivergedError(fmt::format("training diverged: the loss is {} at epoch {}, step {}; the weights "
                                    "are those before this step (a smaller learning rate may help)",
                                    non_finite_name(value), position_.epoch, position_.step + 1));
  if (loss.defined()) loss.backward();
  if (data_parallel_) data_parallel_->finish_gradients();
  for (Callback* c : callbacks_) c->on_after_backward(*this, position_);
  if (options_.clip_grad_norm > 0)
    optim::clip_grad_norm(optimizer_->parameters(), options_.clip_grad_norm, options_.clip_norm_type);
  if (options_.clip_grad_value > 0)
    optim::clip_grad_value(optimizer_->parameters(), options_.clip_grad_value);
  optimizer_->step();
  ++position_.step;
  for (auto& [scheduler, interval] : schedulers_)
    if (interval == SchedulerInterval::step) scheduler->step();
  return value;
}

double Trainer::train_step(const Tensor& x, const Tensor& y) {
  Var output;
  return step(x, y, output);
}

void Trainer::check_weights(std::int64_t epoch) const {
  if (!options_.check_finite) return;
  if (const auto name = first_non_finite(*model_))
    throw DivergedError(
        fmt::format("training diverged: '{}' holds NaN or infinite values at the end of epoch {} "
                    "(after step {}); they must not be saved as a model (a smaller "
                    "learning rate may help)",
                    *name, epoch, position_.step));
}

Tensor Trainer::predict(const Tensor& x) {
  NoGrad no_grad;
  const bool was_training = model_->is_training();
  model_->eval();
  struct Restore {
    nn::Module& m;
    bool on;
    ~Restore() { m.train(on); }
  } restore{*model_, was_training};
  const std::int64_t all = x.shape().rank() > 0 ? x.shape()[0] : 1, b = options_.eval_batch_size;
  // Data-parallel: each process predicts its share of the rows, and every process gets all of them.
  const auto [first, last] = data_parallel_ && x.shape().rank() > 0
                                 ? shard_rows(all, data_parallel_->rank(), data_parallel_->world_size())
                                 : std::pair<std::int64_t, std::int64_t>{0, all};
  const auto forward = [&](std::int64_t i, std::int64_t j) {
    return (*model_)(Var::constant(i == 0 && j == all ? x : kernel::slice(x, 0, i, j))).value();
  };
  Tensor out;
  if (b == 0 || b >= last - first) {
    out = forward(first, last);
  } else {
    std::vector<Tensor> parts;
    for (std::int64_t i = first; i < last; i += b) parts.push_back(forward(i, std::min(last, i + b)));
    out = kernel::concat(parts, 0);
  }
  return data_parallel_ && x.shape().rank() > 0 ? data_parallel_->all_gather_rows(out) : out;
}

Logs Trainer::evaluate(const Tensor& x, const Tensor& y, std::string_view prefix) {
  const Tensor out = predict(x);
  const std::string p = prefix.empty() ? std::string() : std::string(prefix) + "_";
  NoGrad no_grad;
  Logs logs{{p + "loss", loss_(Var::constant(out), y).item()}};
  for (const auto& [name, metric] : metrics_) logs.emplace_back(p + name, metric(out, y));
  return logs;
}

FitResult Trainer::finish(FitResult result) {
  result.position = position_;
  stop_.store(-1);
  for (Callback* c : callbacks_) c->on_fit_end(*this, result);
  return result;
}

FitResult Trainer::fit(data::DataLoader& loader, const Tensor& x_val, const Tensor& y_val) {
  if (x_val.defined() != y_val.defined())
    throw ValueError("Trainer::fit: give both validation inputs and targets, or neither");
  if (data_parallel_ && (loader.options().rank != data_parallel_->rank() ||
                         loader.options().world_size != data_parallel_->world_size()))
    throw UsageError(fmt::format("Trainer::fit: the loader takes the batches of rank {} of {}, but this "
                                 "process is rank {} of {}: give the DataLoader this rank and world size",
                                 loader.options().rank, loader.options().world_size, data_parallel_->rank(),
                                 data_parallel_->world_size()));
  FitResult result;
  model_->train();
  const std::int64_t batches = loader.size();
  // Replays the shuffles of the epochs done before (a resumed run), so this run's batches are the
  // uninterrupted run's; a loader already in the current epoch (a stopped fit) keeps its order.
  while (loader.epoch() < position_.epoch - 1) loader.begin();
  for (Callback* c : callbacks_) c->on_fit_begin(*this);
  for (std::int64_t epoch = position_.epoch; epoch <= options_.epochs; ++epoch) {
    if (agree_on_stop())
      return finish({static_cast<StopReason>(stop_.load()), {}, result.epochs_run, result.logs});
    if (loader.epoch() < epoch) loader.begin();
    for (Callback* c : callbacks_) c->on_epoch_begin(*this, epoch);
    double loss_sum = 0;
    std::int64_t rows = 0;
    for (std::int64_t i = position_.batch; i < batches; ++i) {
      position_.epoch = epoch, position_.batch = i;
      for (Callback* c : callbacks_) c->on_batch_begin(*this, position_);
      if (agree_on_stop())
        return finish({static_cast<StopReason>(stop_.load()), {}, result.epochs_run, result.logs});
      const data::Batch b = loader.batch(i);
      Var output;
      const double loss = step(b.x, b.y, output);
      const std::int64_t n = b.global_rows > 0 ? b.global_rows : b.x.shape()[0];
      loss_sum += loss * static_cast<double>(n), rows += n;
      const StepInfo info{epoch, i, position_.step, batches, loss, output, b};
      for (Callback* c : callbacks_) c->on_batch_end(*this, info);
    }
    check_weights(epoch);
    Logs logs;
    if (options_.evaluate_train)
      logs = evaluate(loader.x(), loader.y(), "train");
    else
      logs.emplace_back("train_loss", rows > 0 ? loss_sum / static_cast<double>(rows) : NAN);
    if (x_val.defined()) {
      const Logs v = evaluate(x_val, y_val, options_.validation_name);
      logs.insert(logs.end(), v.begin(), v.end());
    }
    for (auto& [scheduler, interval] : schedulers_)
      if (interval == SchedulerInterval::epoch) scheduler->step();
    for (const Plateau& p : plateaus_) {
      const auto value = find(logs, p.monitor);
      if (!value)
        throw ValueError(
            fmt::format("Trainer: ReduceLROnPlateau monitors '{}', which the epoch's logs do not "
                        "have (validation data given?)",
                        p.monitor));
      p.scheduler->step(*value);
    }
    position_ = {epoch + 1, 0, position_.step};
    ++result.epochs_run;
    result.logs = logs;
    for (Callback* c : callbacks_) c->on_epoch_end(*this, epoch, logs);
  }
  const StopReason reason = stop_requested() && stop_.load() == static_cast<int>(StopReason::early_stopping)
                                ? StopReason::early_stopping
                                : StopReason::finished;
  return finish({reason, {}, result.epochs_run, result.logs});
}

std::pair<optim::StateList, std::map<std::string, std::string>>
Trainer::checkpoint(const std::map<std::string, std::string>& metadata) const {
  optim::StateList all;
  for (auto& [name, t] : model_->state_dict()) all.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer_->state()) all.emplace_back("optimizer." + name, t);
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    for (auto& [name, t] : schedulers_[i].first->state())
      all.emplace_back(fmt::format("scheduler.{}.{}", i, name), t);
  for (std::size_t i = 0; i < plateaus_.size(); ++i)
    for (auto& [name, t] : plateaus_[i].scheduler->state())
      all.emplace_back(fmt::format("scheduler.{}.{}", schedulers_.size() + i, name), t);
  std::set<std::string> names;
  for (const Callback* c : callbacks_) {
    const std::string name = c->state_name();
    if (name.empty()) continue;
    if (!names.insert(name).second)
      throw ValueError(fmt::format("Trainer: two callbacks keep state under the name '{}'", name));
    for (auto& [key, t] : c->state()) all.emplace_back("callback." + name + "." + key, t);
  }
  std::map<std::string, std::string> meta = metadata;
  meta["gradgraph.epoch"] = std::to_string(position_.epoch);
  meta["gradgraph.batch"] = std::to_string(position_.batch);
  meta["gradgraph.step"] = std::to_string(position_.step);
  return {std::move(all), std::move(meta)};
}

void Trainer::save_checkpoint(const std::string& path,
                              const std::map<std::string, std::string>& metadata) const {
  if (rank() != 0) return;
  const auto [tensors, meta] = checkpoint(metadata);
  safetensors::save(path, tensors, meta);
}

void Trainer::load_parts(const optim::StateList& all) {
  optimizer_->load_state(with_prefix(all, "optimizer."));
  for (std::size_t i = 0; i < schedulers_.size(); ++i)
    schedulers_[i].first->load_state(with_prefix(all, fmt::format("scheduler.{}.", i)));
  for (std::size_t i = 0; i < plateaus_.size(); ++i)
    plateaus_[i].scheduler->load_state(
        with_prefix(all, fmt::format("scheduler.{}.", schedulers_.size() + i)));
  for (Callback* c : callbacks_)
    if (!c->state_name().empty()) c->load_state(with_prefix(all, "callback." + c->state_name() + "."));
}

std::map<std::string, std::string> Trainer::load_checkpoint(const safetensors::File& file) {
  const Position p{position_entry(file, "gradgraph.epoch"), position_entry(file, "gradgraph.batch"),
                   position_entry(file, "gradgraph.step")};
  if (p.epoch < 1 || p.batch < 0 || p.step < 0)
    throw FormatError(fmt::format("{}: position epoch {}, batch {}, step {} is not one a run reaches",
                                  file.path, p.epoch, p.batch, p.step));
  for (const auto& [name, t] : file.tensors)
    if (!name.starts_with("model.") && !name.starts_with("optimizer.") && !name.starts_with("scheduler.") &&
        !name.starts_with("callback."))
      throw FormatError(fmt::format("{}: '{}' is not an entry of a training checkpoint", file.path, name));
  // Everything is checked on copies before anything changes: a model whose state loaded while the
  // optimizer's failed would be a mixture of two runs.
  const optim::StateList model = with_prefix(file.tensors, "model.");
  try {
    const auto own = model_->state_dict();
    for (const auto& [name, t] : own) {
      // By name, not by a lambda capturing the binding: clang before 16 refuses that capture.
      auto it = model.begin();
      while (it != model.end() && it->first != name) ++it;
      if (it == model.end()) throw ValueError(fmt::format("no model entry '{}'", name));
      if (it->second.shape() != t.shape())
        throw ShapeError(fmt::format("model entry '{}' has shape {}, the model's is {}", name,
                                     it->second.shape().str(), t.shape().str()));
    }
    // The states as they are, put back if any part of the checkpoint does not fit.
    const auto [saved, unused] = checkpoint();
    try {
      load_parts(file.tensors);
    } catch (...) {
      load_parts(saved);
      throw;
    }
    model_->load_state_dict(model);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", file.path, e.what()));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", file.path, e.what()));
  }
  position_ = p;
  return file.metadata;
}

std::map<std::string, std::string> Trainer::load_checkpoint(const std::string& path) {
  return load_checkpoint(safetensors::load(path));
}

} // namespace gg::train
