#!/usr/bin/python3
"""Writes optim_reference.csv: PyTorch's numbers for tests/nn/test_optim.cpp.

Run with Debian's python3-torch (1.13):  /usr/bin/python3 make_optim_reference.py
Each line of the output is "key,value,value,..." (values printed with repr: exact float64).

Contents:
  - a small float64 regression model, x[8,3] -> tanh(x @ W1^T + b1) @ W2^T + b2, MSE against
    y[8,2], with its data and initial weights ("data.*", "init.*"), trained 100 steps by every
    optimizer configuration below: the loss before each step ("<config>.loss") and the final
    parameters ("<config>.W1", ...); some configurations also step a scheduler or clip gradients;
  - the same for a few configurations in float32 ("f32.<config>.*");
  - each configuration's update alone, from stored gradients ("exact.*", "f32.exact.*");
  - theta after 5 steps from theta = 1 on f = theta^2 for each optimizer's defaults ("scalar.*");
  - learning-rate schedules ("sched.*", "plateau.*") and gradient clipping ("clip.*");
  - the default option values of each optimizer's constructor ("defaults.*").

NAdam: PyTorch 1.13 computes mu_product_next = mu_product * mu * mu_next, counting mu_t twice.
PyTorch 2.0 fixed it to mu_product * mu_next, the documented algorithm, which gradgraph follows;
so this script replaces torch.optim.nadam._single_tensor_nadam by a copy of 1.13's with that one
line fixed (fixed_single_tensor_nadam below).

The float64 runs set torch's default dtype to float64, so the optimizers' scalar state tensors
(step, NAdam's mu_product) are float64 as well, as PyTorch >= 2.1 makes them for float64 defaults.
"""
import importlib
import inspect
import math
import os

import torch
import torch.nn.functional as F
from torch.nn.utils import clip_grad_norm_, clip_grad_value_

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "optim_reference.csv")
STEPS = 100


