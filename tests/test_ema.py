"""The EMA generator and the fake-batch reuse: what they change in training, and what not."""

import io

import pandas as pd
import pytest
import torch

# the tiny pair of the resume tests: BatchNorm (buffers) and Dropout (the global RNG)
from test_resume import TinyD, TinyG  # noqa: E402
from torch import nn

from ganbench import registry
from ganbench.cli import main
from ganbench.ema import ema_of, ready_to_sample
from ganbench.trainer import TrainConfig, train


def tiny(loss_name="minimax", steps=8, ema_decay=0.0, reuse_fake=False, resume=None, saved=None):
    torch.manual_seed(0)
    G, D = TinyG(), TinyD()
    loss = registry.get_loss(loss_name).factory()
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(5))
    data_rng = torch.Generator().manual_seed(0)
    ema = ema_of(G, ema_decay) if ema_decay else None

    def keep(state):
        buf = io.BytesIO()
        torch.save(state, buf)
        saved.append(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))

    config = TrainConfig(
        steps=steps,
        batch_size=8,
        seed=0,
        hp=loss.defaults,
        log_every=2,
        warmup=1,
        progress=False,
        checkpoint_every=4,
        reuse_fake=reuse_fake,
    )
    result = train(
        G,
        D,
        loss,
        lambda: data[torch.randint(0, 64, (8,), generator=data_rng)],
        config,
        data_rng=data_rng,
        resume=resume,
        checkpoint=keep if saved is not None else None,
        ema=ema,
    )
    return G, ema, result


def test_ema_warms_up_then_averages_with_its_decay():
    G = nn.Linear(1, 1, bias=False)
    ema = ema_of(G, 0.9)
    nn.init.constant_(G.weight, 1.0)
    ema.update_parameters(G)  # the first update copies G
    assert ema.module.weight.item() == 1.0
    nn.init.constant_(G.weight, 0.0)
    ema.update_parameters(G)  # n = 1: decay min(0.9, 2/11)
    assert ema.module.weight.item() == pytest.approx(2 / 11)
    for _ in range(200):
        ema.update_parameters(G)
    nn.init.constant_(G.weight, 1.0)
    before = ema.module.weight.item()
    ema.update_parameters(G)  # warm-up over: decay 0.9
    assert ema.module.weight.item() == pytest.approx(0.9 * before + 0.1)


