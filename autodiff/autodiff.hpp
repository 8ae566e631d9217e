// Umbrella header of gradgraph's autodiff library: tensors, the differentiable Var and its ops,
// custom operations, gradient checking, graph inspection and the warning handler.
#pragma once

#include <autodiff/error.hpp>
#include <autodiff/function.hpp>
#include <autodiff/gradcheck.hpp>
#include <autodiff/inspect.hpp>
#include <autodiff/kernel.hpp>
#include <autodiff/op.hpp>
#include <autodiff/ops.hpp>
#include <autodiff/tensor.hpp>
#include <autodiff/var.hpp>
#include <autodiff/warning.hpp>