def fixed_single_tensor_nadam(params, grads, exp_avgs, exp_avg_sqs, mu_products, state_steps, *, beta1,
                              beta2, lr, weight_decay, momentum_decay, eps):
    # torch 1.13's _single_tensor_nadam, with mu_product_next fixed as in PyTorch 2.0.
    for i, param in enumerate(params):
        grad = grads[i]
        exp_avg = exp_avgs[i]
        exp_avg_sq = exp_avg_sqs[i]
        mu_product = mu_products[i]
        step_t = state_steps[i]
        step_t += 1
        step = step_t.item()
        bias_correction2 = 1 - beta2 ** step
        if weight_decay != 0:
            grad = grad.add(param, alpha=weight_decay)
        mu = beta1 * (1. - 0.5 * (0.96 ** (step * momentum_decay)))
        mu_next = beta1 * (1. - 0.5 * (0.96 ** ((step + 1) * momentum_decay)))
        mu_product *= mu
        mu_product_next = mu_product * mu_next  # 1.13: mu_product * mu * mu_next
        exp_avg.mul_(beta1).add_(grad, alpha=1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        denom = exp_avg_sq.div(bias_correction2).sqrt().add_(eps)
        param.addcdiv_(grad, denom, value=-lr * (1. - mu) / (1. - mu_product.item()))
        param.addcdiv_(exp_avg, denom, value=-lr * mu_next / (1. - mu_product_next.item()))


# torch.optim deletes its submodule names; the module object is still importable.
importlib.import_module("torch.optim.nadam")._single_tensor_nadam = fixed_single_tensor_nadam

O = torch.optim
S = torch.optim.lr_scheduler

# name, optimizer class, options, extra (scheduler or clipping applied around each step).
# test_optim.cpp builds the same configurations under the same names.
CONFIGS = [
    ("gd", O.SGD, dict(lr=0.1), None),  # gradgraph's GD is SGD without options
    ("sgd", O.SGD, dict(lr=0.1), None),
    ("sgd_momentum", O.SGD, dict(lr=0.05, momentum=0.9), None),
    ("sgd_dampening", O.SGD, dict(lr=0.05, momentum=0.9, dampening=0.3), None),
    ("sgd_nesterov", O.SGD, dict(lr=0.05, momentum=0.9, nesterov=True), None),
    ("sgd_weight_decay", O.SGD, dict(lr=0.1, weight_decay=0.05), None),
    ("sgd_all", O.SGD, dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.02), None),
    # RMSprop's steps are nearly sign(g)·lr: at its default lr 1e-2, or with alpha 0.9 and eps 1e-6,
    # this model's trajectory is chaotic after ~60 steps (scaling the initial weights by 1 + 1e-15
    # changes PyTorch's own losses by 1e-9 and 1e-3), so no other implementation could agree to
    # 1e-9. These settings keep every trajectory stable (the same test gives ~2e-15).
    ("rmsprop", O.RMSprop, dict(lr=0.003), None),
    ("rmsprop_centered", O.RMSprop, dict(lr=0.003, centered=True), None),
    ("rmsprop_momentum", O.RMSprop, dict(lr=0.005, momentum=0.9), None),
    ("rmsprop_weight_decay", O.RMSprop, dict(lr=0.003, weight_decay=0.1, alpha=0.95, eps=1e-4), None),
    ("rmsprop_all", O.RMSprop, dict(lr=0.003, alpha=0.95, eps=1e-7, momentum=0.5, centered=True,
                                    weight_decay=0.01), None),
    ("adam", O.Adam, dict(lr=0.01), None),
    ("adam_defaults", O.Adam, dict(), None),
    ("adam_amsgrad", O.Adam, dict(lr=0.01, amsgrad=True), None),
    ("adam_weight_decay", O.Adam, dict(lr=0.01, weight_decay=0.1, betas=(0.8, 0.99), eps=1e-6), None),
    ("adamw", O.AdamW, dict(lr=0.01), None),
    ("adamw_amsgrad", O.AdamW, dict(lr=0.01, weight_decay=0.1, amsgrad=True, betas=(0.85, 0.995)), None),
    ("adagrad", O.Adagrad, dict(lr=0.1), None),
    ("adagrad_decay", O.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1, eps=1e-8), None),
    ("adagrad_weight_decay", O.Adagrad, dict(lr=0.05, weight_decay=0.1), None),
    ("adadelta", O.Adadelta, dict(), None),
    ("adadelta_options", O.Adadelta, dict(lr=0.5, rho=0.95, eps=1e-5, weight_decay=0.01), None),
    ("nadam", O.NAdam, dict(lr=0.01), None),
    ("nadam_defaults", O.NAdam, dict(), None),
    ("nadam_options", O.NAdam, dict(lr=0.01, betas=(0.85, 0.99), eps=1e-6, weight_decay=0.01,
                                    momentum_decay=0.01), None),
    ("sgd_steplr", O.SGD, dict(lr=0.1, momentum=0.9), ("step", 10, 0.7)),
    ("adam_cosine", O.Adam, dict(lr=0.02), ("cosine", 30, 1e-3)),
    ("sgd_plateau", O.SGD, dict(lr=0.2, momentum=0.5), ("plateau",)),
    ("adam_clip_norm", O.Adam, dict(lr=0.02), ("clip_norm", 0.05)),
    ("sgd_clip_value", O.SGD, dict(lr=0.1, momentum=0.9), ("clip_value", 0.02)),
]
F32_CONFIGS = ["sgd_momentum", "rmsprop_all", "adam", "adamw_amsgrad", "adagrad_decay", "adadelta_options",
               "nadam_options"]

lines = []


def put(key, values):
    if isinstance(values, torch.Tensor):
        values = values.detach().double().flatten().tolist()
    lines.append(key + "," + ",".join(repr(float(v)) for v in values))


def model_data():
    g = torch.Generator().manual_seed(20240611)

    def u(*shape, a=1.0):
        return (torch.rand(*shape, generator=g, dtype=torch.float64) * 2 - 1) * a

    x = u(8, 3, a=1.5)
    y = u(8, 2)
    init = dict(W1=u(5, 3, a=0.8), b1=u(5, a=0.3), W2=u(2, 5, a=0.8), b2=u(2, a=0.3))
    return x, y, init


