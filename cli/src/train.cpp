// gradgraph train: an MLP trained by gg::train::Trainer on a CSV file (classes, or numbers for
// regression), IDX files or a teaching dataset, with every PyTorch optimizer, a JSONL log, and a
// safetensors model PyTorch loads. A run never loses its model: it is saved before the secondary
// outputs (log, plots), a failing --save falls back to a checkpoint elsewhere, SIGINT/SIGTERM/SIGHUP
// checkpoint, and --resume refuses a checkpoint of other data or settings. Started by mpirun (in a
// build with MPI), the processes train data-parallel: each its share of every batch, rank 0 writing.
#include <cli/cli.hpp>

#include <nn/io/atomic_file.hpp>
#include <nn/nn.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "files.hpp"
#include "json.hpp"
#include "model_spec.hpp"
#include "optimizers.hpp"
#include "options.hpp"
#include "processes.hpp"
#include "train_data.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;

struct TrainOptions {
  std::string data, labels, dataset, test, test_labels, layers, activation, loss, optimizer, dtype, init,
      save, log, plots, checkpoint, resume, progress, test_fault;
  std::vector<std::string> targets;
  int threads = 1;
  std::int64_t stop_after = 0; ///< testing: act as if Ctrl-C came after this many steps
  std::int64_t checkpoint_every = 0;
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
  std::string fingerprint; ///< of the features before --split (features_fingerprint)
};

std::string text(double v) {
  return fmt::format("{}", v);
}

/// Whether the data is a generated dataset, for which the optimizers' own defaults apply
/// (OptimizerKind::generated_lr and generated_epochs: optimizers.hpp).
bool generated_data(const TrainOptions& o) {
  return !o.dataset.empty() && o.dataset != "fashion-mnist";
}

Data load_data(const TrainOptions& o, std::int64_t outputs, DType dtype) {
  Data d;
  if (o.data.empty() == o.dataset.empty()) throw UsageError("give one of --data FILE or --dataset NAME");
  if (!o.labels.empty() && o.data.empty()) throw UsageError("--labels goes with --data (IDX examples)");
  if (!o.test_labels.empty() && o.test.empty())
    throw UsageError("--test-labels goes with --test (IDX examples)");
  if (!o.targets.empty() && (o.data.empty() || !o.labels.empty()))
    throw UsageError("--target names columns of a CSV given with --data");
  if (o.targets.size() > 1 && o.loss != "mse")
    throw UsageError(fmt::format("{} --target columns are a regression: use --loss mse", o.targets.size()));
  if (o.given.count("split") && !(o.split >= 0 && o.split < 1))
    throw ValueError(fmt::format("--split {}: use a fraction in (0, 1), or 0 for none", o.split));
  if (!(o.noise >= 0 && std::isfinite(o.noise)))
    throw ValueError(fmt::format("--noise {}: use a finite value >= 0", o.noise));
  const TargetKind kind = o.loss == "mse" ? TargetKind::numbers : TargetKind::classes;
  if (o.dataset == "fashion-mnist") {
    d.train = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), true, dtype);
    if (o.test.empty() && !(o.split > 0))
      d.test = data::load_fashion_mnist(std::string(data::fashion_mnist_dir), false, dtype);
    d.source = o.dataset;
  } else if (!o.dataset.empty()) {
    if (o.samples < 4 || o.samples > 10'000'000)
      throw ValueError(fmt::format("--samples {}: use 4 to 10000000", o.samples));
    d.train = generated_dataset(o.dataset, o.samples, o.noise, o.seed);
    d.source = o.dataset;
  } else {
    d.train = read_dataset("--data", o.data, "--labels", o.labels, o.targets, kind, dtype);
    d.source = o.data;
    // --loss mse reads the targets as numbers: whole numbers from 0 for a model with several
    // outputs are classes (one-hot rows), anything else is regression.
    if (kind == TargetKind::numbers && o.labels.empty()) as_classes(d.train, outputs);
  }
  if (!o.test.empty()) {
    d.test = read_dataset("--test", o.test, "--test-labels", o.test_labels, o.targets, kind, dtype);
    if (kind == TargetKind::numbers && o.test_labels.empty() && d.train.num_classes > 0 &&
        !as_classes(d.test, outputs))
      throw FormatError(
          fmt::format("--test {}: its targets are not class ids, but those of {} are", o.test, d.source));
    d.test.num_classes = d.train.num_classes;
    if (d.test.x.shape()[1] != d.train.x.shape()[1])
      throw ShapeError(fmt::format("--test {}: {} feature columns, but the training data has {}", o.test,
                                   d.test.x.shape()[1], d.train.x.shape()[1]));
  } else if (o.split > 0) {
    d.fingerprint = features_fingerprint(d.train.x);
    const data::Split s = data::train_test_split(d.train.x, d.train.y, o.split, o.seed);
    d.test = d.train;
    d.train.x = s.x_train, d.train.y = s.y_train, d.test.x = s.x_test, d.test.y = s.y_test;
  }
  return d;
}

