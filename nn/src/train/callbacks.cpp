// History, EarlyStopping, JsonLinesLogger, ModelCheckpoint (with its fallback places) and
// StopOnSignal (sigaction handlers that only set a flag the trainer reads before each step).
#include <nn/train/callbacks.hpp>

#include <autodiff/error.hpp>

#include <chrono>
#include <cmath>
#include <csignal>
#include <filesystem>
#include <limits>

#include <fmt/format.h>
#include <unistd.h>

namespace gg::train {

void History::on_epoch_end(Trainer&, std::int64_t epoch, const Logs& logs) {
  epochs_.push_back(static_cast<double>(epoch));
  logs_.push_back(logs);
}

std::vector<double> History::series(std::string_view name) const {
  std::vector<double> out;
  for (const Logs& l : logs_) out.push_back(find(l, name).value_or(std::numeric_limits<double>::quiet_NaN()));
  return out;
}

bool History::has(std::string_view name) const {
  for (const Logs& l : logs_)
    if (find(l, name)) return true;
  return false;
}

EarlyStopping::EarlyStopping(EarlyStoppingOptions options)
    : options_(std::move(options)),
      best_(options_.mode == Mode::min ? std::numeric_limits<double>::infinity()
                                       : -std::numeric_limits<double>::infinity()) {
  if (options_.monitor.empty()) throw ValueError("EarlyStopping: no log entry to monitor");
  if (options_.patience < 0)
    throw ValueError(fmt::format("EarlyStopping: patience must be >= 0, got {}", options_.patience));
  if (!(options_.min_delta >= 0))
    throw ValueError(fmt::format("EarlyStopping: min_delta must be >= 0, got {}", options_.min_delta));
}

void EarlyStopping::on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) {
  const auto value = find(logs, options_.monitor);
  if (!value) {
    std::string have;
    for (const auto& [name, v] : logs) have += (have.empty() ? "" : ", ") + name;
    throw ValueError(
        fmt::format("EarlyStopping: the epoch's logs have no '{}' (they have {})", options_.monitor, have));
  }
  const bool better =
      options_.mode == Mode::min ? *value < best_ - options_.min_delta : *value > best_ + options_.min_delta;
  if (better) {
    best_ = *value, best_epoch_ = epoch, wait_ = 0;
    if (options_.restore_best_weights) {
      best_weights_.clear();
      for (auto& [name, t] : trainer.model().state_dict()) best_weights_.emplace_back(name, t.clone());
    }
    return;
  }
  if (++wait_ < options_.patience) return;
  stopped_epoch_ = epoch;
  trainer.stop(StopReason::early_stopping);
  if (options_.restore_best_weights && !best_weights_.empty()) trainer.model().load_state_dict(best_weights_);
}

optim::StateList EarlyStopping::state() const {
  optim::StateList s{{"best", Tensor::scalar(best_)},
                     {"best_epoch", Tensor::scalar(static_cast<double>(best_epoch_))},
                     {"wait", Tensor::scalar(static_cast<double>(wait_))}};
  for (const auto& [name, t] : best_weights_) s.emplace_back("best_weights." + name, t);
  return s;
}

void EarlyStopping::load_state(const optim::StateList& entries) {
  std::optional<double> best, best_epoch, wait;
  optim::StateList weights;
  for (const auto& [name, t] : entries) {
    if (name.starts_with("best_weights.")) {
      weights.emplace_back(name.substr(13), t);
      continue;
    }
    std::optional<double>* slot = name == "best"         ? &best
                                  : name == "best_epoch" ? &best_epoch
                                  : name == "wait"       ? &wait
                                                         : nullptr;
    if (slot == nullptr || t.numel() != 1)
      throw ValueError(fmt::format("EarlyStopping.load_state: unexpected entry '{}'", name));
    *slot = t.item();
  }
  if (!best || !best_epoch || !wait)
    throw ValueError("EarlyStopping.load_state: expected 'best', 'best_epoch' and 'wait'");
  best_ = *best, best_epoch_ = static_cast<std::int64_t>(*best_epoch),
  wait_ = static_cast<std::int64_t>(*wait);
  best_weights_ = std::move(weights);
}

std::string json_number(double v) {
  return std::isfinite(v) ? fmt::format("{}", v) : std::isnan(v) ? "\"nan\"" : v > 0 ? "\"inf\"" : "\"-inf\"";
}

std::string json_string(std::string_view text) {
  std::string out = "\"";
  for (const char c : text) {
    if (c == '"' || c == '\\')
      out += '\\', out += c;
    else if (static_cast<unsigned char>(c) < 0x20)
      out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
    else
      out += c;
  }
  return out + "\"";
}

std::string json_line(const Logs& fields) {
  std::string line = "{";
  for (const auto& [name, value] : fields)
    line += fmt::format("{}{}: {}", line.size() > 1 ? ", " : "", json_string(name), json_number(value));
  return line + "}";
}

