"""Eval-mode (running statistics, ganbench) against train-mode (batch statistics of 128, PacGAN's
TF sampler) BatchNorm when sampling 25,600 stacked-MNIST images from kept Metz generators.

    python scripts/stacked_bn_mode.py RESULTS_DIR    # a stacked-mnist run's folder (generators/)

Prints, per kept generator, (modes, mode KL, confident fraction, channel FID, output std, output
mean) for each way; docs/stacked-mnist.md quotes it."""

import copy
import sys
from pathlib import Path

import torch

from ganbench import generator_files as gf
from ganbench import plugins, registry
from ganbench.datasets import EvalOptions

torch.set_num_threads(1)
plugins.load_plugins()
ds = registry.get_dataset("stacked-mnist").factory()
ds.load()
ev = ds.make_evaluator(EvalOptions())
folder = Path(sys.argv[1])
for path in sorted((folder / "generators").glob("*.pt")):
    rec = gf.load(path)
    rec["source"] = str(path)
    G, _ = gf.build(rec, torch.device("cpu"))[0]
    g = torch.Generator().manual_seed(1_000_000)
    z = torch.randn(25600, G.z_dim, generator=g)
    out = {}
    with torch.no_grad():
        G.eval()
        x_eval = torch.cat([G(z[i : i + 500]) for i in range(0, 25600, 500)])
        Gt = copy.deepcopy(G).train()
        x_train = torch.cat([Gt(z[i : i + 128]) for i in range(0, 25600, 128)])
    for name, x in (("eval", x_eval), ("train", x_train)):
        s = ev.score((x + 1) / 2)
        out[name] = (
            s["modes_covered"],
            round(s["mode_kl"], 3),
            round(s["confident_frac"], 4),
            round(s["channel_fid"], 1),
            round(float(x.std()), 3),
            round(float(x.mean()), 3),
        )
    print(path.stem[:30], out, flush=True)
