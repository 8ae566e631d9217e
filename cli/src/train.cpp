// gradgraph train and gradgraph eval: an MLP trained on a CSV file or a teaching dataset, with
// every PyTorch optimizer, a JSONL log of each step's loss, and a safetensors file PyTorch loads;
// and the saved model evaluated on data (accuracy, confusion matrix).
#include <cli/cli.hpp>

#include <nn/io/atomic_file.hpp>
#include <nn/nn.hpp>

#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "files.hpp"
#include "model_spec.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;

struct TrainOptions {
  std::string data, labels, target, dataset, test, test_labels, layers, activation, loss, optimizer, dtype,
      init, save, log, plots, checkpoint, resume, progress;
  int threads = 0;
  std::int64_t stop_after = 0; ///< testing: act as if Ctrl-C came after this many steps
  std::int64_t samples = 300, epochs = 100, batch_size = 32;
  double noise = 0.1, split = 0, lr = 0, momentum = 0, beta1 = 0.9, beta2 = 0.999, eps = 0, rho = 0.9,
         alpha = 0.99, weight_decay = 0, lr_decay = 0, momentum_decay = 4e-3;
  bool nesterov = false, no_shuffle = false, standardize = false, detect_anomaly = false;
  std::uint64_t seed = 0;
  std::set<std::string> given; ///< options given on the command line (the rest take defaults)
};

/// The training data (and test data, when --test or --split gives some).
struct Data {
  data::Dataset train, test;
  std::string source;
};

/// CSV options for --target (empty: the last column).
data::CsvOptions csv_options(const std::string& target) {
  data::CsvOptions csv;
  csv.target_name = target;
  return csv;
}

/// Whether a file starts as IDX files do: two zero bytes, or gzip's 1f 8b (a CSV starts with text).
bool looks_like_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[2] = {1, 1};
  in.read(reinterpret_cast<char*>(b), 2);
  return in.gcount() == 2 && ((b[0] == 0 && b[1] == 0) || (b[0] == 0x1f && b[1] == 0x8b));
}

/// A dataset from --data-like options: IDX examples with their labels file, or a CSV file.
data::Dataset read_dataset(const std::string& option, const std::string& path,
                           const std::string& labels_option, const std::string& labels,
                           const std::string& target, DType dtype) {
  if (!labels.empty()) return data::load_idx_dataset(path, labels, dtype);
  if (looks_like_idx(path))
    throw UsageError(
        fmt::format("{} {}: this is an IDX (or gzip) file, not a CSV: give its labels with {} FILE", option,
                    path, labels_option));
  return data::read_csv(path, csv_options(target));
}

