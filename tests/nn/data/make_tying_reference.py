#!/usr/bin/python3
"""Reference numbers for weight tying: one parameter used by an Embedding and by the output
projection (as GPT ties its token embedding and its logits layer), computed with PyTorch in float64
and written as safetensors for tests/nn/test_weight_tying.cpp.

Run with Debian's PyTorch:  /usr/bin/python3 tests/nn/data/make_tying_reference.py
(writes weight_tying_reference.safetensors next to this script).

The model: logits = linear(tanh(mix(wte(tokens))), wte.weight), the loss cross_entropy(logits,
targets). Case "tied", tensors:
  p.<name>        the state dict: wte.weight [V, D], mix.weight [D, D], mix.bias [D]
  tokens, targets [N, T] token ids (as float64)
  loss            the loss
  g.<name>        its gradient with respect to every parameter (wte.weight: both uses summed)
  g_head.wte      wte.weight's gradient through the output projection alone (the embedding's
                  output detached), so the test can see both uses are counted
"""
import os

import torch
import torch.nn.functional as F

from make_safetensors_fixture import official_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)
torch.manual_seed(13)
VOCAB, DIM, N, T = 7, 4, 2, 5


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.wte = torch.nn.Embedding(VOCAB, DIM)
        self.mix = torch.nn.Linear(DIM, DIM)

    def forward(self, tokens, detach_embedding=False):
        h = self.wte(tokens)
        if detach_embedding:
            h = h.detach()
        return F.linear(torch.tanh(self.mix(h)), self.wte.weight)


def main():
    m = Tied()
    tokens = torch.randint(VOCAB, (N, T))
    targets = torch.randint(VOCAB, (N, T))
    out = {f"tied.p.{k}": v.detach().clone() for k, v in m.state_dict().items()}
    loss = F.cross_entropy(m(tokens).reshape(-1, VOCAB), targets.reshape(-1))
    loss.backward()
    for k, p in m.named_parameters():
        out[f"tied.g.{k}"] = p.grad.clone()
    m.zero_grad()
    F.cross_entropy(m(tokens, True).reshape(-1, VOCAB), targets.reshape(-1)).backward()
    out["tied.g_head.wte"] = m.wte.weight.grad.clone()
    out["tied.tokens"] = tokens.double()
    out["tied.targets"] = targets.double()
    out["tied.loss"] = loss.detach().clone()
    path = os.path.join(HERE, "weight_tying_reference.safetensors")
    with open(path, "wb") as f:
        f.write(official_bytes(out, {"tied": f"kind=tied vocab={VOCAB} dim={DIM}"}))
    print(f"{path}: {len(out)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
