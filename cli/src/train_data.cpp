// Datasets and model metadata for train and eval: CSV target columns read as classes or numbers,
// the decision between --loss mse on classes and regression, names as JSON arrays, and the
// feature-name check.
#include "train_data.hpp"

#include <autodiff/autodiff.hpp>
#include <nn/data/datasets.hpp>
#include <nn/metrics.hpp>
#include <nn/train/trainer.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <set>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace gg::cli {

namespace {

/// Whether a file starts as IDX files do: two zero bytes, or gzip's 1f 8b (a CSV starts with text).
bool looks_like_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[2] = {1, 1};
  in.read(reinterpret_cast<char*>(b), 2);
  return in.gcount() == 2 && ((b[0] == 0 && b[1] == 0) || (b[0] == 0x1f && b[1] == 0x8b));
}

/// "'a', 'b' and 'c'" (the first few of them).
std::string quoted_list(const std::vector<std::string>& names) {
  std::string out;
  const std::size_t shown = std::min<std::size_t>(names.size(), 8);
  for (std::size_t i = 0; i < shown; ++i)
    out += fmt::format("{}'{}'", i == 0 ? "" : i + 1 == names.size() ? " and " : ", ", names[i]);
  if (names.size() > shown) out += fmt::format(" and {} more", names.size() - shown);
  return out;
}

} // namespace

data::Dataset read_dataset(const std::string& option, const std::string& path,
                           const std::string& labels_option, const std::string& labels,
                           const std::vector<std::string>& targets, TargetKind kind, DType dtype) {
  if (!labels.empty()) return data::load_idx_dataset(path, labels, dtype);
  if (looks_like_idx(path))
    throw UsageError(
        fmt::format("{} {}: this is an IDX (or gzip) file, not a CSV: give its labels with {} FILE", option,
                    path, labels_option));
  data::CsvOptions csv;
  csv.target = kind == TargetKind::classes ? data::Target::class_ids : data::Target::values;
  if (targets.size() == 1) csv.target_name = targets.front();
  if (targets.size() > 1) csv.target_names = targets;
  return data::read_csv(path, csv);
}

data::Dataset generated_dataset(const std::string& name, std::int64_t samples, double noise,
                                std::uint64_t seed) {
  if (name == "triangle") return data::triangle(samples, seed);
  if (name == "xor") return data::xor_dataset(samples, noise, seed);
  if (name == "moons") return data::two_moons(samples, noise, seed);
  if (name == "circles") return data::circles(samples, noise, 0.5, seed);
  if (name == "spiral") return data::spiral(samples / 3, 3, noise, seed);
  throw ValueError(
      fmt::format("--dataset '{}': use triangle, xor, moons, circles, spiral or fashion-mnist", name));
}

std::string features_fingerprint(const Tensor& x) {
  // As read: train and eval read a file with the same dtype (the model's), so no float64 copy (376 MB
  // for Fashion-MNIST) is needed.
  return train::fingerprint({x});
}

bool as_classes(data::Dataset& d, std::int64_t outputs) {
  d.num_classes = 0;
  if (d.y.rank() != 1) return false;
  // One output unit takes two classes, 0 and 1 (the unit's σ is the probability of class 1).
  const double limit = outputs == 1 ? 2 : static_cast<double>(data::max_csv_classes);
  double largest = 0;
  for (std::int64_t i = 0; i < d.y.numel(); ++i) {
    const double v = d.y.flat(i);
    if (!(v >= 0 && v == std::floor(v) && v < limit)) return false;
    largest = std::max(largest, v);
  }
  d.num_classes = outputs == 1 ? 2 : static_cast<std::int64_t>(largest) + 1;
  return true;
}

Tensor predicted_classes(const Tensor& output) {
  if (output.rank() != 2 || output.shape()[1] != 1) return metrics::class_ids(output);
  NoGrad no_grad;
  return metrics::binary_class_ids(sigmoid(Var::constant(output)).value());
}

std::int64_t distinct_classes(const Tensor& y) {
  std::set<double> seen;
  for (std::int64_t i = 0; i < y.numel() && seen.size() < 2; ++i) seen.insert(y.flat(i));
  if (seen.size() < 2) return static_cast<std::int64_t>(seen.size());
  seen.clear();
  for (std::int64_t i = 0; i < y.numel(); ++i) seen.insert(y.flat(i));
  return static_cast<std::int64_t>(seen.size());
}

void load_weights(nn::Module& model, safetensors::File& file) {
  const bool checkpoint = std::any_of(file.tensors.begin(), file.tensors.end(),
                                      [](const auto& e) { return e.first.starts_with("model."); });
  std::vector<std::pair<std::string, Tensor>> weights;
  for (auto& [name, t] : file.tensors)
    if (!checkpoint)
      weights.emplace_back(std::move(name), std::move(t));
    else if (name.starts_with("model."))
      weights.emplace_back(name.substr(6), std::move(t));
  file.tensors.clear(); // a checkpoint's optimizer state is not needed
  try {
    model.load_state_dict(weights);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", file.path, e.what()));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", file.path, e.what()));
  }
}

std::string names_to_json(const std::vector<std::string>& names) {
  return nlohmann::json(names).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::string> names_from_json(const std::string& text, const std::string& where) {
  try {
    return nlohmann::json::parse(text).get<std::vector<std::string>>();
  } catch (const nlohmann::json::exception&) {
    throw FormatError(fmt::format("{}: '{}' is not a JSON array of names", where, text));
  }
}

void check_feature_names(const std::vector<std::string>& model, const std::vector<std::string>& data,
                         const std::string& model_path, const std::string& data_path) {
  if (model.empty() || data.empty() || model == data) return;
  std::vector<std::string> missing, extra;
  for (const std::string& n : model)
    if (std::find(data.begin(), data.end(), n) == data.end()) missing.push_back(n);
  for (const std::string& n : data)
    if (std::find(model.begin(), model.end(), n) == model.end()) extra.push_back(n);
  if (missing.empty() && extra.empty())
    throw ValueError(fmt::format("{}: the feature columns are in another order than {} was trained on ({}; "
                                 "the data has {}): reorder the columns",
                                 data_path, model_path, quoted_list(model), quoted_list(data)));
  throw ValueError(fmt::format("{}: {} was trained on feature columns {}; the data {}{}{}", data_path,
                               model_path, quoted_list(model),
                               missing.empty() ? "" : "lacks " + quoted_list(missing),
                               !missing.empty() && !extra.empty() ? " and " : "",
                               extra.empty() ? "" : "has " + quoted_list(extra) + " instead"));
}

} // namespace gg::cli