Data load_data(const TrainOptions& o, DType dtype) {
  Data d;
  if (o.data.empty() == o.dataset.empty()) throw UsageError("give one of --data FILE or --dataset NAME");
  if (!o.labels.empty() && o.data.empty()) throw UsageError("--labels goes with --data (IDX examples)");
  if (!o.test_labels.empty() && o.test.empty())
    throw UsageError("--test-labels goes with --test (IDX examples)");
  if (o.dataset == "fashion-mnist") {
    d.train = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), true, dtype);
    if (o.test.empty() && !(o.split > 0))
      d.test = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), false, dtype);
    d.source = o.dataset;
  } else if (!o.dataset.empty()) {
    if (o.samples < 4 || o.samples > 10'000'000)
      throw ValueError(fmt::format("--samples {}: use 4 to 10000000", o.samples));
    const std::string& n = o.dataset;
    d.train = n == "triangle"  ? data::triangle(o.samples, o.seed)
              : n == "xor"     ? data::xor_dataset(o.samples, o.noise, o.seed)
              : n == "moons"   ? data::two_moons(o.samples, o.noise, o.seed)
              : n == "circles" ? data::circles(o.samples, o.noise, 0.5, o.seed)
              : n == "spiral"
                  ? data::spiral(o.samples / 3, 3, o.noise, o.seed)
                  : throw ValueError(fmt::format(
                        "--dataset '{}': use triangle, xor, moons, circles, spiral or fashion-mnist", n));
    d.source = n;
  } else {
    d.train = read_dataset("--data", o.data, "--labels", o.labels, o.target, dtype);
    d.source = o.data;
  }
  if (!o.test.empty()) {
    d.test = read_dataset("--test", o.test, "--test-labels", o.test_labels, o.target, dtype);
    if (d.test.x.shape()[1] != d.train.x.shape()[1])
      throw ShapeError(fmt::format("--test {}: {} feature columns, but the training data has {}", o.test,
                                   d.test.x.shape()[1], d.train.x.shape()[1]));
  } else if (o.split > 0) {
    if (!(o.split < 1)) throw ValueError(fmt::format("--split {}: use a fraction in (0, 1)", o.split));
    const data::Split s = data::train_test_split(d.train.x, d.train.y, o.split, o.seed);
    d.test = d.train;
    d.train.x = s.x_train, d.train.y = s.y_train, d.test.x = s.x_test, d.test.y = s.y_test;
  }
  return d;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const TrainOptions& o, std::vector<Var> params) {
  const std::string& n = o.optimizer;
  // An option not given takes the optimizer's PyTorch default; a given one is checked by the optimizer.
  auto lr = [&](double fallback) { return o.given.count("lr") ? o.lr : fallback; };
  auto wd = [&](double fallback) { return o.given.count("weight-decay") ? o.weight_decay : fallback; };
  auto eps = [&](double fallback) { return o.given.count("eps") ? o.eps : fallback; };
  const optim::Betas betas{o.beta1, o.beta2};
  if (n == "gd") return std::make_unique<optim::GD>(params, optim::GDOptions(lr(0.01)));
  if (n == "sgd" || n == "momentum" || n == "nesterov") {
    const double m = o.given.count("momentum") ? o.momentum : n == "sgd" ? 0.0 : 0.9;
    return std::make_unique<optim::SGD>(
        params,
        optim::SGDOptions(lr(0.01)).momentum(m).nesterov(n == "nesterov" || o.nesterov).weight_decay(wd(0)));
  }
  if (n == "rmsprop")
    return std::make_unique<optim::RMSprop>(params, optim::RMSpropOptions(lr(1e-2))
                                                        .alpha(o.alpha)
                                                        .eps(eps(1e-8))
                                                        .momentum(o.momentum)
                                                        .weight_decay(wd(0)));
  if (n == "adam")
    return std::make_unique<optim::Adam>(
        params, optim::AdamOptions(lr(1e-3)).betas(betas).eps(eps(1e-8)).weight_decay(wd(0)));
  if (n == "adamw")
    return std::make_unique<optim::AdamW>(
        params, optim::AdamWOptions(lr(1e-3)).betas(betas).eps(eps(1e-8)).weight_decay(wd(1e-2)));
  if (n == "adagrad")
    return std::make_unique<optim::Adagrad>(
        params, optim::AdagradOptions(lr(1e-2)).lr_decay(o.lr_decay).eps(eps(1e-10)).weight_decay(wd(0)));
  if (n == "adadelta")
    return std::make_unique<optim::Adadelta>(
        params, optim::AdadeltaOptions(lr(1.0)).rho(o.rho).eps(eps(1e-6)).weight_decay(wd(0)));
  if (n == "nadam")
    return std::make_unique<optim::NAdam>(
        params, optim::NAdamOptions(lr(2e-3)).betas(betas).eps(eps(1e-8)).weight_decay(wd(0)).momentum_decay(
                    o.momentum_decay));
  throw ValueError(fmt::format(
      "--optimizer '{}': use gd, sgd, momentum, nesterov, rmsprop, adam, adamw, adagrad, adadelta or nadam",
      n));
}

/// Loss of a batch: cross-entropy from logits against class ids, or mse (one-hot rows for
/// classification, the value itself for regression).
Var batch_loss(const std::string& loss, const Var& out, const Tensor& y, std::int64_t classes) {
  if (loss == "cross-entropy") return nn::cross_entropy(out, y);
  if (classes > 0) {
    Tensor onehot = Tensor::zeros(out.shape(), out.dtype());
    for (std::int64_t i = 0; i < y.numel(); ++i)
      onehot.set_flat(i * classes + static_cast<std::int64_t>(y.flat(i)), 1);
    return nn::mse_loss(out, Var::constant(onehot));
  }
  return nn::mse_loss(out, Var::constant(y.reshape(out.shape()).to(out.dtype())));
}

/// --stop-after N (for tests): stops the run as a signal would, before the step after step N.
class StopAfter : public train::Callback {
public:
  explicit StopAfter(std::int64_t steps) : steps_(steps) {}
  void on_batch_begin(train::Trainer& trainer, const train::Position& p) override {
    if (steps_ > 0 && p.step == steps_) trainer.stop(train::StopReason::signal);
  }

private:
  std::int64_t steps_;
};