/// The optimizer of --optimizer with the hyper-parameters given on the command line (the rest take
/// its defaults: optimizers.hpp, shared with the browser page's playground).
OptimizerChoice make_optimizer(const TrainOptions& o, std::vector<Var> params) {
  const std::map<std::string, double> options{{"lr", o.lr},
                                              {"momentum", o.momentum},
                                              {"nesterov", o.nesterov ? 1.0 : 0.0},
                                              {"beta1", o.beta1},
                                              {"beta2", o.beta2},
                                              {"eps", o.eps},
                                              {"rho", o.rho},
                                              {"alpha", o.alpha},
                                              {"weight-decay", o.weight_decay},
                                              {"lr-decay", o.lr_decay},
                                              {"momentum-decay", o.momentum_decay}};
  std::map<std::string, double> given;
  for (const auto& [name, value] : options)
    if (o.given.count(name)) given.emplace(name, value);
  return cli::make_optimizer(o.optimizer, std::move(params), given, generated_data(o));
}

/// Loss of a batch: cross-entropy from logits against class ids; for one output unit on two classes,
/// binary cross-entropy of σ(output) (PyTorch's BCEWithLogitsLoss) or the squared error of σ(output)
/// against 0/1 (the 1986 paper's E); or mse (one-hot rows for classification, the values themselves
/// for regression).
Var batch_loss(const std::string& loss, const Var& out, const Tensor& y, std::int64_t classes) {
  if (loss == "cross-entropy") return nn::cross_entropy(out, y);
  if (classes == 2 && out.shape()[1] == 1) {
    const Tensor target = y.reshape(out.shape()).to(out.dtype());
    if (loss == "bce") return nn::binary_cross_entropy_with_logits(out, target);
    return nn::mse_loss(sigmoid(out), Var::constant(target));
  }
  if (classes > 0) {
    Tensor onehot = Tensor::zeros(out.shape(), out.dtype());
    for (std::int64_t i = 0; i < y.numel(); ++i)
      onehot.set_flat(i * classes + static_cast<std::int64_t>(y.flat(i)), 1);
    return nn::mse_loss(out, Var::constant(onehot));
  }
  return nn::mse_loss(out, Var::constant(y.reshape(out.shape()).to(out.dtype())));
}

/// One record of the log as the command line writes JSON (json.hpp: the same numbers as explain --json).
std::string json_line(const train::Logs& fields) {
  json::Value line = json::Value::object();
  for (const auto& [name, value] : fields) json::append(line, name, value);
  return json::dump(line);
}

/// --stop-after N (for tests): stops the run as SIGINT would, before the step after step N.
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

/// The paths a run writes and reads, by option; two outputs on one file, or an output on an input,
/// are refused before any work (a checkpoint may be the file it resumes from: it is read first).
void check_paths(const TrainOptions& o) {
  namespace fs = std::filesystem;
  std::vector<std::pair<std::string, std::string>> outputs{{"--checkpoint", o.checkpoint}}, inputs;
  if (!o.save.empty()) outputs.emplace_back("--save", o.save);
  if (!o.log.empty()) outputs.emplace_back("--log", o.log);
  if (!o.plots.empty())
    for (const char* name : {"loss.svg", "accuracy.svg", "regions.svg"})
      outputs.emplace_back("--plots", (fs::path(o.plots) / name).string());
  for (const auto& [option, path] : {std::pair<const char*, const std::string&>{"--data", o.data},
                                     {"--labels", o.labels},
                                     {"--test", o.test},
                                     {"--test-labels", o.test_labels},
                                     {"--init", o.init},
                                     {"--resume", o.resume}})
    if (!path.empty()) inputs.emplace_back(option, path);
  cli::check_paths(outputs, inputs);
}

