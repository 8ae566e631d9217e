#!/usr/bin/python3
"""The language models of `gradgraph lm` against PyTorch: a small GPT and a small LSTM saved by
gradgraph (lm_gpt.safetensors, lm_lstm.safetensors, float64) are loaded into the equivalent torch
modules with load_state_dict(strict=True), and their logits for a fixed input are written to
lm_reference.safetensors; tests/nn/test_lm_reference.cpp checks that gradgraph's logits equal them.

Run with Debian's PyTorch:
  /usr/bin/python3 tests/nn/data/make_lm_reference.py [build/cli/gradgraph]
Given the gradgraph program, it first (re)makes the two models by short training runs on a small
text (the commands are below), so their weights are not PyTorch's initialisation.

The torch modules are what nn/lm.hpp documents:
  GPT:  token_embedding, position_embedding, blocks.N = nn.TransformerEncoderLayer(E, heads, 4E,
        activation="gelu", batch_first=True, norm_first=True) with a causal mask, norm (LayerNorm),
        logits = F.linear(x, token_embedding.weight) (the tied output layer: no tensor of its own)
  LSTM: embedding, rnn = nn.LSTM(E, H, layers, batch_first=True), head = nn.Linear(H, V)
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

import torch
import torch.nn as nn
import torch.nn.functional as F

from make_safetensors_fixture import load_file, official_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
TEXT = ("It was the best of times, it was the worst of times, it was the age of wisdom, it was the age "
        "of foolishness, it was the epoch of belief, it was the epoch of incredulity.\n") * 4
COMMON = ["--embedding", "16", "--hidden", "16", "--heads", "4", "--layers", "2", "--context", "16",
          "--steps", "40", "--warmup", "5", "--lr", "0.01", "--batch-size", "8", "--dtype", "f64",
          "--eval-every", "40", "--seed", "1"]


def metadata(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n).decode("utf-8")).get("__metadata__", {})


class GPT(nn.Module):
    def __init__(self, vocab, context, embedding, heads, layers):
        super().__init__()
        self.token_embedding = nn.Embedding(vocab, embedding)
        self.position_embedding = nn.Embedding(context, embedding)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(embedding, heads, 4 * embedding, dropout=0.0, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(layers))
        self.norm = nn.LayerNorm(embedding)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.token_embedding(idx) + self.position_embedding(torch.arange(t))
        mask = torch.triu(torch.full((t, t), float("-inf"), dtype=x.dtype), 1)  # causal
        for block in self.blocks:
            x = block(x, src_mask=mask)
        return F.linear(self.norm(x), self.token_embedding.weight)


class LSTM(nn.Module):
    def __init__(self, vocab, embedding, hidden, layers):
        super().__init__()
        self.embedding = nn.Embedding(vocab, embedding)
        self.rnn = nn.LSTM(embedding, hidden, layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, idx):
        return self.head(self.rnn(self.embedding(idx))[0])


def torch_model(path):
    meta = metadata(path)
    get = lambda key: int(meta["gradgraph.lm." + key])
    if meta["gradgraph.lm.model"] == "gpt":
        model = GPT(get("vocab_size"), get("context"), get("embedding"), get("heads"), get("layers"))
    else:
        model = LSTM(get("vocab_size"), get("embedding"), get("hidden"), get("layers"))
    model = model.double()
    model.load_state_dict(load_file(path), strict=True)
    return model.eval(), json.loads(meta["gradgraph.lm.vocab"])["tokens"]


def main():
    if len(sys.argv) > 1:
        with tempfile.TemporaryDirectory() as tmp:
            text = os.path.join(tmp, "text.txt")
            with open(text, "w") as f:
                f.write(TEXT)
            for model in ("gpt", "lstm"):
                subprocess.run([sys.argv[1], "lm", "train", "--text", text, "--model", model, *COMMON,
                                "--save", os.path.join(HERE, f"lm_{model}.safetensors")], check=True)
    tensors, meta = [], {}
    for model in ("gpt", "lstm"):
        m, tokens = torch_model(os.path.join(HERE, f"lm_{model}.safetensors"))
        rows = ["it was the epoch", "the worst of tim"]
        x = torch.tensor([[tokens.index(ch) for ch in row] for row in rows])
        with torch.no_grad():
            logits = m(x)
        tensors += [(f"{model}.x", x.double()), (f"{model}.logits", logits)]
        meta[model] = f"lm_{model}.safetensors"
    with open(os.path.join(HERE, "lm_reference.safetensors"), "wb") as f:
        f.write(official_bytes(dict(tensors), meta))


if __name__ == "__main__":
    main()
