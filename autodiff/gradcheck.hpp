// gg::gradcheck: compares the gradients backward computes with central finite differences, and
// with the recorded (create_graph) backward, and reports the worst relative error and where.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <autodiff/var.hpp>

namespace gg {

struct GradcheckOptions {
  double eps = 1e-6;       ///< finite-difference step
  double tolerance = 1e-6; ///< largest accepted error, |analytic - numeric| / max(1, |analytic|, |numeric|)
  std::uint64_t seed = 7;  ///< seed of the random weights that project a non-scalar output to a scalar
  bool check_graph = true; ///< also compare the create_graph backward with the plain one
};

struct GradcheckResult {
  bool ok = true;
  double max_error = 0;   ///< worst error over all input elements
  std::size_t input = 0;  ///< where it occurred: input number ...
  std::int64_t index = 0; ///< ... and flat element index
  double analytic = 0, numeric = 0;
  std::string message; ///< a sentence saying the above
};

/// Checks d f(inputs) / d inputs. f may return any shape: it is reduced to sum(f * w) with fixed
/// random weights w. Inputs must be float64; 0-d inputs become scalar leaves (Var(double)), so
/// the scalar fast path is what gets checked for them.
GradcheckResult gradcheck(const std::function<Var(const std::vector<Var>&)>& f,
                          const std::vector<Tensor>& inputs, const GradcheckOptions& options = {});

} // namespace gg
