// Saving and loading models as safetensors files with PyTorch's state-dict names, shapes and
// dtypes: a file saved here loads into the equivalent torch.nn module after
// safetensors.torch.load_file, and a file saved from PyTorch loads here.
#pragma once

#include <map>
#include <string>

#include <nn/module.hpp>
#include <nn/optim/optimizer.hpp>

namespace gg::nn {

/// Writes model.state_dict() (parameters and buffers) atomically to path.
void save(const Module& model, const std::string& path,
          const std::map<std::string, std::string>& metadata = {});
/// Reads path into the model: every state-dict entry must be present with the model's shape
/// (values convert to the model's dtypes); nothing changes if anything is missing or wrong.
/// Returns the file's metadata.
std::map<std::string, std::string> load(Module& model, const std::string& path);

/// A checkpoint for resuming: the model's state dict as "model.<name>" and the optimizer's state
/// as "optimizer.<name>", in one atomically written file.
void save_checkpoint(const std::string& path, const Module& model, const optim::Optimizer& optimizer,
                     const std::map<std::string, std::string>& metadata = {});
/// Restores a checkpoint into a model and an optimizer built the same way; returns the metadata.
std::map<std::string, std::string> load_checkpoint(const std::string& path, Module& model,
                                                   optim::Optimizer& optimizer);

} // namespace gg::nn
