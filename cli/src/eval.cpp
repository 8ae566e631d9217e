// gradgraph eval: a model saved by gradgraph train (or a checkpoint) scored on data: accuracy and
// the confusion matrix for a classifier, MSE, MAE and R² for regression. The file is read once; a
// model holding NaN or infinite weights, data with other feature columns, or more classes than the
// metrics take are refused before any scoring.
#include <cli/cli.hpp>

#include <nn/nn.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "model_spec.hpp"
#include "options.hpp"
#include "train_data.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;

/// A number written in a file's metadata; a FormatError naming the file and entry when it is not one.
double metadata_number(const std::string& text, const std::string& where) {
  double v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || !std::isfinite(v))
    throw FormatError(fmt::format("{}: '{}' is not a number", where, text));
  return v;
}

/// A whole number from 0 written in a file's metadata (a seed, a sample count).
std::uint64_t metadata_count(const std::string& text, const std::string& where) {
  std::uint64_t v = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size())
    throw FormatError(fmt::format("{}: '{}' is not a whole number", where, text));
  return v;
}

Tensor split_numbers(const std::string& s, std::int64_t n, const std::string& what) {
  std::vector<double> v;
  std::istringstream in(s);
  for (std::string item; std::getline(in, item, ',');) v.push_back(metadata_number(item, what));
  if (static_cast<std::int64_t>(v.size()) != n)
    throw FormatError(fmt::format("{}: {} numbers for {} features", what, v.size(), n));
  return Tensor(v, {n});
}

} // namespace