/// What a checkpoint must agree on to be resumed: the data (its options and a fingerprint of its
/// contents), the model, the loss, the optimizer and its settings, the batches and the seed.
Record run_record(const TrainOptions& o, const Record& optimizer_settings, const Data& d) {
  // Files are known by their contents (the fingerprint below), not their paths: a moved CSV is the
  // same data, an edited one is not.
  Record r;
  if (!o.dataset.empty()) {
    r.emplace_back("dataset", o.dataset);
    if (o.dataset != "fashion-mnist") r.emplace_back("samples", std::to_string(o.samples));
    if (o.dataset != "fashion-mnist" && o.dataset != "triangle") r.emplace_back("noise", text(o.noise));
  }
  r.emplace_back("split", text(o.split));
  r.emplace_back("standardize", o.standardize ? "true" : "false");
  r.emplace_back("layers", o.layers);
  r.emplace_back("activation", o.activation);
  r.emplace_back("loss", o.loss);
  r.emplace_back("optimizer", o.optimizer);
  r.insert(r.end(), optimizer_settings.begin(), optimizer_settings.end());
  r.emplace_back("batch-size", std::to_string(o.batch_size));
  r.emplace_back("shuffle", o.no_shuffle ? "false" : "true");
  r.emplace_back("seed", std::to_string(o.seed));
  r.emplace_back("dtype", o.dtype);
  r.emplace_back("data contents", train::fingerprint({d.train.x, d.train.y, d.test.x, d.test.y}));
  return r;
}

std::map<std::string, std::string> record_metadata(const Record& r) {
  std::map<std::string, std::string> meta;
  for (const auto& [name, value] : r) meta["gradgraph.run." + name] = value;
  return meta;
}

/// Refuses a checkpoint whose run record differs from this run's, naming every difference.
void check_resume(const std::string& path, const std::map<std::string, std::string>& meta,
                  const Record& mine) {
  if (std::none_of(meta.begin(), meta.end(),
                   [](const auto& e) { return e.first.starts_with("gradgraph.run."); }))
    throw ValueError(
        fmt::format("--resume {}: it records no run to compare with (made by an older gradgraph, "
                    "or not by train): start again without --resume",
                    path));
  std::string diffs;
  std::set<std::string> seen;
  auto differ = [&](const std::string& name, const std::string& there, const std::string& here) {
    diffs += fmt::format("{}{}", diffs.empty() ? "" : "; ",
                         name == "data contents" ? "the data's contents differ"
                                                 : fmt::format("--{} {} there, {} here", name, there, here));
  };
  for (const auto& [name, value] : mine) {
    seen.insert(name);
    const auto it = meta.find("gradgraph.run." + name);
    const std::string there = it == meta.end() ? "(none)" : it->second;
    if (there != value) differ(name, there, value);
  }
  for (const auto& [key, value] : meta)
    if (key.starts_with("gradgraph.run.") && !seen.count(key.substr(14)))
      differ(key.substr(14), value, "(none)");
  if (!diffs.empty())
    throw ValueError(
        fmt::format("--resume {}: it was made by a run with other data or settings: {}", path, diffs));
}

/// Writes the --plots charts; returns what was written.
std::string write_plots(const TrainOptions& o, const Data& d, const train::History& history,
                        nn::Module& model, DType dtype) {
  const auto path = [&](const char* name) { return (std::filesystem::path(o.plots) / name).string(); };
  const bool classes = d.train.num_classes > 0;
  const std::vector<double>& epochs = history.epochs();
  plot::LineChart loss_chart(fmt::format("{} loss, {} ({})", o.loss, d.source, o.optimizer), "epoch", "loss");
  loss_chart.add("train", epochs, history.series("train_loss")).log_y();
  if (history.has("test_loss")) loss_chart.add("test", epochs, history.series("test_loss"));
  loss_chart.save(path("loss.svg"));
  std::string wrote = path("loss.svg");
  if (classes) {
    plot::LineChart acc(fmt::format("accuracy, {} ({})", d.source, o.optimizer), "epoch", "accuracy");
    acc.add("train", epochs, history.series("train_accuracy"));
    if (history.has("test_accuracy")) acc.add("test", epochs, history.series("test_accuracy"));
    acc.save(path("accuracy.svg"));
    wrote += ", " + path("accuracy.svg");
  }
  if (classes && d.train.x.shape()[1] == 2) {
    model.eval();
    plot::RegionOptions look;
    look.title = fmt::format("{} on {}: decision regions", o.layers, d.source);
    if (d.test.x.defined()) {
      look.test_x = d.test.x, look.test_y = d.test.y;
      look.title += " (diamonds: test points)";
    }
    plot::decision_regions(
        path("regions.svg"),
        [&](const Tensor& points) {
          return predicted_classes(model(Var::constant(points.to(dtype))).value());
        },
        d.train.x, d.train.y, look);
    wrote += ", " + path("regions.svg");
  }
  return wrote;
}