std::string join(const Tensor& t) {
  std::string s;
  for (std::int64_t i = 0; i < t.numel(); ++i) s += fmt::format("{}{}", i ? "," : "", t.flat(i));
  return s;
}
/// A number written in a file's metadata; a FormatError naming the file and entry when it is not one.
template <class T> T metadata_number(const std::string& text, const std::string& where) {
  T v{};
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw FormatError(fmt::format("{}: '{}' is not a number", where, text));
  return v;
}
Tensor split_numbers(const std::string& s, std::int64_t n, const std::string& what) {
  std::vector<double> v;
  std::istringstream in(s);
  for (std::string item; std::getline(in, item, ',');) v.push_back(metadata_number<double>(item, what));
  if (static_cast<std::int64_t>(v.size()) != n)
    throw FormatError(fmt::format("{}: {} numbers for {} features", what, v.size(), n));
  return Tensor(v, {n});
}

/// What a checkpoint must agree on to be resumed: the data, model, loss, optimizer and batches.
std::string run_signature(const TrainOptions& o) {
  return fmt::format(
      "data={}{} layers={} activation={} loss={} optimizer={} lr={} batch={} shuffle={} seed={} "
      "dtype={}",
      o.data, o.dataset, o.layers, o.activation, o.loss, o.optimizer, o.lr, o.batch_size, !o.no_shuffle,
      o.seed, o.dtype);
}

} // namespace

