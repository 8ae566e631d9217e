// gradgraph summary and gradgraph dot: the MLP given by --layers/--activation as a table of layers
// and parameters (the course's "how many parameters?"), and as a DOT picture, one cluster a layer.
#include <cli/cli.hpp>

#include <autodiff/inspect.hpp>
#include <nn/init.hpp>
#include <nn/losses.hpp>

#include <sstream>

#include <boost/program_options.hpp>
#include <fmt/format.h>
#include <fmt/ostream.h>

#include "files.hpp"
#include "model_spec.hpp"
#include "options.hpp"

namespace gg::cli {
namespace {
namespace po = boost::program_options;

/// Most tensor entries --entries shows per node (a node's label grows with them).
constexpr int k_max_entries = 1000;

struct ModelOptions {
  std::string layers, activation;
  std::uint64_t seed = 0;
};

po::options_description model_options(ModelOptions& o) {
  po::options_description d("model");
  d.add_options()("layers", po::value(&o.layers)->required(), "sizes from input to output, e.g. 2,3,2")(
      "activation", po::value(&o.activation)->default_value("sigmoid"),
      "hidden activation: sigmoid, tanh, relu, leaky-relu")(
      "seed", number_value(&o.seed, "--seed")->default_value("0"), "seed of the initial weights");
  return d;
}

/// Parses args; returns false (after printing help to out) for --help.
bool parse(const std::vector<std::string>& args, po::options_description& desc, std::ostream& out,
           const char* usage) {
  desc.add_options()("help,h", "this help");
  po::variables_map vm;
  return parse_or_help(args, desc, usage, out, vm);
}
} // namespace

int run_summary(const std::vector<std::string>& args, std::ostream& out, std::ostream&) {
  ModelOptions o;
  po::options_description desc = model_options(o);
  if (!parse(args, desc, out,
             "usage: gradgraph summary --layers 2,3,2 [--activation sigmoid]\n"
             "Prints each layer with its output shape (for one input) and parameter count, and the total."))
    return ok;
  const auto sizes = parse_layers(o.layers);
  nn::manual_seed(o.seed);
  auto model = build_mlp(sizes, parse_activation(o.activation));
  fmt::print(out, "{}", nn::summary(*model, {1, sizes[0]}));
  return ok;
}

int run_dot(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  ModelOptions o;
  std::string path, format, rankdir;
  bool backward = false;
  int entries = DotOptions{}.max_entries;
  po::options_description desc = model_options(o);
  desc.add_options()("output,o", po::value(&path)->required(), "the DOT file to write")(
      "backward", po::bool_switch(&backward),
      "also run backward (cross-entropy against class 0; with one output unit, binary cross-entropy of its "
      "sigmoid p against class 0) and show gradients")(
      "render", po::value(&format),
      "also run Graphviz: svg or png (the picture written whole or not at all; at most 2000 nodes, about "
      "500 layers of width 1, as Graphviz takes minutes beyond; it is stopped after 30 s)")(
      "rankdir", po::value(&rankdir)->default_value("LR"),
      "layout: LR (input on the left) or TB (input on top, fits a page better)")(
      "entries", po::value(&entries)->default_value(entries),
      "tensor entries shown in each node before \"…\" (0 to 1000)");
  if (!parse(
          args, desc, out,
          "usage: gradgraph dot --layers 2,3,2 [--activation sigmoid] -o mlp.dot [--backward] [--render "
          "svg] [--rankdir TB] [--entries 4]\n"
          "Draws the model's forward graph for one input, each layer as a cluster with its parameters; one\n"
          "output unit (--layers 2,3,1) is a logistic unit, drawn with its sigmoid p on top."))
    return ok;
  if (!format.empty() && format != "svg" && format != "png")
    throw UsageError(fmt::format("--render '{}': use svg or png", format));
  check_rankdir(rankdir);
  if (entries < 0 || entries > k_max_entries)
    throw UsageError(fmt::format("--entries {}: give 0 to {}", entries, k_max_entries));
  const auto sizes = parse_layers(o.layers);
  nn::manual_seed(o.seed);
  auto model = build_mlp(sizes, parse_activation(o.activation));
  // One input with values spread over [-1, 1], so the picture shows distinct numbers.
  Tensor x = Tensor::empty({1, sizes[0]});
  for (std::int64_t i = 0; i < sizes[0]; ++i)
    x.set_flat(i,
               sizes[0] == 1 ? 0.5 : -1 + 2.0 * static_cast<double>(i) / static_cast<double>(sizes[0] - 1));
  Var root = (*model)(Var::constant(x).name("x")).name("output");
  // One output unit is a logistic unit: its sigmoid, the probability of class 1, is drawn on top.
  const bool one_unit = sizes.back() == 1;
  if (one_unit) root = sigmoid(root).name("p");
  if (backward) {
    root = (one_unit ? nn::binary_cross_entropy(root, Tensor::zeros({1, 1}))
                     : nn::cross_entropy(root, Tensor::zeros({1})))
               .name("loss");
    root.backward();
  }
  check_render_size(format, graph_stats(root).nodes);
  std::ostringstream dot;
  write_dot(dot, root, DotOptions{.rankdir = rankdir, .show_grad = backward, .max_entries = entries});
  fmt::print(out, "{}\n", save_graph("dot", path, dot.str(), format, err));
  return ok;
}

} // namespace gg::cli
