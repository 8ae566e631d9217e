// Umbrella header of gradgraph's nn library: modules and layers, losses, initialisers.
#pragma once

#include <autodiff/autodiff.hpp>
#include <nn/init.hpp>
#include <nn/layers.hpp>
#include <nn/losses.hpp>
#include <nn/module.hpp>