int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  TrainOptions o;
  po::options_description desc("gradgraph train");
  desc.add_options()("help,h", "this help")("data", po::value(&o.data),
                                            "training data: a CSV file, or IDX examples (with --labels)")(
      "labels", po::value(&o.labels), "the IDX labels of --data (e.g. train-labels-idx1-ubyte.gz)")(
      "target", po::value(&o.target), "the CSV's target column (default: the last)")(
      "dataset", po::value(&o.dataset),
      "or a built-in dataset: triangle, xor, moons, circles, spiral (generated), fashion-mnist (Debian's "
      "dataset-fashion-mnist, with its test set)")("samples", po::value(&o.samples)->default_value(300),
                                                   "points a generated dataset has")(
      "noise", po::value(&o.noise)->default_value(0.1), "noise of a generated dataset")(
      "test", po::value(&o.test), "test data, like --data")("test-labels", po::value(&o.test_labels),
                                                            "the IDX labels of --test")(
      "split", po::value(&o.split)->default_value(0), "or hold out this fraction of the data for testing")(
      "standardize", po::bool_switch(&o.standardize),
      "scale features to mean 0, std 1 (fitted on training data)")("layers", po::value(&o.layers)->required(),
                                                                   "sizes from input to output, e.g. 4,16,3")(
      "activation", po::value(&o.activation)->default_value("sigmoid"), "sigmoid, tanh, relu or leaky-relu")(
      "loss", po::value(&o.loss)->default_value("cross-entropy"), "cross-entropy or mse")(
      "optimizer", po::value(&o.optimizer)->default_value("adam"),
      "gd (full batch), sgd, momentum, nesterov, rmsprop, adam, adamw, adagrad, adadelta, nadam")(
      "lr", po::value(&o.lr), "learning rate (default: PyTorch's for the optimizer; 0.01 for gd/sgd)")(
      "momentum", po::value(&o.momentum), "SGD/RMSprop momentum (momentum and nesterov: 0.9)")(
      "nesterov", po::bool_switch(&o.nesterov), "Nesterov momentum for sgd")(
      "beta1", po::value(&o.beta1)->default_value(0.9),
      "Adam/AdamW/NAdam beta1")("beta2", po::value(&o.beta2)->default_value(0.999), "Adam/AdamW/NAdam beta2")(
      "eps", po::value(&o.eps), "epsilon (default: PyTorch's for the optimizer)")(
      "rho", po::value(&o.rho)->default_value(0.9),
      "Adadelta rho")("alpha", po::value(&o.alpha)->default_value(0.99), "RMSprop alpha")(
      "weight-decay", po::value(&o.weight_decay), "weight decay (AdamW: 0.01, others: 0)")(
      "lr-decay", po::value(&o.lr_decay)->default_value(0), "Adagrad lr_decay")(
      "momentum-decay", po::value(&o.momentum_decay)->default_value(4e-3), "NAdam momentum_decay")(
      "epochs", po::value(&o.epochs)->default_value(100), "passes over the training data")(
      "batch-size", po::value(&o.batch_size)->default_value(32),
      "examples per step (gd: all)")("no-shuffle", po::bool_switch(&o.no_shuffle), "batches in file order")(
      "seed", po::value(&o.seed)->default_value(0), "seed of initial weights, shuffling and generated data")(
      "dtype", po::value(&o.dtype)->default_value("f64"),
      "f32 or f64")("threads", po::value(&o.threads)->default_value(1),
                    "threads for matrix products and large elementwise kernels")(
      "progress", po::value(&o.progress)->default_value("auto"),
      "auto (a progress bar when output is a terminal), bar, or lines (one line per reported epoch)")(
      "init", po::value(&o.init), "start from these weights (safetensors)")(
      "save", po::value(&o.save), "write the trained model here (safetensors, PyTorch's names)")(
      "log", po::value(&o.log), "write one JSON line per step and per epoch here")(
      "checkpoint", po::value(&o.checkpoint)->default_value("gradgraph-checkpoint.safetensors"),
      "where Ctrl-C saves the model, optimizer state and position (then exit code 130)")(
      "resume", po::value(&o.resume), "continue exactly where a checkpoint stopped (same data and options)")(
      "stop-after", po::value(&o.stop_after)->default_value(0),
      "testing: stop as Ctrl-C would after N steps")(
      "detect-anomaly", po::bool_switch(&o.detect_anomaly),
      "stop at the first NaN or infinity in a value or gradient, naming the op and its path (slower)")(
      "plots", po::value(&o.plots),
      "write loss.svg, accuracy.svg and, for 2-D data, regions.svg (decision regions) into this folder");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  if (vm.count("help")) {
    fmt::print(out,
               "usage: gradgraph train (--data FILE.csv | --dataset NAME) --layers 2,8,2 [options]\n\n{}",
               fmt::streamed(desc));
    return ok;
  }
  po::notify(vm);
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) o.given.insert(name);
  if (o.dtype != "f32" && o.dtype != "f64")
    throw UsageError(fmt::format("--dtype '{}': use f32 or f64", o.dtype));
  if (o.loss != "cross-entropy" && o.loss != "mse")
    throw UsageError(fmt::format("--loss '{}': use cross-entropy or mse", o.loss));
  if (o.epochs < 1 || o.epochs > 1'000'000)
    throw ValueError(fmt::format("--epochs {}: use 1 to 1000000", o.epochs));
  if (o.batch_size < 1) throw ValueError(fmt::format("--batch-size {}: must be at least 1", o.batch_size));
  if (o.threads < 1 || o.threads > 1024)
    throw ValueError(fmt::format("--threads {}: use 1 to 1024", o.threads));
  if (o.progress != "auto" && o.progress != "bar" && o.progress != "lines")
    throw UsageError(fmt::format("--progress '{}': use auto, bar or lines", o.progress));
  const DType dtype = o.dtype == "f32" ? f32 : f64;
  const struct RestoreThreads { // the thread count is process-wide: tests run many commands in one process
    int n = kernel::num_threads();
    ~RestoreThreads() { kernel::set_num_threads(n); }
  } restore_threads;
  kernel::set_num_threads(o.threads);

  Data d = load_data(o, dtype);
  const std::vector<std::int64_t> sizes = parse_layers(o.layers);
  const std::int64_t features = d.train.x.shape()[1], classes = d.train.num_classes;
  if (sizes.front() != features)
    throw ShapeError(fmt::format("--layers {}: the input size {} must equal the {} features of {}", o.layers,
                                 sizes.front(), features, d.source));
  if (classes == 0 && o.loss == "cross-entropy")
    throw UsageError(fmt::format("{}: the target holds numbers, not classes: use --loss mse", d.source));
  const std::int64_t want = classes > 0 ? classes : 1;
  if (sizes.back() != want)
    throw ShapeError(fmt::format("--layers {}: the output size {} must equal the {} {} of {}", o.layers,
                                 sizes.back(), want, classes > 0 ? "classes" : "target value", d.source));
  data::Standardizer standardizer;
  if (o.standardize) {
    d.train.x = standardizer.fit_transform(d.train.x);
    if (d.test.x.defined()) d.test.x = standardizer.transform(d.test.x);
  }
  d.train.x = d.train.x.to(dtype);
  if (d.test.x.defined()) d.test.x = d.test.x.to(dtype);

  nn::manual_seed(o.seed);
  auto model = build_mlp(sizes, parse_activation(o.activation), dtype);
  if (!o.init.empty()) nn::load(*model, o.init);
  auto opt = make_optimizer(o, model->parameters());

  // Outputs that cannot be written are found now, not after the training they were to keep.
  // (A probe creates, then removes, a temporary file next to the path.)
  if (!o.save.empty()) AtomicFile probe(o.save);
  if (o.given.count("checkpoint")) AtomicFile probe(o.checkpoint);
  if (!o.plots.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(o.plots, ec);
    if (ec) throw IOError(fmt::format("--plots {}: cannot make the folder: {}", o.plots, ec.message()));
  }
  // The log is this run's record: its lines reach a temporary file next to --log as they are
  // written, which replaces --log when the run ends, however it ends (an error too); a killed
  // process leaves the old log (docs/reliability.md).
  std::optional<AtomicFile> log;
  if (!o.log.empty()) log.emplace(o.log, /*keep_unfinished=*/true);
  const std::int64_t n = d.train.x.shape()[0];
  const std::int64_t batch = o.optimizer == "gd" ? n : std::min(o.batch_size, n);
  data::DataLoader loader(d.train.x, d.train.y,
                          {.batch_size = batch, .shuffle = !o.no_shuffle, .seed = o.seed});
  fmt::print(out,
             "training {} on {} ({} examples, {} features{}), {} epochs of {} steps, optimizer {} (lr {})\n",
             o.layers, d.source, n, features, classes ? fmt::format(", {} classes", classes) : "", o.epochs,
             loader.size(), o.optimizer, opt->lr());
  train::Trainer trainer(
      *model, *opt,
      [&](const Var& output, const Tensor& y) { return batch_loss(o.loss, output, y, classes); },
      {.epochs = o.epochs});
  if (classes) trainer.add_metric("accuracy", metrics::accuracy);
  // Where to start: the beginning, or a checkpoint's epoch and batch (its options must match ours).
  if (!o.resume.empty()) {
    const safetensors::File file = safetensors::load(o.resume);
    const std::string mine = run_signature(o);
    const auto& meta = file.metadata;
    if (meta.count("gradgraph.run") == 0 || meta.at("gradgraph.run") != mine)
      throw ValueError(
          fmt::format("--resume {}: it was made by a different run ({}); this one is {}", o.resume,
                      meta.count("gradgraph.run") ? meta.at("gradgraph.run") : "no run recorded", mine));
    trainer.load_checkpoint(file);
    const train::Position& p = trainer.position();
    if (p.epoch > o.epochs)
      throw ValueError(
          fmt::format("--resume {}: it stopped in epoch {}, past --epochs {}", o.resume, p.epoch, o.epochs));
    fmt::print(out, "resuming from {}: epoch {}, batch {}, step {}\n", o.resume, p.epoch, p.batch + 1,
               p.step);
  }
  train::StopOnSignal interrupt;
  StopAfter stop_after(o.stop_after);
  std::optional<DetectAnomaly> anomaly;
  if (o.detect_anomaly) anomaly.emplace();
  const bool bar_on =
      o.progress == "bar" || (o.progress == "auto" && &out == &std::cout && train::stdout_is_terminal());
  train::ProgressLogger progress(out, {.bar = bar_on, .width = bar_on ? train::terminal_width() : 80});
  train::History history; // for --plots
  std::optional<train::JsonLinesLogger> logger;
  if (log) logger.emplace([&](std::string_view line) { log->write(line); });
  trainer.add_callback(interrupt).add_callback(stop_after).add_callback(progress).add_callback(history);
  if (logger) trainer.add_callback(*logger);
  const train::FitResult result = trainer.fit(loader, d.test.x, d.test.y);
  if (result.reason == train::StopReason::signal || result.reason == train::StopReason::requested) {
    trainer.save_checkpoint(o.checkpoint, {{"gradgraph.run", run_signature(o)}});
    if (log) log->commit();
    fmt::print(out, "stopped after step {}: saved {} (continue with --resume {})\n", result.position.step,
               o.checkpoint, o.checkpoint);
    return interrupted;
  }
  if (log) log->commit();
  if (!o.plots.empty()) {
    const std::string dir = o.plots + "/";
    const std::vector<double>& epochs = history.epochs();
    plot::LineChart loss_chart(fmt::format("{} loss, {} ({})", o.loss, d.source, o.optimizer), "epoch",
                               "loss");
    loss_chart.add("train", epochs, history.series("train_loss")).log_y();
    if (history.has("test_loss")) loss_chart.add("test", epochs, history.series("test_loss"));
    loss_chart.save(dir + "loss.svg");
    std::string wrote = dir + "loss.svg";
    if (classes) {
      plot::LineChart acc(fmt::format("accuracy, {} ({})", d.source, o.optimizer), "epoch", "accuracy");
      acc.add("train", epochs, history.series("train_accuracy"));
      if (history.has("test_accuracy")) acc.add("test", epochs, history.series("test_accuracy"));
      acc.save(dir + "accuracy.svg");
      wrote += ", " + dir + "accuracy.svg";
    }
    if (classes && features == 2) {
      model->eval();
      plot::RegionOptions look;
      look.title = fmt::format("{} on {}: decision regions", o.layers, d.source);
      plot::decision_regions(
          dir + "regions.svg",
          [&](const Tensor& points) { return (*model)(Var::constant(points.to(dtype))).value(); }, d.train.x,
          d.train.y, look);
      wrote += ", " + dir + "regions.svg";
    }
    fmt::print(out, "plots: {}\n", wrote);
  }
  if (!o.save.empty()) {
    std::map<std::string, std::string> meta{
        {"gradgraph.layers", o.layers}, {"gradgraph.activation", o.activation}, {"gradgraph.loss", o.loss}};
    if (o.standardize)
      meta["gradgraph.standardize.mean"] = join(standardizer.mean()),
      meta["gradgraph.standardize.std"] = join(standardizer.std());
    nn::save(*model, o.save, meta);
    fmt::print(out, "saved {}\n", o.save);
  }
  return ok;
}