/// The metadata of the saved model: how to rebuild it and what data it takes.
std::map<std::string, std::string> model_metadata(const TrainOptions& o, const Data& d,
                                                  const data::Standardizer& standardizer) {
  std::map<std::string, std::string> meta{
      {keys::layers, o.layers},
      {keys::activation, o.activation},
      {keys::loss, o.loss},
      {keys::task, d.train.num_classes > 0 ? "classification" : "regression"}};
  // How the data was split, so that eval can score the held-out part (the same rows: the same
  // features, split with the same fraction and seed).
  meta[keys::split] = text(o.split);
  meta[keys::seed] = std::to_string(o.seed);
  if (!d.fingerprint.empty()) meta[keys::data] = d.fingerprint;
  if (!o.dataset.empty() && o.dataset != "fashion-mnist")
    meta[keys::dataset] = o.dataset, meta[keys::samples] = std::to_string(o.samples),
    meta[keys::noise] = text(o.noise);
  if (!d.train.feature_names.empty()) meta[keys::features] = names_to_json(d.train.feature_names);
  if (!o.targets.empty()) meta[keys::targets] = names_to_json(o.targets);
  if (o.standardize)
    meta[keys::mean] = join(standardizer.mean()), meta[keys::stddev] = join(standardizer.std());
  return meta;
}

