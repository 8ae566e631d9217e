#!/usr/bin/python3
"""Reference numbers for gradgraph's sequence layers (recurrent layers and cells, LayerNorm,
MultiheadAttention, TransformerEncoderLayer, TransformerEncoder), computed with PyTorch in float64
and written as safetensors, so that tests/nn/test_recurrent.cpp and test_transformer.cpp load each
case's weights into the equivalent gradgraph module by their state-dict names.

Run with Debian's PyTorch:  /usr/bin/python3 tests/nn/data/make_seq_reference.py
(writes recurrent_reference.safetensors and transformer_reference.safetensors next to this script).

Each case is one entry of the file's metadata: name -> "kind=lstm input=2 hidden=3 ..." (its
options), and tensors named <case>.<what>:
  p.<name>       the module's state dict (PyTorch's initialisation from a fixed seed)
  x, h0, c0      input and initial states (h0/c0 only for cases with initial=1)
  y, h_n, c_n    output and final states (cells: y is h', c_n is c')
  r_y, r_h, r_c  random weights of the loss sum(y * r_y) + sum(h_n * r_h) + sum(c_n * r_c)
  g.<name>       the loss's gradient with respect to x, h0, c0 and every parameter
Cases with train=1 run in training mode with dropout=1 between layers (deterministic: the next layer
sees zeros), the others in eval mode.
"""
import os

import torch

from make_safetensors_fixture import official_bytes

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)
gen = torch.Generator().manual_seed(2024)


def rnd(*shape):
    return torch.randn(*shape, generator=gen)


