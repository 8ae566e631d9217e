#!/usr/bin/python3
"""The same character-level language models and training as `gradgraph lm train`, in PyTorch, to
compare validation losses: the same data split (a word list's every stride-th word, a stream's last
10%), the same validation set, architectures, initialisation, AdamW with warmup + cosine
(LambdaLR), gradient clipping and batch sizes; only the random draws (weights, batches) differ.

  /usr/bin/python3 examples/char_lm/char_lm.py --text /usr/share/dict/american-english --mode words \
      --model gpt --steps 1000 --seed 1

prints "step N/M  train loss ...  val loss ..." lines as gradgraph does.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


def read_corpus(path, mode):
    text = open(path, encoding="utf-8", newline="").read()
    if mode == "stream":
        vocab = sorted(set(text))
        index = {c: i for i, c in enumerate(vocab)}
        tokens = [index[c] for c in text]
        cut = len(tokens) - max(2, len(tokens) // 10)
        return vocab, tokens[:cut], tokens[cut:], 0
    words = [w.strip(" \t") for w in text.replace("\r", "").split("\n")]
    words = [w for w in words if w]
    vocab = ["\n"] + sorted(set("".join(words)))
    index = {c: i for i, c in enumerate(vocab)}
    stride = max(10, (len(words) + 999) // 1000)
    train, val = [], []
    for k, w in enumerate(words):
        (val if k % stride == stride - 1 else train).append([index[c] for c in w])
    return vocab, train, val, max(len(w) for w in words)


def word_rows(words, n):
    x = torch.zeros(len(words), n, dtype=torch.long)
    y = torch.full((len(words), n), -1, dtype=torch.long)
    for r, w in enumerate(words):
        k = len(w)
        x[r, 1:k + 1] = torch.tensor(w, dtype=torch.long)
        y[r, :k] = torch.tensor(w, dtype=torch.long)
        y[r, k] = 0
    return x, y


class Bigram(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embedding = nn.Embedding(a.vocab, a.vocab)

    def forward(self, idx):
        return self.embedding(idx)


class MLP(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.vocab, self.context = a.vocab, a.context
        self.embedding = nn.Embedding(a.vocab + 1, a.embedding)
        self.mlp = nn.Sequential(nn.Linear(a.context * a.embedding, a.hidden), nn.Tanh(),
                                 nn.Linear(a.hidden, a.vocab))
        self.drop = nn.Dropout(a.dropout)

    def forward(self, idx):
        embs = []
        for _ in range(self.context):
            embs.append(self.embedding(idx))
            idx = torch.roll(idx, 1, 1)
            idx[:, 0] = self.vocab
        return self.mlp(self.drop(torch.cat(embs, -1)))


class Recurrent(nn.Module):
    def __init__(self, a):
        super().__init__()
        self.embedding = nn.Embedding(a.vocab, a.embedding)
        kind = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[a.model]
        self.rnn = kind(a.embedding, a.hidden, a.layers, batch_first=True)
        self.head = nn.Linear(a.hidden, a.vocab)
        self.drop = nn.Dropout(a.dropout)

    def forward(self, idx):
        return self.head(self.drop(self.rnn(self.drop(self.embedding(idx)))[0]))


class GPT(nn.Module):
    def __init__(self, a):
        super().__init__()
        e = a.embedding
        self.token_embedding = nn.Embedding(a.vocab, e)
        self.position_embedding = nn.Embedding(a.context, e)
        self.blocks = nn.ModuleList(
            nn.TransformerEncoderLayer(e, a.heads, 4 * e, dropout=a.dropout, activation="gelu",
                                       batch_first=True, norm_first=True) for _ in range(a.layers))
        self.norm = nn.LayerNorm(e)
        self.drop = nn.Dropout(a.dropout)
        # GPT-2's initialisation, as gradgraph's GPT.
        for p in (self.token_embedding.weight, self.position_embedding.weight):
            nn.init.normal_(p, 0, 0.02)
        for b in self.blocks:
            b.self_attn.dropout = 0.0  # gradgraph drops no attention weights
            nn.init.normal_(b.self_attn.in_proj_weight, 0, 0.02)
            nn.init.normal_(b.linear1.weight, 0, 0.02)
            for w in (b.self_attn.out_proj.weight, b.linear2.weight):
                nn.init.normal_(w, 0, 0.02 / math.sqrt(2 * a.layers))
            for bias in (b.self_attn.out_proj.bias, b.linear1.bias, b.linear2.bias):
                nn.init.zeros_(bias)

    def forward(self, idx):
        t = idx.shape[1]
        x = self.drop(self.token_embedding(idx) + self.position_embedding(torch.arange(t)))
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        for b in self.blocks:
            x = b(x, src_mask=mask)
        return F.linear(self.norm(x), self.token_embedding.weight)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--text", required=True)
    p.add_argument("--mode", default="stream", choices=["stream", "words"])
    p.add_argument("--model", default="gpt", choices=["bigram", "mlp", "rnn", "lstm", "gru", "gpt"])
    for name, default in [("layers", 2), ("heads", 4), ("embedding", 64), ("hidden", 128), ("context", 0),
                          ("batch-size", 32), ("steps", 1000), ("warmup", 100), ("eval-every", 100),
                          ("seed", 0), ("threads", 1)]:
        p.add_argument("--" + name, type=int, default=default)
    for name, default in [("lr", 1e-3), ("min-lr", -1.0), ("weight-decay", 0.01), ("dropout", 0.0),
                          ("clip", 1.0)]:
        p.add_argument("--" + name, type=float, default=default)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    if a.min_lr < 0:
        a.min_lr = a.lr / 10
    vocab, train, val, longest = read_corpus(a.text, a.mode)
    a.vocab = len(vocab)
    n = longest + 1 if a.mode == "words" else (a.context or 64)
    if a.mode == "words" and a.context < n:
        a.context = n
    a.context = a.context or n
    model = {"bigram": Bigram, "mlp": MLP, "gpt": GPT}.get(a.model, Recurrent)(a)
    opt = torch.optim.AdamW(model.parameters(), lr=a.lr, weight_decay=a.weight_decay)

    def factor(t):
        if t < a.warmup:
            return (t + 1) / a.warmup
        if t >= a.steps:
            return a.min_lr / a.lr
        progress = (t - a.warmup) / (a.steps - a.warmup)
        return (a.min_lr + 0.5 * (a.lr - a.min_lr) * (1 + math.cos(math.pi * progress))) / a.lr

    schedule = torch.optim.lr_scheduler.LambdaLR(opt, factor)
    if a.mode == "words":
        val_batches = [word_rows(val[i:i + a.batch_size], n) for i in range(0, len(val), a.batch_size)]
    else:
        windows = min((len(val) - 1) // n, max(1, 16384 // n))
        vt = torch.tensor(val)
        rows = [(vt[k * n:k * n + n], vt[k * n + 1:k * n + n + 1]) for k in range(windows)]
        val_batches = [(torch.stack([r[0] for r in rows[i:i + a.batch_size]]),
                        torch.stack([r[1] for r in rows[i:i + a.batch_size]]))
                       for i in range(0, windows, a.batch_size)]
    stream = torch.tensor(train) if a.mode == "stream" else None
    print(f"training {a.model} ({sum(q.numel() for q in model.parameters())} parameters) on {a.text}")

    def evaluate():
        model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for x, y in val_batches:
                k = int((y != -1).sum())
                total += F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-1).item() * k
                count += k
        model.train()
        return total / count

    start, tokens, loss_sum, loss_count = time.time(), 0, 0.0, 0
    for step in range(a.steps):
        if a.mode == "words":
            x, y = word_rows([train[i] for i in torch.randint(len(train), (a.batch_size,)).tolist()], n)
        else:
            at = torch.randint(len(stream) - n, (a.batch_size,))
            x = torch.stack([stream[i:i + n] for i in at.tolist()])
            y = torch.stack([stream[i + 1:i + n + 1] for i in at.tolist()])
        lr = opt.param_groups[0]["lr"]
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten(), ignore_index=-1)
        opt.zero_grad()
        loss.backward()
        if a.clip > 0:
            nn.utils.clip_grad_norm_(model.parameters(), a.clip)
        opt.step()
        schedule.step()
        tokens += int((y != -1).sum())
        loss_sum, loss_count = loss_sum + loss.item(), loss_count + 1
        if (step + 1) % a.eval_every == 0 or step + 1 == a.steps:
            speed = tokens / (time.time() - start)
            print(f"step {step + 1:>{len(str(a.steps))}}/{a.steps}  train loss {loss_sum / loss_count:.4f}  "
                  f"val loss {evaluate():.4f}  lr {lr:.3g}  {speed / 1000:.1f}k tokens/s", flush=True)
            loss_sum, loss_count = 0.0, 0


if __name__ == "__main__":
    main()
