// Model files: the state dict through gg::safetensors, errors naming the file.
#include <nn/safetensors.hpp>
#include <nn/serialize.hpp>

#include <fmt/format.h>

namespace gg::nn {

void save(const Module& model, const std::string& path, const std::map<std::string, std::string>& metadata) {
  safetensors::save(path, model.state_dict(), metadata);
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
