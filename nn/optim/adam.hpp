// gg::optim::Adam (optionally AMSGrad, L2 weight decay added to the gradient) and gg::optim::AdamW
// (decoupled weight decay, θ ← θ(1 − lr·λ) before the Adam step), exactly as torch.optim.
#pragma once

#include <nn/optim/optimizer.hpp>

namespace gg::optim {

class AdamOptions {
public:
  AdamOptions(double lr = 1e-3) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(Betas, betas) = {0.9, 0.999};
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 0;
  GG_OPTIM_ARG(bool, amsgrad) = false;
};

class AdamWOptions {
public:
  AdamWOptions(double lr = 1e-3) : lr_(lr) {}
  GG_OPTIM_ARG(double, lr);
  GG_OPTIM_ARG(Betas, betas) = {0.9, 0.999};
  GG_OPTIM_ARG(double, eps) = 1e-8;
  GG_OPTIM_ARG(double, weight_decay) = 1e-2;
  GG_OPTIM_ARG(bool, amsgrad) = false;
};

class Adam : public Optimizer {
public:
  /// ValueError on a negative lr, eps or weight_decay, or betas outside [0, 1).
  Adam(std::vector<Var> params, AdamOptions options = {});
  const AdamOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  AdamOptions options_;
};

class AdamW : public Optimizer {
public:
  /// ValueError on a negative lr, eps or weight_decay, or betas outside [0, 1).
  AdamW(std::vector<Var> params, AdamWOptions options = {});
  const AdamWOptions& options() const { return options_; }

protected:
  std::vector<Tensor> init_state(const Tensor& param) const override;
  void update(Tensor& param, const Tensor& grad, std::vector<Tensor>& state, bool fresh) override;

private:
  AdamWOptions options_;
};

} // namespace gg::optim
