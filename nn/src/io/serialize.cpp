// Model files: the state dict through gg::safetensors, errors naming the file.
#include <nn/io/safetensors.hpp>
#include <nn/io/serialize.hpp>

#include <fmt/format.h>

namespace gg::nn {

void save(const Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  safetensors::save(path, model.state_dict(), metadata);
}

void save_checkpoint(const std::string& path, const Module& model, const optim::Optimizer& optimizer,
                     const std::map<std::string, std::string>& metadata) {
  std::vector<std::pair<std::string, Tensor>> all;
  for (auto& [name, t] : model.state_dict()) all.emplace_back("model." + name, t);
  for (auto& [name, t] : optimizer.state()) all.emplace_back("optimizer." + name, t);
  safetensors::save(path, all, metadata);
}

std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model,
                                                   optim::Optimizer& optimizer) {
  safetensors::File file = safetensors::load(path);
  std::vector<std::pair<std::string, Tensor>> m, o;
  for (auto& [name, t] : file.tensors) {
    if (name.starts_with("model."))
      m.emplace_back(name.substr(6), t);
    else if (name.starts_with("optimizer."))
      o.emplace_back(name.substr(10), t);
    else
      throw FormatError(fmt::format("{}: '{}' is neither a model nor an optimizer entry", path, name));
  }
  try {
    model.load_state_dict(m);
    optimizer.load_state(o);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", path, e.what()));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", path, e.what()));
  }
  return file.metadata;
}

std::map<std::string, std::string> load(Module& model, const std::string& path) {
  safetensors::File file = safetensors::load(path);
  try {
    model.load_state_dict(file.tensors);
  } catch (const ShapeError& e) {
    throw ShapeError(fmt::format("{}: {}", path, e.what()));
  } catch (const ValueError& e) {
    throw ValueError(fmt::format("{}: {}", path, e.what()));
  }
  return file.metadata;
}

} // namespace gg::nn
