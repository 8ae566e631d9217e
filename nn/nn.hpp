// Umbrella header of gradgraph's nn library: modules and layers, losses, initialisers, data and metrics.
#pragma once

#include <autodiff/autodiff.hpp>
#include <nn/data.hpp>
#include <nn/init.hpp>
#include <nn/layers.hpp>
#include <nn/losses.hpp>
#include <nn/module.hpp>
#include <nn/optim/optim.hpp>
#include <nn/plot.hpp>
#include <nn/safetensors.hpp>
#include <nn/serialize.hpp>