int run_eval(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  std::string model_path, data_path, labels, target;
  po::options_description desc("gradgraph eval");
  desc.add_options()("help,h", "this help")("model", po::value(&model_path)->required(),
                                            "a model saved by gradgraph train --save")(
      "data", po::value(&data_path)->required(),
      "a CSV file with the training data's columns, or IDX examples (with --labels)")(
      "labels", po::value(&labels), "the IDX labels of --data")(
      "target", po::value(&target), "the CSV's target column (default: the last)");
  po::variables_map vm;
  po::store(po::command_line_parser(args).options(desc).run(), vm);
  if (vm.count("help")) {
    fmt::print(out, "usage: gradgraph eval --model FILE.safetensors --data FILE [--labels FILE]\n\n{}",
               fmt::streamed(desc));
    return ok;
  }
  po::notify(vm);
  const safetensors::File file = safetensors::load(model_path);
  auto meta = [&](const std::string& key) {
    auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw FormatError(
          fmt::format("{}: no '{}' in its metadata: was it saved by gradgraph train?", model_path, key));
    return it->second;
  };
  const std::vector<std::int64_t> sizes = parse_layers(meta("gradgraph.layers"));
  if (file.tensors.empty()) throw FormatError(fmt::format("{}: the file holds no weights", model_path));
  const DType dtype = file.tensors.front().second.dtype();
  auto model = build_mlp(sizes, parse_activation(meta("gradgraph.activation")), dtype);
  nn::load(*model, model_path);
  data::Dataset d = read_dataset("--data", data_path, "--labels", labels, target, dtype);
  if (d.x.shape()[1] != sizes.front())
    throw ShapeError(fmt::format("{}: {} feature columns, but the model takes {}", data_path, d.x.shape()[1],
                                 sizes.front()));
  if (file.metadata.count("gradgraph.standardize.mean"))
    d.x = data::Standardizer(split_numbers(meta("gradgraph.standardize.mean"), sizes.front(), model_path),
                             split_numbers(meta("gradgraph.standardize.std"), sizes.front(), model_path))
              .transform(d.x);
  NoGrad no_grad;
  model->eval();
  const Tensor scores = (*model)(Var::constant(d.x.to(dtype))).value();
  const std::int64_t k = sizes.back();
  fmt::print(
      out, "{}: {} examples, accuracy {:.4f}\n\nconfusion matrix (rows: true class, columns: predicted)\n{}",
      data_path, d.x.shape()[0], metrics::accuracy(scores, d.y),
      metrics::format_confusion_matrix(metrics::confusion_matrix(metrics::class_ids(scores), d.y, k),
                                       d.class_names));
  return ok;
}

} // namespace gg::cli