/// Parses the command line into o; false after printing --help.
bool parse_options(const std::vector<std::string>& args, std::ostream& out, TrainOptions& o) {
  po::options_description desc("gradgraph train");
  desc.add_options()("help,h", "this help")("data", po::value(&o.data),
                                            "training data: a CSV file, or IDX examples (with --labels)")(
      "labels", po::value(&o.labels), "the IDX labels of --data (e.g. train-labels-idx1-ubyte.gz)")(
      "target", po::value(&o.targets)->composing(),
      "the CSV's target column (default: the last); give it several times for several regression targets "
      "(with --loss mse)")("dataset", po::value(&o.dataset),
                           "or a built-in dataset: triangle, xor, moons, circles, spiral (generated), "
                           "fashion-mnist (Debian's dataset-fashion-mnist, with its test set)")(
      "samples", number_value(&o.samples, "--samples")->default_value("300"),
      "points a generated dataset has")("noise", number_value(&o.noise, "--noise")->default_value("0.1"),
                                        "noise of a generated dataset")(
      "test", po::value(&o.test), "test data, like --data")("test-labels", po::value(&o.test_labels),
                                                            "the IDX labels of --test")(
      "split", number_value(&o.split, "--split")->default_value("0"),
      "or hold out this fraction of the data for testing (0 < fraction < 1; 0: none)")(
      "standardize", po::bool_switch(&o.standardize),
      "scale features to mean 0, std 1 (fitted on training data)")("layers", po::value(&o.layers)->required(),
                                                                   "sizes from input to output, e.g. 4,16,3")(
      "activation", po::value(&o.activation)->default_value("sigmoid"), "sigmoid, tanh, relu or leaky-relu")(
      "loss", po::value(&o.loss)->default_value("cross-entropy"),
      "cross-entropy (classes, one output each); bce: two classes and one output unit, binary "
      "cross-entropy of its sigmoid (PyTorch's BCEWithLogitsLoss); or mse: a CSV's targets are then "
      "numbers (regression; one output per target column), or class ids when they are whole numbers "
      "from 0 and the model has several outputs (one-hot rows), or only 0 and 1 and one output unit "
      "(two classes, the squared error of its sigmoid). With one output unit, accuracy counts "
      "sigmoid > 0.5 as class 1")(
      "optimizer", po::value(&o.optimizer)->default_value("adam"),
      "gd (full batch), sgd, momentum, nesterov, rmsprop, adam, adamw, adagrad, adadelta, nadam")(
      "lr", number_value(&o.lr, "--lr"),
      "learning rate (default: PyTorch's for the optimizer, 0.01 for gd/sgd; for a generated dataset, "
      "whose few hundred points and small models PyTorch's rates take tens of thousands of steps to "
      "learn: adam, adamw, nadam 0.05, rmsprop 0.03, adagrad 0.3, adadelta 10, sgd 1, momentum and "
      "nesterov 0.1, gd 3)")("momentum", number_value(&o.momentum, "--momentum"),
                             "SGD/RMSprop momentum (momentum and nesterov: 0.9)")(
      "nesterov", po::bool_switch(&o.nesterov), "Nesterov momentum for sgd")(
      "beta1", number_value(&o.beta1, "--beta1")->default_value("0.9"), "Adam/AdamW/NAdam beta1")(
      "beta2", number_value(&o.beta2, "--beta2")->default_value("0.999"), "Adam/AdamW/NAdam beta2")(
      "eps", number_value(&o.eps, "--eps"), "epsilon (default: PyTorch's for the optimizer)")(
      "rho", number_value(&o.rho, "--rho")->default_value("0.9"),
      "Adadelta rho")("alpha", number_value(&o.alpha, "--alpha")->default_value("0.99"),
                      "RMSprop alpha")("weight-decay", number_value(&o.weight_decay, "--weight-decay"),
                                       "weight decay (AdamW: 0.01, others: 0)")(
      "lr-decay", number_value(&o.lr_decay, "--lr-decay")->default_value("0"), "Adagrad lr_decay")(
      "momentum-decay", number_value(&o.momentum_decay, "--momentum-decay")->default_value("0.004"),
      "NAdam momentum_decay")("epochs", number_value(&o.epochs, "--epochs"),
                              "passes over the training data (default: 100; for a generated dataset 200, "
                              "with sgd, momentum and nesterov 500, with gd 2000: one step an epoch)")(
      "batch-size", number_value(&o.batch_size, "--batch-size")->default_value("32"),
      "examples per step (gd: all)")("no-shuffle", po::bool_switch(&o.no_shuffle), "batches in file order")(
      "seed", number_value(&o.seed, "--seed")->default_value("0"),
      "seed of initial weights, shuffling and generated data (0 to 18446744073709551615)")(
      "dtype", po::value(&o.dtype)->default_value("f64"),
      "f32 or f64")("threads", number_value(&o.threads, "--threads")->default_value("1"),
                    "threads for matrix products and large elementwise kernels")(
      "progress", po::value(&o.progress)->default_value("auto"),
      "auto (a progress bar when output is a terminal), bar, or lines (one line per reported epoch)")(
      "init", po::value(&o.init), "start from these weights (a model or a checkpoint)")(
      "save", po::value(&o.save),
      "write the trained model here (safetensors, PyTorch's names); if it cannot be written, a checkpoint "
      "goes "
      "beside it or into the temporary folder, and the exit code is 4")(
      "log", po::value(&o.log), "write one JSON line per step and per epoch here")(
      "checkpoint", po::value(&o.checkpoint)->default_value("gradgraph-checkpoint.safetensors"),
      "where Ctrl-C, SIGTERM or SIGHUP saves the model, optimizer state and position (then exit code 128 + "
      "the "
      "signal's number: 130, 143, 129)")(
      "resume", po::value(&o.resume),
      "continue exactly where a checkpoint stopped (refused when the data or settings differ)")(
      "checkpoint-every", number_value(&o.checkpoint_every, "--checkpoint-every")->default_value("0"),
      "also save the checkpoint at the end of every N-th epoch (0: only on a signal), each replacing the "
      "last "
      "atomically: a run whose process or machine dies goes on with --resume from the last one")(
      "stop-after", number_value(&o.stop_after, "--stop-after")->default_value("0"),
      "testing: stop as Ctrl-C would after N steps")(
      "test-fault", po::value(&o.test_fault),
      "testing: the last process is killed (kill:N) or runs out of memory (oom:N) before step N + 1")(
      "detect-anomaly", po::bool_switch(&o.detect_anomaly),
      "stop at the first NaN or infinity in a value or gradient, naming the op and its path (slower)")(
      "plots", po::value(&o.plots),
      "write loss.svg, accuracy.svg and, for 2-D data, regions.svg (decision regions) into this folder");
  po::variables_map vm;
  if (!parse_or_help(
          args, desc,
          "usage: gradgraph train (--data FILE.csv | --dataset NAME) --layers 2,8,2 [options]\n\n"
          "The model is saved before the log and the plots are finished: a secondary output that\n"
          "fails is reported after it, with exit code 4. A loss or weight that becomes NaN or\n"
          "infinite stops the run (exit code 8), and nothing is saved as a model.\n\n"
          "Data-parallel training (a build with MPI: openmpi-bin, libopenmpi-dev) runs the same\n"
          "command as N processes, each on its share of every batch, rank 0 printing and writing:\n"
          "  mpirun -n 4 gradgraph train <options>                    (one machine)\n"
          "  mpirun -n 16 --hostfile hosts gradgraph train <options>  (lines 'node1 slots=8')\n"
          "--batch-size is the global batch: a multiple of N. As root (a container), Open MPI\n"
          "needs OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 in the environment,\n"
          "and OMPI_MCA_rmaps_base_oversubscribe=1 for more processes than cores\n"
          "(docs/distributed.md).",
          out, vm))
    return false;
  for (const auto& [name, value] : vm)
    if (!value.defaulted()) o.given.insert(name);
  if (generated_data(o) && !o.given.count("epochs"))
    for (const OptimizerKind& k : optimizer_kinds())
      if (o.optimizer == k.name) o.epochs = k.generated_epochs;
  if (o.dtype != "f32" && o.dtype != "f64")
    throw UsageError(fmt::format("--dtype '{}': use f32 or f64", o.dtype));
  if (o.loss != "cross-entropy" && o.loss != "bce" && o.loss != "mse")
    throw UsageError(fmt::format("--loss '{}': use cross-entropy, bce or mse", o.loss));
  if (o.epochs < 1 || o.epochs > 1'000'000)
    throw ValueError(fmt::format("--epochs {}: use 1 to 1000000", o.epochs));
  if (o.batch_size < 1) throw ValueError(fmt::format("--batch-size {}: must be at least 1", o.batch_size));
  if (o.threads < 1 || o.threads > 1024)
    throw ValueError(fmt::format("--threads {}: use 1 to 1024", o.threads));
  if (o.stop_after < 0) throw ValueError(fmt::format("--stop-after {}: must be >= 0", o.stop_after));
  if (o.checkpoint_every < 0)
    throw ValueError(fmt::format("--checkpoint-every {}: must be >= 0", o.checkpoint_every));
  if (o.progress != "auto" && o.progress != "bar" && o.progress != "lines")
    throw UsageError(fmt::format("--progress '{}': use auto, bar or lines", o.progress));
  if (o.checkpoint.empty()) throw UsageError("--checkpoint: give a file name");
  return true;
}