def train(name, cls, opts, extra, dtype):
    x, y, init = model_data()
    x, y = x.to(dtype), y.to(dtype)
    params = {k: v.to(dtype).clone().requires_grad_(True) for k, v in init.items()}
    opt = cls(list(params.values()), **opts)
    sched = None
    if extra and extra[0] == "step":
        sched = S.StepLR(opt, step_size=extra[1], gamma=extra[2])
    elif extra and extra[0] == "cosine":
        sched = S.CosineAnnealingLR(opt, T_max=extra[1], eta_min=extra[2])
    elif extra and extra[0] == "plateau":
        sched = S.ReduceLROnPlateau(opt, factor=0.5, patience=2, threshold=0.02)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        h = torch.tanh(x @ params["W1"].T + params["b1"])
        out = h @ params["W2"].T + params["b2"]
        loss = F.mse_loss(out, y)
        loss.backward()
        losses.append(loss.item())
        if extra and extra[0] == "clip_norm":
            clip_grad_norm_(list(params.values()), extra[1])
        elif extra and extra[0] == "clip_value":
            clip_grad_value_(list(params.values()), extra[1])
        opt.step()
        if isinstance(sched, S.ReduceLROnPlateau):
            sched.step(loss.item())
        elif sched is not None:
            sched.step()
    prefix = name if dtype == torch.float64 else "f32." + name
    put(prefix + ".loss", losses)
    for k, v in params.items():
        put(prefix + "." + k, v)


def exact_runs(dtype):
    # The update arithmetic alone: two parameters (shapes [7] and [2, 3]) given the same 20 stored
    # gradients by every configuration; the final parameters should agree to the last bit.
    g = torch.Generator().manual_seed(4242)
    init = [torch.rand(7, generator=g, dtype=torch.float64) * 2 - 1,
            torch.rand(2, 3, generator=g, dtype=torch.float64) * 2 - 1]
    grads = [[(torch.rand(p.shape, generator=g, dtype=torch.float64) * 2 - 1) * 0.5 for p in init]
             for _ in range(20)]
    prefix = "exact" if dtype == torch.float64 else "f32.exact"
    if dtype == torch.float64:
        put("exact.init", torch.cat([p.flatten() for p in init]))
        put("exact.grads", torch.cat([q.flatten() for step in grads for q in step]))
    for name, cls, opts, extra in CONFIGS:
        if extra is not None:
            continue
        ps = [p.to(dtype).clone().requires_grad_(True) for p in init]
        opt = cls(ps, **opts)
        for step in grads:
            for p, q in zip(ps, step):
                p.grad = q.to(dtype).clone()
            opt.step()
        put(prefix + "." + name, torch.cat([p.detach().flatten() for p in ps]))


def scalar_runs():
    # theta after each of 5 steps from theta = 1 on f = theta^2, each optimizer's defaults.
    runs = [("sgd", O.SGD, dict(lr=0.1)), ("sgd_momentum", O.SGD, dict(lr=0.1, momentum=0.9)),
            ("rmsprop", O.RMSprop, {}), ("adam", O.Adam, {}), ("adamw", O.AdamW, {}),
            ("adagrad", O.Adagrad, {}), ("adadelta", O.Adadelta, {}), ("nadam", O.NAdam, {})]
    for name, cls, opts in runs:
        theta = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
        opt = cls([theta], **opts)
        seq = []
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            (theta * theta).backward()
            opt.step()
            seq.append(theta.item())
        put("scalar." + name, seq)


def schedules():
    def opt():
        return O.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)

    def run(name, make, n):
        o = opt()
        s = make(o)
        seq = [s.get_last_lr()[0]]
        for _ in range(n):
            o.step()
            s.step()
            seq.append(s.get_last_lr()[0])
        put("sched." + name, seq)

    run("step", lambda o: S.StepLR(o, step_size=3, gamma=0.5), 20)
    run("step_default_gamma", lambda o: S.StepLR(o, step_size=2), 10)
    run("exponential", lambda o: S.ExponentialLR(o, gamma=0.9), 30)
    run("cosine", lambda o: S.CosineAnnealingLR(o, T_max=10, eta_min=0.001), 45)
    run("cosine_default", lambda o: S.CosineAnnealingLR(o, T_max=7), 30)

    g = torch.Generator().manual_seed(7)
    metrics = [1.0 / (1 + 0.3 * i) + 0.05 * float(torch.rand(1, generator=g)) for i in range(12)]
    metrics += [metrics[-1] + 0.01 * float(torch.rand(1, generator=g)) for _ in range(28)]
    metrics[20] = 0.2  # a sudden improvement
    put("plateau.metrics", metrics)
    plateaus = [
        ("min_rel", dict(patience=2)),
        ("min_abs", dict(threshold_mode="abs", threshold=0.01, patience=1, factor=0.3)),
        ("max_rel", dict(mode="max", patience=3, factor=0.5, cooldown=1)),
        ("max_abs_cooldown", dict(mode="max", threshold_mode="abs", threshold=0.05, factor=0.5, patience=1,
                                  cooldown=2, min_lr=0.02)),
        ("eps", dict(factor=0.5, patience=0, min_lr=0.0995, eps=1e-3)),
    ]
    for name, kw in plateaus:
        o = opt()
        s = S.ReduceLROnPlateau(o, **kw)
        seq = []
        for m in metrics:
            s.step(m)
            seq.append(o.param_groups[0]["lr"])
        put("plateau." + name, seq)


