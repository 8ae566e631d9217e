// Umbrella header of gradgraph's nn library: modules and layers (dense, convolution, recurrent, transformer),
// character-level language models (nn::lm), losses, metrics, initialisers, optimizers, data, plotting,
// input/output, and the trainer with its callbacks.
#pragma once

#include <autodiff/autodiff.hpp>
#include <nn/data/data.hpp>
#include <nn/init.hpp>
#include <nn/io/atomic_file.hpp>
#include <nn/io/safetensors.hpp>
#include <nn/io/serialize.hpp>
#include <nn/layers.hpp>
#include <nn/lm.hpp>
#include <nn/losses.hpp>
#include <nn/metrics.hpp>
#include <nn/module.hpp>
#include <nn/optim/optim.hpp>
#include <nn/plot/plot.hpp>
#include <nn/recurrent.hpp>
#include <nn/train/callbacks.hpp>
#include <nn/train/progress.hpp>
#include <nn/train/trainer.hpp>
#include <nn/transformer.hpp>