int run_eval(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  std::string model_path, data_path, labels, part;
  std::vector<std::string> targets;
  po::options_description desc("gradgraph eval");
  desc.add_options()("help,h",
                     "this help")("model", po::value(&model_path)->required(),
                                  "a model saved by gradgraph train --save (or a checkpoint of train)")(
      "data", po::value(&data_path),
      "a CSV file with the training data's columns, or IDX examples (with --labels); for a model of a "
      "generated dataset (train --dataset), default: the same points again")(
      "part", po::value(&part),
      "the rows to score: test (the rows a model trained with --split held out), train (the rows it "
      "trained on) or all. Default: test when the model was trained with --split on this data, else all")(
      "labels", po::value(&labels), "the IDX labels of --data")(
      "target", po::value(&targets)->composing(),
      "the CSV's target column(s) (default: those the model was trained on, else the last)");
  po::variables_map vm;
  if (!parse_or_help(
          args, desc,
          "usage: gradgraph eval --model FILE.safetensors [--data FILE] [--labels FILE] [--part test]\n\n"
          "A classifier's accuracy and confusion matrix (a model with one output unit predicts class 1\n"
          "where the sigmoid of its output is above 0.5), or a regression model's MSE, MAE and R²,\n"
          "on the data. Refused: a model whose weights are not finite, and data whose feature\n"
          "columns are not the ones the model was trained on. A model trained with --split records the\n"
          "fraction and the seed: eval scores the rows it held out unless --part says otherwise.",
          out, vm))
    return ok;
  safetensors::File file = safetensors::load(model_path); // once: the weights are moved out of it
  const auto meta = [&](const char* key) {
    const auto it = file.metadata.find(key);
    if (it == file.metadata.end())
      throw FormatError(
          fmt::format("{}: no '{}' in its metadata: was it saved by gradgraph train?", model_path, key));
    return it->second;
  };
  const auto optional_meta = [&](const char* key) {
    const auto it = file.metadata.find(key);
    return it == file.metadata.end() ? std::string() : it->second;
  };
  const std::vector<std::int64_t> sizes = parse_layers(meta(keys::layers));
  const bool regression = optional_meta(keys::task) == "regression";
  if (!regression && sizes.back() > metrics::max_classes)
    throw ValueError(fmt::format("{}: {} classes; gradgraph trains and evaluates at most {}", model_path,
                                 sizes.back(), metrics::max_classes));
  if (file.tensors.empty()) throw FormatError(fmt::format("{}: the file holds no weights", model_path));
  const DType dtype = file.tensors.front().second.dtype();
  auto model = build_mlp(sizes, parse_activation(meta(keys::activation)), dtype);
  load_weights(*model, file);
  if (const auto bad = train::first_non_finite(*model))
    throw ValueError(fmt::format("{}: '{}' holds NaN or infinite values: this is not a usable model (did its "
                                 "training diverge?)",
                                 model_path, *bad));
  if (targets.empty() && !optional_meta(keys::targets).empty())
    targets = names_from_json(optional_meta(keys::targets), model_path + ": " + keys::targets);
  data::Dataset d;
  std::string source = data_path;
  if (!data_path.empty()) {
    d = read_dataset("--data", data_path, "--labels", labels, targets,
                     regression ? TargetKind::numbers : TargetKind::classes, dtype);
  } else if (!optional_meta(keys::dataset).empty()) {
    const std::string name = meta(keys::dataset), samples = meta(keys::samples), seed = meta(keys::seed);
    d = generated_dataset(name, static_cast<std::int64_t>(metadata_count(samples, model_path)),
                          metadata_number(meta(keys::noise), model_path), metadata_count(seed, model_path));
    source = fmt::format("{} (--samples {} --seed {})", name, samples, seed);
  } else {
    throw UsageError(fmt::format("give --data FILE: {} was not trained on a generated dataset", model_path));
  }
  // The rows to score: those a --split held out, by default, when this is the data it was made on.
  const double split =
      optional_meta(keys::split).empty() ? 0 : metadata_number(meta(keys::split), model_path);
  const bool same_data = split > 0 && optional_meta(keys::data) == features_fingerprint(d.x);
  if (part.empty()) part = same_data ? "test" : "all";
  if (part != "test" && part != "train" && part != "all")
    throw UsageError(fmt::format("--part '{}': use test, train or all", part));
  if (part != "all" && !(split > 0))
    throw ValueError(
        fmt::format("--part {}: {} was trained without --split, so no rows were held out", part, model_path));
  if (part != "all" && !same_data)
    throw ValueError(fmt::format("--part {}: {} is not the data {} was split from (its features differ), so "
                                 "which rows were held out is not known: use --part all",
                                 part, source, model_path));
  if (part != "all") {
    const std::uint64_t seed = metadata_count(meta(keys::seed), model_path);
    const data::Split s = data::train_test_split(d.x, d.y, split, seed);
    d.x = part == "test" ? s.x_test : s.x_train, d.y = part == "test" ? s.y_test : s.y_train;
    source += fmt::format(", the {} rows of --split {} (seed {})", part == "test" ? "held-out" : "training",
                          split, seed);
  } else if (same_data) {
    source += ", all rows (training and held-out)";
  } else if (split > 0) {
    source += ", all rows (not the data the model's --split was made on)";
  }
  if (d.x.shape()[1] != sizes.front())
    throw ShapeError(
        fmt::format("{}: {} feature columns, but the model takes {}", source, d.x.shape()[1], sizes.front()));
  if (!optional_meta(keys::features).empty())
    check_feature_names(names_from_json(optional_meta(keys::features), model_path + ": " + keys::features),
                        d.feature_names, model_path, source);
  if (file.metadata.count(keys::mean))
    d.x = data::Standardizer(split_numbers(meta(keys::mean), sizes.front(), model_path),
                             split_numbers(meta(keys::stddev), sizes.front(), model_path))
              .transform(d.x);
  NoGrad no_grad;
  model->eval();
  const Tensor scores = (*model)(Var::constant(d.x.to(dtype))).value();
  if (regression) {
    if (scores.numel() != d.y.numel())
      throw ShapeError(fmt::format("{}: {} target columns, but the model predicts {}", source,
                                   d.y.rank() == 2 ? d.y.shape()[1] : 1, sizes.back()));
    fmt::print(out, "{}: {} examples, MSE {:.6g}, MAE {:.6g}, R² {:.4f}\n", source, d.x.shape()[0],
               metrics::mean_squared_error(scores, d.y), metrics::mean_absolute_error(scores, d.y),
               metrics::r2_score(scores, d.y));
    return ok;
  }
  // One output unit is a binary classifier: class 1 where σ(output) > 0.5.
  const std::int64_t k = std::max<std::int64_t>(sizes.back(), 2);
  const Tensor predicted = predicted_classes(scores);
  fmt::print(
      out, "{}: {} examples, accuracy {:.4f}\n\nconfusion matrix (rows: true class, columns: predicted)\n{}",
      source, d.x.shape()[0], metrics::accuracy(predicted, d.y),
      metrics::format_confusion_matrix(metrics::confusion_matrix(predicted, d.y, k), d.class_names));
  return ok;
}

} // namespace gg::cli