JsonLinesLogger::JsonLinesLogger(std::function<void(std::string_view)> write, JsonLinesOptions options)
    : write_(std::move(write)), options_(std::move(options)) {
  if (!write_) throw ValueError("JsonLinesLogger: no writer");
  if (!options_.format) options_.format = json_line;
}

void JsonLinesLogger::emit(const std::string& line) {
  if (!error_.empty()) return;
  try {
    write_(line);
  } catch (const Error& e) { // the log is secondary: training goes on, the failure is reported
    error_ = e.what();
    if (options_.on_error) options_.on_error(error_);
  }
}

void JsonLinesLogger::on_batch_end(Trainer& trainer, const StepInfo& step) {
  if (options_.steps && trainer.rank() == 0)
    emit(options_.format({{"step", static_cast<double>(step.step)},
                          {"epoch", static_cast<double>(step.epoch)},
                          {"loss", step.loss}}) +
         "\n");
}

void JsonLinesLogger::on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs& logs) {
  if (trainer.rank() != 0) return;
  Logs fields{{"epoch", static_cast<double>(epoch)}};
  fields.insert(fields.end(), logs.begin(), logs.end());
  emit(options_.format(fields) + "\n");
}

SavedCheckpoint save_checkpoint_with_fallback(const Trainer& trainer, const std::string& path,
                                              const std::map<std::string, std::string>& metadata) {
  if (trainer.rank() != 0) return {path, ""}; // data-parallel: rank 0 saves the ranks' common state
  const auto [tensors, meta] = trainer.checkpoint(metadata);
  std::vector<std::string> failures;
  const auto stamp = std::chrono::system_clock::now().time_since_epoch() / std::chrono::seconds(1);
  const std::string name = fmt::format("gradgraph-rescue-{}-{}.safetensors", ::getpid(), stamp);
  std::vector<std::string> places{path, (std::filesystem::path(path).parent_path() / name).string()};
  std::error_code ec;
  const std::filesystem::path temp = std::filesystem::temp_directory_path(ec);
  if (!ec) places.push_back((temp / name).string());
  for (const std::string& place : places) {
    try {
      safetensors::save(place, tensors, meta);
      return {place, failures.empty() ? std::string() : failures.front()};
    } catch (const IOError& e) {
      failures.emplace_back(e.what());
    }
  }
  std::string all;
  for (const std::string& f : failures) all += (all.empty() ? "" : "; then ") + f;
  throw IOError(fmt::format("the checkpoint could not be saved anywhere: {}", all));
}

ModelCheckpoint::ModelCheckpoint(CheckpointOptions options) : options_(std::move(options)) {
  if (options_.path.empty()) throw ValueError("ModelCheckpoint: no path");
  if (options_.every_epochs < 0)
    throw ValueError(
        fmt::format("ModelCheckpoint: every_epochs must be >= 0, got {}", options_.every_epochs));
}

void ModelCheckpoint::on_epoch_end(Trainer& trainer, std::int64_t epoch, const Logs&) {
  if (options_.every_epochs > 0 && epoch % options_.every_epochs == 0)
    last_ = save_checkpoint_with_fallback(trainer, options_.path,
                                          options_.metadata ? options_.metadata()
                                                            : std::map<std::string, std::string>{});
}

void ModelCheckpoint::on_fit_end(Trainer& trainer, const FitResult& result) {
  if (options_.on_stop && (result.reason == StopReason::requested || result.reason == StopReason::signal))
    last_ = save_checkpoint_with_fallback(trainer, options_.path,
                                          options_.metadata ? options_.metadata()
                                                            : std::map<std::string, std::string>{});
}

namespace {
constexpr int k_stop_signals[] = {SIGINT, SIGTERM, SIGHUP};
volatile std::sig_atomic_t g_received = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_received != 0) { // a second signal: the default action (the user insists)
    ::signal(sig, SIG_DFL);
    ::raise(sig);
    return;
  }
  g_received = sig;
}
} // namespace

struct StopOnSignal::Saved {
  struct sigaction previous[std::size(k_stop_signals)];
};

StopOnSignal::StopOnSignal() : saved_(std::make_unique<Saved>()) {
  g_received = 0;
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART; // a read or write in progress goes on
  for (std::size_t i = 0; i < std::size(k_stop_signals); ++i)
    ::sigaction(k_stop_signals[i], &action, &saved_->previous[i]);
}

StopOnSignal::~StopOnSignal() {
  for (std::size_t i = 0; i < std::size(k_stop_signals); ++i)
    ::sigaction(k_stop_signals[i], &saved_->previous[i], nullptr);
}

void StopOnSignal::on_batch_begin(Trainer& trainer, const Position&) {
  if (g_received != 0) trainer.stop(StopReason::signal);
}

int StopOnSignal::signal() const {
  return g_received;
}

} // namespace gg::train