def clipping():
    g = torch.Generator().manual_seed(99)
    g0 = (torch.rand(3, 4, generator=g, dtype=torch.float64) * 2 - 1) * 0.8
    g1 = (torch.rand(5, generator=g, dtype=torch.float64) * 2 - 1) * 0.5
    put("clip.g0", g0)
    put("clip.g1", g1)

    def params():
        ps = [torch.zeros(3, 4, dtype=torch.float64, requires_grad=True),
              torch.zeros(5, dtype=torch.float64, requires_grad=True)]
        ps[0].grad = g0.clone()
        ps[1].grad = g1.clone()
        return ps

    for name, max_norm, norm_type in [("l2", 1.0, 2.0), ("l2_no_clip", 100.0, 2.0), ("l1", 0.5, 1.0),
                                      ("inf", 0.3, math.inf), ("l3", 0.7, 3.0)]:
        ps = params()
        total = clip_grad_norm_(ps, max_norm, norm_type)
        put("clip.norm." + name, [max_norm, norm_type, total.item()])
        put("clip.norm." + name + ".g0", ps[0].grad)
        put("clip.norm." + name + ".g1", ps[1].grad)
    ps = params()
    clip_grad_value_(ps, 0.25)
    put("clip.value.g0", ps[0].grad)
    put("clip.value.g1", ps[1].grad)


def defaults():
    # Each optimizer's and ReduceLROnPlateau's default option values, read from the signatures.
    for name, cls, fields in [
            ("SGD", O.SGD, ["momentum", "dampening", "weight_decay", "nesterov"]),
            ("RMSprop", O.RMSprop, ["lr", "alpha", "eps", "weight_decay", "momentum", "centered"]),
            ("Adam", O.Adam, ["lr", "betas", "eps", "weight_decay", "amsgrad"]),
            ("AdamW", O.AdamW, ["lr", "betas", "eps", "weight_decay", "amsgrad"]),
            ("Adagrad", O.Adagrad, ["lr", "lr_decay", "weight_decay", "initial_accumulator_value", "eps"]),
            ("Adadelta", O.Adadelta, ["lr", "rho", "eps", "weight_decay"]),
            ("NAdam", O.NAdam, ["lr", "betas", "eps", "weight_decay", "momentum_decay"]),
            ("ReduceLROnPlateau", S.ReduceLROnPlateau,
             ["factor", "patience", "threshold", "cooldown", "min_lr", "eps"])]:
        sig = inspect.signature(cls.__init__).parameters
        values = []
        for f in fields:
            d = sig[f].default
            values += list(d) if isinstance(d, tuple) else [d]
        put("defaults." + name, values)
    sig = inspect.signature(S.ReduceLROnPlateau.__init__).parameters
    assert sig["mode"].default == "min" and sig["threshold_mode"].default == "rel"
    assert inspect.signature(S.StepLR.__init__).parameters["gamma"].default == 0.1
    assert inspect.signature(S.CosineAnnealingLR.__init__).parameters["eta_min"].default == 0
    assert inspect.signature(clip_grad_norm_).parameters["norm_type"].default == 2.0


def main():
    torch.set_default_dtype(torch.float64)
    defaults()
    x, y, init = model_data()
    put("data.x", x)
    put("data.y", y)
    for k, v in init.items():
        put("init." + k, v)
    for name, cls, opts, extra in CONFIGS:
        train(name, cls, opts, extra, torch.float64)
    exact_runs(torch.float64)
    scalar_runs()
    schedules()
    clipping()
    torch.set_default_dtype(torch.float32)  # float32 scalar state, as PyTorch keeps it by default
    by_name = {c[0]: c for c in CONFIGS}
    for name in F32_CONFIGS:
        _, cls, opts, extra = by_name[name]
        train(name, cls, opts, extra, torch.float32)
    exact_runs(torch.float32)
    with open(OUT, "w") as f:
        f.write("# PyTorch %s reference numbers for tests/nn/test_optim.cpp, written by %s\n"
                % (torch.__version__, os.path.basename(__file__)))
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
