// What gradgraph train and eval share: reading a dataset (a CSV with class or value targets, or IDX
// examples with labels), the model file's metadata (layers, activation, task, feature and target
// names, standardisation), and the checks that refuse data the model was not made for.
#pragma once

#include <nn/data/data.hpp>
#include <nn/io/safetensors.hpp>
#include <nn/module.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace gg::cli {

/// How a CSV's target columns are read: as class ids (--loss cross-entropy), or as numbers that
/// decide_task turns into classes or regression targets (--loss mse).
enum class TargetKind : std::uint8_t { classes, numbers };

/// A dataset from --data-like options: IDX examples with their labels file (`labels` set), or a CSV
/// file whose targets are `targets` (none: the last column). A UsageError for an IDX file given as
/// a CSV, naming `labels_option`.
data::Dataset read_dataset(const std::string& option, const std::string& path,
                           const std::string& labels_option, const std::string& labels,
                           const std::vector<std::string>& targets, TargetKind kind, DType dtype);

/// A generated dataset by name (triangle, xor, moons, circles, spiral) as `train --dataset` makes it;
/// a ValueError naming the datasets otherwise (fashion-mnist is read, not generated).
data::Dataset generated_dataset(const std::string& name, std::int64_t samples, double noise,
                                std::uint64_t seed);

/// A fingerprint of a dataset's feature rows as read (dtype, shape, values, in file order): a model
/// records it, so that eval knows whether its data is the data the model's --split was made on.
std::string features_fingerprint(const Tensor& x);

/// For numbers read with TargetKind::numbers: whether they are class ids (one target column of
/// whole numbers from 0 and a model with more than one output: --loss mse on classes, one-hot rows;
/// or only 0s and 1s and one output: two classes, a logistic output unit against 0/1 targets) or
/// regression targets. Sets num_classes accordingly (0 for regression).
bool as_classes(data::Dataset& d, std::int64_t outputs);

/// The classes a classifier's outputs predict: the argmax of [n, k] scores, or, for one output unit
/// ([n, 1]: the logit of class 1, as the course's triangle network), class 1 where σ(output) > 0.5.
Tensor predicted_classes(const Tensor& output);

/// The number of distinct classes among class ids y.
std::int64_t distinct_classes(const Tensor& y);

/// Loads a model's weights from a file read once: a model gradgraph train saved, or the "model."
/// entries of a checkpoint. The file's tensors are released afterwards (an 800 MB model is not held
/// twice); ShapeError or ValueError naming the file when the weights do not fit the model.
void load_weights(nn::Module& model, safetensors::File& file);

/// Names as a JSON array, and back (a FormatError naming `where` when the text is not one).
std::string names_to_json(const std::vector<std::string>& names);
std::vector<std::string> names_from_json(const std::string& text, const std::string& where);

/// The metadata keys of a model file gradgraph train writes.
namespace keys {
inline constexpr const char* layers = "gradgraph.layers";
inline constexpr const char* activation = "gradgraph.activation";
inline constexpr const char* loss = "gradgraph.loss";
inline constexpr const char* task = "gradgraph.task";         ///< "classification" or "regression"
inline constexpr const char* features = "gradgraph.features"; ///< JSON array of feature column names
inline constexpr const char* targets = "gradgraph.targets";   ///< JSON array of target column names
inline constexpr const char* split = "gradgraph.split";       ///< --split's fraction ("0": none)
inline constexpr const char* seed = "gradgraph.seed";         ///< --seed, which made the split
inline constexpr const char* data = "gradgraph.data"; ///< features_fingerprint of the data, before the split
/// A generated dataset's name, --samples and --noise (eval makes the same points again).
inline constexpr const char* dataset = "gradgraph.dataset";
inline constexpr const char* samples = "gradgraph.samples";
inline constexpr const char* noise = "gradgraph.noise";
inline constexpr const char* mean = "gradgraph.standardize.mean";
inline constexpr const char* stddev = "gradgraph.standardize.std";
} // namespace keys

/// Refuses data whose feature columns are not the ones the model was trained on (by name, when
/// both have names): a ValueError saying which are missing, new, or in another order.
void check_feature_names(const std::vector<std::string>& model, const std::vector<std::string>& data,
                         const std::string& model_path, const std::string& data_path);

} // namespace gg::cli