LAYERS = {"rnn_tanh": torch.nn.RNN, "rnn_relu": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
CELLS = {"rnn_tanh_cell": torch.nn.RNNCell, "rnn_relu_cell": torch.nn.RNNCell, "lstm_cell": torch.nn.LSTMCell,
         "gru_cell": torch.nn.GRUCell}

INPUT, HIDDEN, STEPS, BATCH = 2, 3, 4, 2


def case(kind, num_layers=1, bias=1, batch_first=0, bidirectional=0, train=0, initial=0, unbatched=0):
    return dict(kind=kind, input=INPUT, hidden=HIDDEN, num_layers=num_layers, bias=bias,
                batch_first=batch_first, dropout=1 if train else 0, bidirectional=bidirectional, train=train,
                initial=initial, unbatched=unbatched, steps=STEPS, batch=BATCH)


CASES = {}
for kind in ("rnn_tanh", "rnn_relu", "lstm", "gru"):
    CASES[f"{kind}_bf_nobias"] = case(kind, batch_first=1, bias=0)
    CASES[f"{kind}_2l_bi_h0"] = case(kind, num_layers=2, bidirectional=1, initial=1)
    CASES[f"{kind}_unbatched_bi_h0"] = case(kind, bidirectional=1, initial=1, unbatched=1)
    CASES[f"{kind}_2l_dropout_train"] = case(kind, num_layers=2, train=1, initial=1)
    CASES[f"{kind}_cell"] = case(kind + "_cell")
    CASES[f"{kind}_cell_unbatched_nobias_h0"] = case(kind + "_cell", bias=0, initial=1, unbatched=1)


def make_module(c):
    torch.manual_seed(7)
    kind = c["kind"]
    extra = {}
    if kind.startswith("rnn_"):
        extra["nonlinearity"] = "relu" if kind.startswith("rnn_relu") else "tanh"
    if kind in CELLS:
        return CELLS[kind](c["input"], c["hidden"], bias=bool(c["bias"]), **extra)
    return LAYERS[kind](c["input"], c["hidden"], num_layers=c["num_layers"], bias=bool(c["bias"]),
                        batch_first=bool(c["batch_first"]), dropout=float(c["dropout"]),
                        bidirectional=bool(c["bidirectional"]), **extra)


def run_case(name, c, out):
    m = make_module(c)
    m.train(bool(c["train"]))
    cell = c["kind"] in CELLS
    lstm = c["kind"].startswith("lstm")
    dirs = 2 if c["bidirectional"] else 1
    if cell:
        x_shape = (c["input"],) if c["unbatched"] else (c["batch"], c["input"])
        s_shape = (c["hidden"],) if c["unbatched"] else (c["batch"], c["hidden"])
    else:
        if c["unbatched"]:
            x_shape = (c["steps"], c["input"])
        elif c["batch_first"]:
            x_shape = (c["batch"], c["steps"], c["input"])
        else:
            x_shape = (c["steps"], c["batch"], c["input"])
        stacked = c["num_layers"] * dirs
        s_shape = (stacked, c["hidden"]) if c["unbatched"] else (stacked, c["batch"], c["hidden"])
    x = rnd(*x_shape).requires_grad_()
    leaves = {"x": x}
    state = None
    if c["initial"]:
        h0 = rnd(*s_shape).requires_grad_()
        leaves["h0"] = h0
        state = h0
        if lstm:
            c0 = rnd(*s_shape).requires_grad_()
            leaves["c0"] = c0
            state = (h0, c0)
    if cell:
        res = m(x, state)
        if lstm:
            y, h_n, c_n = res[0], res[0], res[1]
        else:
            y, h_n, c_n = res, res, None
        results = {"y": y} if not lstm else {"y": y, "c_n": c_n}
    else:
        y, hs = m(x, state)
        h_n, c_n = (hs[0], hs[1]) if lstm else (hs, None)
        results = {"y": y, "h_n": h_n}
        if lstm:
            results["c_n"] = c_n
    for k, v in m.state_dict().items():
        out[f"{name}.p.{k}"] = v.detach().clone()
    for k, v in leaves.items():
        out[f"{name}.{k}"] = v.detach().clone()
    loss = 0
    for k, v in results.items():
        r = rnd(*v.shape)
        out[f"{name}.{k}"] = v.detach().clone()
        out[f"{name}.r_{k[0]}"] = r
        loss = loss + (v * r).sum()
    loss.backward()
    for k, v in leaves.items():
        out[f"{name}.g.{k}"] = v.grad.clone()
    for k, p in m.named_parameters():
        out[f"{name}.g.{k}"] = p.grad.clone()
    return describe(c)


def describe(c):
    return " ".join(f"{k}={v}" for k, v in c.items())


def layer_norm_cases(out, metadata):
    """LayerNorm: loss sum(y * r_y); weight and bias random (PyTorch starts them at ones and zeros)."""
    for name, shape, x_shape, eps, affine in [("ln_last", [4], (2, 3, 4), 1e-5, 1),
                                              ("ln_two_dims", [3, 4], (2, 3, 4), 1e-3, 1),
                                              ("ln_no_affine", [5], (3, 5), 1e-5, 0),
                                              ("ln_unbatched", [2, 3], (2, 3), 1e-5, 1)]:
        m = torch.nn.LayerNorm(shape, eps=eps, elementwise_affine=bool(affine))
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(rnd(*p.shape))
        x = rnd(*x_shape).requires_grad_()
        y = m(x)
        r = rnd(*y.shape)
        (y * r).sum().backward()
        metadata[name] = describe(dict(kind="layer_norm", shape=",".join(map(str, shape)), eps=eps, affine=affine))
        for k, v in m.state_dict().items():
            out[f"{name}.p.{k}"] = v.detach().clone()
        out[f"{name}.x"], out[f"{name}.y"], out[f"{name}.r_y"] = x.detach().clone(), y.detach().clone(), r
        out[f"{name}.g.x"] = x.grad.clone()
        for k, p in m.named_parameters():
            out[f"{name}.g.{k}"] = p.grad.clone()


def attention_cases(out, metadata):
    """MultiheadAttention (E=4, 2 heads, L=3, S=5, N=2): loss sum(y * r_y) + sum(w * r_w) over the output
    y and the attention weights w; weights and biases random (PyTorch starts the biases at zero)."""
    E, H, L, S, N = 4, 2, 3, 5, 2
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    pad = torch.zeros(N, S, dtype=torch.bool)
    pad[0, 3:] = True
    pad[1, 4] = True
    for name, c in {
        "mha_self": dict(self=1),
        "mha_cross_bool_masks": dict(attn_mask="bool2d", key_padding_mask="bool"),
        "mha_batch_first_float3d_nobias": dict(batch_first=1, bias=0, attn_mask="float3d"),
        "mha_causal_per_head": dict(self=1, is_causal=1, average=0),
        "mha_unbatched_kpm": dict(key_padding_mask="bool", unbatched=1),
        "mha_float_kpm": dict(key_padding_mask="float"),
        "mha_dropout_train": dict(dropout=1.0, train=1),
    }.items():
        c = dict(kind="mha", embed_dim=E, num_heads=H, dropout=c.get("dropout", 0), bias=c.get("bias", 1),
                 batch_first=c.get("batch_first", 0), self=c.get("self", 0), unbatched=c.get("unbatched", 0),
                 attn_mask=c.get("attn_mask", "none"), key_padding_mask=c.get("key_padding_mask", "none"),
                 is_causal=c.get("is_causal", 0), average=c.get("average", 1), train=c.get("train", 0))
        m = torch.nn.MultiheadAttention(E, H, dropout=c["dropout"], bias=bool(c["bias"]),
                                        batch_first=bool(c["batch_first"]))
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(rnd(*p.shape) * 0.5)
        m.train(bool(c["train"]))
        s = L if c["self"] else S

        def shape(rows):
            if c["unbatched"]:
                return (rows, E)
            return (N, rows, E) if c["batch_first"] else (rows, N, E)
        leaves = {}
        if c["self"]:
            x = rnd(*shape(L)).requires_grad_()
            leaves["x"] = x
            q = k = v = x
        else:
            q, k, v = (rnd(*shape(L)).requires_grad_(), rnd(*shape(S)).requires_grad_(),
                       rnd(*shape(S)).requires_grad_())
            leaves.update(query=q, key=k, value=v)
        masks = {}
        if c["attn_mask"] == "bool2d":
            masks["attn_mask"] = torch.rand(L, s, generator=gen) < 0.3
            masks["attn_mask"][:, 0] = False  # no row fully masked
        elif c["attn_mask"] == "float3d":
            masks["attn_mask"] = rnd(N * H, L, s)
        if c["is_causal"]:
            masks["attn_mask"] = causal  # PyTorch 1.13 has no is_causal: the mask it stands for
        if c["key_padding_mask"] == "bool":
            masks["key_padding_mask"] = pad[0] if c["unbatched"] else pad
        elif c["key_padding_mask"] == "float":
            masks["key_padding_mask"] = pad.to(torch.float64) * -1e9 + rnd(N, S) * 0.1
        y, w = m(q, k, v, need_weights=True, average_attn_weights=bool(c["average"]), **masks)
        r_y, r_w = rnd(*y.shape), rnd(*w.shape)
        ((y * r_y).sum() + (w * r_w).sum()).backward()
        metadata[name] = describe(c)
        for k_, t in m.state_dict().items():
            out[f"{name}.p.{k_}"] = t.detach().clone()
        for k_, t in leaves.items():
            out[f"{name}.{k_}"] = t.detach().clone()
            out[f"{name}.g.{k_}"] = t.grad.clone()
        for k_, t in masks.items():
            if not c["is_causal"]:
                out[f"{name}.{k_}"] = t
        out[f"{name}.y"], out[f"{name}.w"] = y.detach().clone(), w.detach().clone()
        out[f"{name}.r_y"], out[f"{name}.r_w"] = r_y, r_w
        for k_, p in m.named_parameters():
            out[f"{name}.g.{k_}"] = p.grad.clone()


def encoder_cases(out, metadata):
    """TransformerEncoderLayer (relu or gelu) and TransformerEncoder (d_model 4, 2 heads, feed-forward 6, L=3,
    N=2): loss sum(y * r_y); every weight random. Training mode with dropout 0 (or 1, which drops everything) keeps
    PyTorch off its inference fast path."""
    D, H, F, L, N = 4, 2, 6, 3, 2
    causal = torch.triu(torch.ones(L, L, dtype=torch.bool), diagonal=1)
    pad = torch.zeros(N, L, dtype=torch.bool)
    pad[1, 2] = True
    for name, c in {
        "enc_layer_post": dict(src_mask="float2d"),
        "enc_layer_pre_batch_first_kpm": dict(norm_first=1, batch_first=1, key_padding_mask="bool"),
        "enc_layer_causal_unbatched": dict(is_causal=1, unbatched=1),
        "enc_layer_dropout_train": dict(dropout=1.0),
        "encoder_2_layers_norm": dict(num_layers=2, final_norm=1, key_padding_mask="bool", is_causal=1),
        "enc_layer_gelu_post": dict(activation="gelu", src_mask="float2d"),
        "enc_layer_gelu_pre_batch_first_kpm": dict(activation="gelu", norm_first=1, batch_first=1,
                                                   key_padding_mask="bool"),
    }.items():
        c = dict(kind="encoder" if "num_layers" in c else "encoder_layer", d_model=D, nhead=H, dim_feedforward=F,
                 dropout=c.get("dropout", 0.0), activation=c.get("activation", "relu"), eps=1e-5,
                 batch_first=c.get("batch_first", 0),
                 norm_first=c.get("norm_first", 0), num_layers=c.get("num_layers", 1),
                 final_norm=c.get("final_norm", 0), unbatched=c.get("unbatched", 0),
                 src_mask=c.get("src_mask", "none"), key_padding_mask=c.get("key_padding_mask", "none"),
                 is_causal=c.get("is_causal", 0))
        layer = torch.nn.TransformerEncoderLayer(D, H, F, dropout=c["dropout"], activation=c["activation"],
                                                 batch_first=bool(c["batch_first"]), norm_first=bool(c["norm_first"]))
        if c["kind"] == "encoder":
            m = torch.nn.TransformerEncoder(layer, c["num_layers"], norm=torch.nn.LayerNorm(D),
                                            enable_nested_tensor=False)
        else:
            m = layer
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(rnd(*p.shape) * 0.5)
        m.train()
        x_shape = (L, D) if c["unbatched"] else ((N, L, D) if c["batch_first"] else (L, N, D))
        x = rnd(*x_shape).requires_grad_()
        masks = {}
        if c["src_mask"] == "float2d":
            masks["src_mask"] = rnd(L, L)
        if c["is_causal"]:
            masks["src_mask"] = causal  # PyTorch 1.13 has no is_causal: the mask it stands for
        if c["key_padding_mask"] == "bool":
            masks["src_key_padding_mask"] = pad
        if c["kind"] == "encoder":
            y = m(x, mask=masks.get("src_mask"), src_key_padding_mask=masks.get("src_key_padding_mask"))
        else:
            y = m(x, **masks)
        r = rnd(*y.shape)
        (y * r).sum().backward()
        metadata[name] = describe(c)
        for k, t in m.state_dict().items():
            out[f"{name}.p.{k}"] = t.detach().clone()
        out[f"{name}.x"], out[f"{name}.g.x"] = x.detach().clone(), x.grad.clone()
        if c["src_mask"] != "none" and not c["is_causal"]:
            out[f"{name}.src_mask"] = masks["src_mask"]
        if c["key_padding_mask"] != "none":
            out[f"{name}.key_padding_mask"] = pad
        out[f"{name}.y"], out[f"{name}.r_y"] = y.detach().clone(), r
        for k, p in m.named_parameters():
            out[f"{name}.g.{k}"] = p.grad.clone()


def write(file, tensors, metadata):
    path = os.path.join(HERE, file)
    with open(path, "wb") as f:
        f.write(official_bytes(tensors, metadata))
    print(f"{path}: {len(metadata)} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes")


def main():
    tensors, metadata = {}, {}
    for name, c in CASES.items():
        metadata[name] = run_case(name, c, tensors)
    write("recurrent_reference.safetensors", tensors, metadata)
    tensors, metadata = {}, {}
    layer_norm_cases(tensors, metadata)
    attention_cases(tensors, metadata)
    encoder_cases(tensors, metadata)
    write("transformer_reference.safetensors", tensors, metadata)


if __name__ == "__main__":
    main()
