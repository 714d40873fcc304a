"""Golden forward/backward of the PyTorch anchor model for TestTorchGolden.

The model is ../../../../shared/anchors/train_lm.py's GPT (copied below so this script runs on its
own): vocab 256, learned positions, pre-LN blocks, fused-qkv causal attention, GELU(tanh) MLP 4x,
final LN, head tied to the token embedding. Random weights (not just the N(0, 0.02) init, so
biases and LayerNorm parameters matter), one batch, the mean cross-entropy and every gradient, in
float32. Tensor names are the PyTorch parameter names, which stages/train uses too.
  /usr/bin/python3 stages/train/testdata/make_torch_golden.py   (from the repository root; needs torch)
"""
import base64, json, math, os
import numpy as np
import torch, torch.nn as nn, torch.nn.functional as F


class Block(nn.Module):
    def __init__(s, d, H):
        super().__init__()
        s.H = H
        s.ln1, s.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        s.qkv, s.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
        s.fc, s.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)

    def forward(s, x, mask):
        B, T, d = x.shape
        q, k, v = s.qkv(s.ln1(x)).view(B, T, 3, s.H, d // s.H).permute(2, 0, 3, 1, 4)
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d // s.H))
        att = att.masked_fill(mask[:T, :T], float("-inf")).softmax(-1)
        x = x + s.proj((att @ v).transpose(1, 2).reshape(B, T, d))
        return x + s.out(F.gelu(s.fc(s.ln2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(s, d, L, H, T):
        super().__init__()
        s.tok, s.pos = nn.Embedding(256, d), nn.Embedding(T, d)
        s.blocks = nn.ModuleList([Block(d, H) for _ in range(L)])
        s.lnf = nn.LayerNorm(d)
        s.register_buffer("mask", torch.triu(torch.ones(T, T, dtype=torch.bool), 1), persistent=False)

    def forward(s, idx, tgt):
        T = idx.shape[1]
        x = s.tok(idx) + s.pos(torch.arange(T))
        for b in s.blocks:
            x = b(x, s.mask)
        logits = s.lnf(x) @ s.tok.weight.t()
        return F.cross_entropy(logits.reshape(-1, 256), tgt.reshape(-1))


def b64(t):
    return base64.b64encode(t.detach().numpy().astype("<f4").tobytes()).decode()


def main():
    cfg = dict(d=16, L=2, H=2, T=8)
    B = 3
    torch.manual_seed(0)
    m = GPT(**cfg)
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0.0, 0.3)
        for n, p in m.named_parameters():
            if n.endswith(("ln1.weight", "ln2.weight", "lnf.weight")):
                p.add_(1.0)
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.integers(0, 256, size=(B, cfg["T"] + 1)))
    loss = m(x[:, :-1], x[:, 1:])
    loss.backward()
    out = {
        "config": {"dim": cfg["d"], "layers": cfg["L"], "heads": cfg["H"], "ctx": cfg["T"], "batch": B},
        "torch": torch.__version__,
        "tokens": x.flatten().tolist(),
        "loss": loss.item(),
        "params": {n: b64(p) for n, p in m.named_parameters()},
        "grads": {n: b64(p.grad) for n, p in m.named_parameters()},
    }
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torch_golden.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: loss {loss.item():.6f}")


if __name__ == "__main__":
    main()