/// Checks the data against the model before any training: sizes, and a classifier's classes.
void check_data(const TrainOptions& o, const Data& d, const std::vector<std::int64_t>& sizes) {
  const std::int64_t features = d.train.x.shape()[1], classes = d.train.num_classes;
  if (sizes.front() != features)
    throw ShapeError(fmt::format("--layers {}: the input size {} must equal the {} features of {}", o.layers,
                                 sizes.front(), features, d.source));
  if (classes == 0 && o.loss == "cross-entropy")
    throw UsageError(fmt::format("{}: the target holds numbers, not classes: use --loss mse", d.source));
  if (classes > metrics::max_classes)
    throw ValueError(fmt::format("{}: {} classes; gradgraph trains and evaluates at most {}", d.source,
                                 classes, metrics::max_classes));
  if (classes > 0 && distinct_classes(d.train.y) < 2)
    throw ValueError(
        fmt::format("{}: every training example is of class {}: a classifier needs examples of two "
                    "classes or more",
                    d.source, d.train.y.flat(0)));
  // One output unit for two classes: its σ is the probability of class 1 (--loss bce or mse).
  const bool one_unit = classes == 2 && sizes.back() == 1;
  if (o.loss == "bce" && classes != 2)
    throw ValueError(fmt::format("--loss bce: {} has {} classes; binary cross-entropy takes two (for more, "
                                 "use cross-entropy with one output per class)",
                                 d.source, classes));
  if (o.loss == "bce" && !one_unit)
    throw ShapeError(fmt::format("--layers {}: --loss bce takes one output unit for the two classes (its "
                                 "sigmoid is the probability of class 1): end --layers with 1",
                                 o.layers));
  if (o.loss == "cross-entropy" && one_unit)
    throw ShapeError(fmt::format("--layers {}: one output unit for two classes takes --loss bce or mse (a "
                                 "sigmoid output); cross-entropy needs one output per class (2)",
                                 o.layers));
  const std::int64_t want = one_unit                ? 1
                            : classes > 0           ? classes
                            : d.train.y.rank() == 2 ? d.train.y.shape()[1]
                                                    : 1;
  if (sizes.back() != want)
    throw ShapeError(fmt::format("--layers {}: the output size {} must equal the {} {} of {}", o.layers,
                                 sizes.back(), want,
                                 classes > 0 ? "classes"
                                 : want == 1 ? "target value"
                                             : "target columns",
                                 d.source));
}

/// Where a run's model went when --save failed: a checkpoint elsewhere. Prints where, on err.
void rescue(const train::Trainer& trainer, const TrainOptions& o, const std::string& why,
            const std::map<std::string, std::string>& metadata, std::ostream& err) {
  const train::SavedCheckpoint s =
      train::save_checkpoint_with_fallback(trainer, o.save + ".checkpoint.safetensors", metadata);
  fmt::print(err,
             "gradgraph train: {}\ngradgraph train: the trained model is saved as a checkpoint in {} instead "
             "(eval reads it; --init or --resume {} continues from it)\n",
             why, s.path, s.path);
}

