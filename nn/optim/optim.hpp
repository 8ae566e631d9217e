// Umbrella header of gg::optim: the eight optimizers (GD, SGD, RMSprop, Adam, AdamW, Adagrad,
// Adadelta, NAdam), learning-rate schedulers and gradient clipping.
#pragma once

#include <nn/optim/adadelta.hpp>
#include <nn/optim/adagrad.hpp>
#include <nn/optim/adam.hpp>
#include <nn/optim/clip.hpp>
#include <nn/optim/gd.hpp>
#include <nn/optim/lr_scheduler.hpp>
#include <nn/optim/nadam.hpp>
#include <nn/optim/optimizer.hpp>
#include <nn/optim/rmsprop.hpp>
#include <nn/optim/sgd.hpp>
