"""What the autodiff reference scripts share: a tensor written as a line of text, and a case (its
inputs, its value, and the inputs' gradients of sum(value * r) for a random r), as the tests read them."""
import torch


def emit(name, t):
    """`name dim0 ... : v0 v1 ...` (row-major, repr precision)."""
    t = torch.as_tensor(t).detach().to(torch.float64)
    dims = " ".join(str(d) for d in t.shape)
    vals = " ".join(repr(float(v)) for v in t.reshape(-1))
    print(f"{name} {dims} : {vals}")


def case(name, fn, generator, weight_name="w", **inputs):
    """<name>.<input> for each input, <name>.value = fn(**inputs), <name>.<weight_name> a random r of
    its shape, and <name>.grad.<input> the gradient of sum(value * r)."""
    leaves = {k: v.clone().requires_grad_() for k, v in inputs.items()}
    for k, v in inputs.items():
        emit(f"{name}.{k}", v)
    y = fn(**leaves)
    emit(f"{name}.value", y)
    r = torch.randn(y.shape, generator=generator)
    emit(f"{name}.{weight_name}", r)
    (y * r).sum().backward()
    for k, v in leaves.items():
        emit(f"{name}.grad.{k}", v.grad)