def test_ema_never_feeds_back_and_costs_no_training_flops():
    G0, _, plain = tiny(ema_decay=0.0)
    G1, ema, with_ema = tiny(ema_decay=0.99)
    for a, b in zip(G0.state_dict().values(), G1.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert with_ema.gflop_per_step == plain.gflop_per_step > 0
    moved = [
        not torch.equal(a, b) for a, b in zip(G1.parameters(), ema.module.parameters(), strict=True)
    ]
    assert all(moved)  # the average lags behind G


def test_ema_resumes_exactly():
    _, whole, _ = tiny(ema_decay=0.9, steps=10)
    saved: list[dict] = []
    tiny(ema_decay=0.9, steps=10, saved=saved)
    assert "ema" in saved[0]
    _, resumed, result = tiny(ema_decay=0.9, steps=10, resume=saved[0])
    assert result.resumed_from == 4
    for a, b in zip(whole.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)


def test_ready_to_sample_recomputes_batchnorm_for_the_average_and_keeps_rngs():
    G, ema, _ = tiny(ema_decay=0.9)
    before = torch.get_rng_state()
    model = ready_to_sample(ema, torch.device("cpu"))
    assert torch.equal(torch.get_rng_state(), before)
    bn_ema, bn_g = model.net[1], G.net[1]
    assert not torch.equal(bn_ema.running_mean, bn_g.running_mean)
    again = ready_to_sample(ema, torch.device("cpu")).net[1].running_mean.clone()
    assert torch.equal(again, bn_ema.running_mean)  # fixed noise: the same statistics


def test_reuse_fake_scores_the_d_steps_fake_and_saves_a_g_forward(monkeypatch):
    from ganbench.default_plugins.losses import Minimax

    seen = {"d": [], "g": []}
    d_loss, g_loss = Minimax.d_loss, Minimax.g_loss

    def record_d(self, D, real, fake):
        seen["d"].append(fake.detach().clone())
        return d_loss(self, D, real, fake)

    def record_g(self, D, real, fake):
        seen["g"].append(fake.detach().clone())
        return g_loss(self, D, real, fake)

    monkeypatch.setattr(Minimax, "d_loss", record_d)
    monkeypatch.setattr(Minimax, "g_loss", record_g)
    _, _, reused = tiny(reuse_fake=True, steps=3)
    assert all(torch.equal(d, g) for d, g in zip(seen["d"], seen["g"], strict=True))
    seen["d"].clear(), seen["g"].clear()
    _, _, fresh = tiny(reuse_fake=False, steps=3)
    assert not any(torch.equal(d, g) for d, g in zip(seen["d"], seen["g"], strict=True))
    assert 0 < reused.gflop_per_step < fresh.gflop_per_step


FAST = ["--fid-samples", "0", "--log-every", "2"]


def run(tiny_mnist, out, *args):
    return main(["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, *args])


def test_pair_defaults_epochs_and_ema_columns(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    assert (
        run(tiny_mnist, out, "--loss", "minimax", "--generator", "dcgan-lite", "--epochs", "1") == 0
    )
    row = pd.read_csv(out / "runs.csv").iloc[0]
    G = registry.get_generator("dcgan-lite").factory()
    assert row.batch_size == G.batch_size
    assert row.steps == round(256 / G.batch_size)  # tiny_mnist has 256 training images
    assert row.ema_decay == G.ema_decay and bool(row.reuse_fake) is G.reuse_fake
    assert (out / row.samples_ema_png).is_file() and row.samples_ema_png != row.samples_png
    again = tmp_path / "again"
    args = ["--loss", "minimax", "--generator", "dcgan-lite", "--epochs", "1", "--ema-decay", "0"]
    assert run(tiny_mnist, again, *args) == 0
    other = pd.read_csv(again / "runs.csv", dtype={"config_hash": str}).iloc[0]
    assert other.ema_decay == 0 and pd.isna(other.get("samples_ema_png"))
    assert other.config_hash != str(row.config_hash)  # EMA or not: two cells


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ema-decay", "1"], "--ema-decay must be in [0, 1)"),
        (["--epochs", "0"], "--epochs must be a positive number"),
        (["--epochs", "1", "--steps", "3"], "Give the budget once: --steps 3 or --epochs 1.0"),
    ],
)
def test_bad_ema_and_epochs_are_one_line(tiny_mnist, tmp_path, capsys, args, message):
    assert run(tiny_mnist, tmp_path / "r", "--loss", "minimax", *args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1


def test_with_defaults_is_idempotent_for_an_epoch_budget(tiny_mnist):
    from ganbench.defaults import with_defaults
    from ganbench.spec import RunSpec

    spec = with_defaults(RunSpec(losses=("minimax",), epochs=2, data_dir=tiny_mnist))
    assert spec.steps == round(2 * 256 / spec.batch_size) and spec.epochs is None
    assert with_defaults(spec) == spec  # what a worker process does with the driver's spec


def test_named_budget_fills_pair_and_length_and_yields_to_the_command_line(tiny_mnist):
    import dataclasses

    from ganbench.defaults import with_defaults
    from ganbench.spec import RunSpec

    mnist = registry.get_dataset("mnist").factory()
    long = dict(mnist.budgets["long"])
    base = RunSpec(losses=("minimax",), data_dir=tiny_mnist, budget="long")
    spec = with_defaults(base)
    assert spec.generator == long["generator"] != mnist.default_model
    assert spec.steps == round(long["epochs"] * 256 / spec.batch_size)  # 256 tiny images
    assert with_defaults(spec) == spec  # a worker refills the driver's spec: nothing changes
    mine = with_defaults(dataclasses.replace(base, steps=3, generator="dcgan-lite"))
    assert (mine.steps, mine.generator) == (3, "dcgan-lite")  # the command line wins
    plain = with_defaults(dataclasses.replace(base, budget="default"))
    none = with_defaults(dataclasses.replace(base, budget=None))
    assert dataclasses.replace(plain, budget=None) == none
    lite = registry.get_generator(mnist.default_model).factory()
    assert (none.generator, none.steps) == (mnist.default_model, lite.default_steps)


def test_budget_runs_its_pair_and_an_unknown_budget_is_one_line(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", "--budget", "long", "--steps", "2") == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    assert (row.generator, row.steps) == ("dcgan-lite-lucic", 2)
    assert "budget long: dcgan-lite-lucic" in capsys.readouterr().err
    assert run(tiny_mnist, tmp_path / "r", "--loss", "minimax", "--budget", "lnog") == 2
    err = capsys.readouterr().err.strip()
    assert "Unknown --budget 'lnog' for mnist. Available: default, long." in err
    assert len(err.splitlines()) == 1