int train(const std::vector<std::string>& args, std::ostream& any_out, std::ostream& err) {
  // Data-parallel: rank 0 prints, logs and saves; the others write nothing but errors.
  const Processes ranks = processes();
  std::ostream no_out(nullptr);
  std::ostream& out = ranks.rank == 0 ? any_out : no_out;
  TrainOptions o;
  if (!parse_options(args, out, o)) return ok;
  check_same_on_every_rank(options_text(args, {"--data", "--labels", "--test", "--test-labels", "--init",
                                               "--resume", "--save", "--log", "--plots", "--checkpoint"}),
                           "options (the command lines differ)");
  if (o.optimizer != "gd") check_batch_splits(o.batch_size, ranks.world);
  const DType dtype = o.dtype == "f32" ? f32 : f64;
  const struct RestoreThreads { // the thread count is process-wide: tests run many commands in one process
    int n = kernel::num_threads();
    ~RestoreThreads() { kernel::set_num_threads(n); }
  } restore_threads;
  kernel::set_num_threads(o.threads);

  const std::vector<std::int64_t> sizes = parse_layers(o.layers);
  check_paths(o);
  Data d = load_data(o, sizes.back(), dtype);
  check_data(o, d, sizes);
  const std::int64_t classes = d.train.num_classes;
  data::Standardizer standardizer;
  if (o.standardize) {
    d.train.x = standardizer.fit_transform(d.train.x);
    if (d.test.x.defined()) d.test.x = standardizer.transform(d.test.x);
  }
  d.train.x = d.train.x.to(dtype);
  if (d.test.x.defined()) d.test.x = d.test.x.to(dtype);

  nn::manual_seed(o.seed);
  auto model = build_mlp(sizes, parse_activation(o.activation), dtype);
  if (!o.init.empty()) {
    safetensors::File init = safetensors::load(o.init);
    load_weights(*model, init);
  }
  OptimizerChoice choice = make_optimizer(o, model->parameters());
  optim::Optimizer& opt = *choice.optimizer;

  const bool writer = ranks.rank == 0;
  // Outputs that cannot be written are found now, not after the training they were to keep.
  // (A probe creates, then removes, a temporary file next to the path.)
  if (!o.save.empty() && writer) AtomicFile probe(o.save);
  if (o.given.count("checkpoint") && writer) AtomicFile probe(o.checkpoint);
  if (!o.plots.empty() && writer) {
    std::error_code ec;
    std::filesystem::create_directories(o.plots, ec);
    if (ec) throw IOError(fmt::format("--plots {}: cannot make the folder: {}", o.plots, ec.message()));
  }
  // The log is this run's record: its lines reach a temporary file next to --log as they are
  // written, which replaces --log when the run ends, however it ends (an error too); a killed
  // process leaves the old log (docs/reliability.md).
  std::optional<AtomicFile> log;
  if (!o.log.empty() && writer) log.emplace(o.log, /*keep_unfinished=*/true);
  const std::int64_t n = d.train.x.shape()[0];
  const std::int64_t batch = o.optimizer == "gd" ? n : std::min(o.batch_size, n);
  data::DataLoader loader(d.train.x, d.train.y,
                          {.batch_size = batch,
                           .shuffle = !o.no_shuffle,
                           .seed = o.seed,
                           .rank = ranks.rank,
                           .world_size = ranks.world});
  const std::string what = classes > 0             ? fmt::format(", {} classes", classes)
                           : d.train.y.rank() == 2 ? fmt::format(", {} targets", d.train.y.shape()[1])
                                                   : ", regression";
  fmt::print(
      out, "training {} on {} ({} examples, {} features{}), {} epochs of {} steps, optimizer {} (lr {})\n",
      o.layers, d.source, n, d.train.x.shape()[1], what, o.epochs, loader.size(), o.optimizer, opt.lr());
  if (ranks.world > 1)
    fmt::print(out, "data-parallel: {} processes, each {} rows of every batch of {}\n", ranks.world,
               batch / ranks.world, batch);
  // Started by mpirun: rank 0's weights everywhere, gradients averaged over the processes.
  const std::unique_ptr<train::DataParallel> parallel = data_parallel(*model);
  train::Trainer trainer(
      *model, opt, [&](const Var& output, const Tensor& y) { return batch_loss(o.loss, output, y, classes); },
      {.epochs = o.epochs});
  if (classes > 0) {
    trainer.add_metric("accuracy", [](const Tensor& output, const Tensor& y) {
      return metrics::accuracy(predicted_classes(output), y);
    });
  } else {
    trainer.add_metric("mae", metrics::mean_absolute_error);
    trainer.add_metric("r2", metrics::r2_score);
  }
  if (parallel) trainer.set_data_parallel(*parallel);
  const Record record = run_record(o, choice.settings, d);
  for (const auto& [name, value] : record)
    if (name == "data contents") check_same_on_every_rank(value, "data (its contents differ)");
  // Where to start: the beginning, or a checkpoint's epoch and batch (its run must be this one).
  if (!o.resume.empty()) {
    const safetensors::File file = safetensors::load(o.resume);
    std::vector<Tensor> contents;
    for (const auto& [name, t] : file.tensors) contents.push_back(t);
    check_same_on_every_rank(train::fingerprint(contents), "--resume checkpoints (their contents differ)");
    check_resume(o.resume, file.metadata, record);
    trainer.load_checkpoint(file);
    const train::Position& p = trainer.position();
    if (p.epoch > o.epochs)
      throw ValueError(p.batch == 0
                           ? fmt::format("--resume {}: its run ended with epoch {}: give --epochs above {} "
                                         "to go on",
                                         o.resume, p.epoch - 1, p.epoch - 1)
                           : fmt::format("--resume {}: it stopped in epoch {}, past --epochs {}", o.resume,
                                         p.epoch, o.epochs));
    fmt::print(out, "resuming from {}: epoch {}, batch {}, step {}\n", o.resume, p.epoch, p.batch + 1,
               p.step);
  }
  std::map<std::string, std::string> checkpoint_meta = record_metadata(record);
  for (const auto& [key, value] : model_metadata(o, d, standardizer)) checkpoint_meta[key] = value;

  train::StopOnSignal interrupt;
  StopAfter stop_after(o.stop_after);
  InjectFault fault(o.test_fault, ranks.rank == ranks.world - 1);
  std::optional<DetectAnomaly> anomaly;
  if (o.detect_anomaly) anomaly.emplace();
  const bool bar_on =
      o.progress == "bar" || (o.progress == "auto" && &out == &std::cout && train::stdout_is_terminal());
  train::ProgressLogger progress(out, {.bar = bar_on, .width = bar_on ? train::terminal_width() : 80});
  train::History history; // for --plots
  std::optional<train::JsonLinesLogger> logger;
  if (log)
    logger.emplace(
        [&](std::string_view line) { log->write(line); },
        train::JsonLinesOptions{.format =
                                    [&](const train::Logs& fields) {
                                      // How the run was made: 1 process, or mpirun's N.
                                      train::Logs line = fields;
                                      line.emplace_back("world_size", ranks.world);
                                      return json_line(line);
                                    },
                                .on_error =
                                    [&](const std::string& e) {
                                      progress.clear();
                                      fmt::print(err,
                                                 "gradgraph train: --log {}: {}; training goes on without "
                                                 "the log\n",
                                                 o.log, e);
                                    }});
  trainer.add_callback(interrupt)
      .add_callback(stop_after)
      .add_callback(fault)
      .add_callback(progress)
      .add_callback(history);
  if (logger) trainer.add_callback(*logger);
  // Last: it saves the others' state as their epoch ends left it. A signal's checkpoint is below.
  std::optional<train::ModelCheckpoint> every;
  if (o.checkpoint_every > 0)
    every.emplace(train::CheckpointOptions{
        .path = o.checkpoint, .every_epochs = o.checkpoint_every, .on_stop = false, .metadata = [&] {
          return checkpoint_meta;
        }});
  if (every) trainer.add_callback(*every);

  train::FitResult result;
  try {
    result = trainer.fit(loader, d.test.x, d.test.y);
  } catch (const train::DivergedError& e) {
    progress.clear();
    if (writer) fmt::print(err, "gradgraph train: {}; nothing was saved as a model\n", e.what());
    return diverged;
  }
  int code = ok;
  std::vector<std::string> failures; // of secondary outputs, reported once the model is safe
  if (result.reason == train::StopReason::signal) {
    // The checkpoint first: it is what the run has to show.
    const train::SavedCheckpoint s =
        train::save_checkpoint_with_fallback(trainer, o.checkpoint, checkpoint_meta);
    if (!s.failure.empty()) failures.push_back(s.failure);
    fmt::print(out, "stopped after step {}: saved {} (continue with --resume {})\n", result.position.step,
               s.path, s.path);
    code = interrupt.signal() != 0 ? 128 + interrupt.signal() : interrupted;
  } else if (!o.save.empty() && writer) {
    try {
      nn::save(*model, o.save, model_metadata(o, d, standardizer));
      fmt::print(out, "saved {}\n", o.save);
    } catch (const IOError& e) {
      rescue(trainer, o, e.what(), checkpoint_meta, err);
      code = io_error;
    }
  }
  if (log && (!logger || logger->error().empty())) {
    try {
      log->commit();
    } catch (const IOError& e) {
      failures.emplace_back(e.what());
    }
  } else if (logger && !logger->error().empty()) {
    failures.push_back(fmt::format("--log {}: {}", o.log, logger->error()));
  }
  if (!o.plots.empty() && writer && result.reason != train::StopReason::signal) {
    try {
      fmt::print(out, "plots: {}\n", write_plots(o, d, history, *model, dtype));
    } catch (const Error& e) {
      failures.emplace_back(e.what());
    }
  }
  for (const std::string& f : failures) fmt::print(err, "gradgraph train: {}\n", f);
  if (!failures.empty() && code == ok) code = io_error;
  return code;
}

} // namespace

int run_train(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  return run_on_every_rank("gradgraph train", [&] { return train(args, out, err); });
}

} // namespace gg::cli
