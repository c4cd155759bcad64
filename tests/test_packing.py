"""--pack K: K seeds of a cell trained as one vmapped computation give the K separate runs."""

import math

import pandas as pd
import pytest
import torch

from ganbench import registry
from ganbench.cli import main
from ganbench.losses import Loss, logistic_d_loss, non_saturating_g_loss
from ganbench.packing import train_packed
from ganbench.trainer import TrainConfig, train

FAST = ["--steps", "4", "--batch-size", "16", "--fid-samples", "0", "--log-every", "2"]
FAST += ["--ema-decay", "0"]  # packs train no EMA generator; the unpacked reruns match them
SEEDS = [0, 1]
BATCH = 4


def _models(pair: str, seed: int):
    torch.manual_seed(seed)  # as the runner does before building a cell's models
    return registry.get_generator(pair).factory(), registry.get_discriminator(pair).factory()


def _sampler(data: torch.Tensor, seed: int):
    gen = torch.Generator().manual_seed(seed)
    return lambda: data[torch.randint(0, data.shape[0], (BATCH,), generator=gen)]


def _config(loss: Loss, seed: int = 0, steps: int = 2) -> TrainConfig:
    return TrainConfig(
        steps=steps,
        batch_size=BATCH,
        seed=seed,
        hp=loss.defaults,
        log_every=1,
        warmup=1,
        progress=False,
    )


def _losses(result) -> list[float]:
    return [value for _, metric, value in result.curves if metric in ("d_loss", "g_loss")]


def _max_diff(a: torch.nn.Module, b: torch.nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    return max((sa[k].double() - sb[k].double()).abs().max().item() for k in sa)


@pytest.mark.parametrize("loss_name", ["minimax", "non-saturating", "feature-matching", "wgan"])
def test_packed_run_equals_separate_runs(float64, loss_name):
    """dcgan-mnist-bn (BatchNorm in G: per-seed running statistics), 2 steps, 2 seeds."""
    pair = "dcgan-mnist-bn"
    data = torch.rand(64, 1, 28, 28) * 2 - 1
    separate = []
    for seed in SEEDS:
        G, D = _models(pair, seed)
        loss = registry.get_loss(loss_name).factory()
        separate.append((G, D, train(G, D, loss, _sampler(data, seed), _config(loss, seed))))
    Gs, Ds = zip(*(_models(pair, s) for s in SEEDS), strict=True)
    loss = registry.get_loss(loss_name).factory()
    packed = train_packed(Gs, Ds, loss, [_sampler(data, s) for s in SEEDS], SEEDS, _config(loss))
    for k, (G, D, result) in enumerate(separate):
        assert _max_diff(G, Gs[k]) < 1e-8 and _max_diff(D, Ds[k]) < 1e-8
        assert packed[k].status == "ok" and packed[k].steps_done == 2
        assert _losses(packed[k]) == pytest.approx(_losses(result), rel=1e-9)
        assert packed[k].gflop_per_step == pytest.approx(result.gflop_per_step)
    # the seeds really are different runs
    assert _max_diff(Gs[0], Gs[1]) > 1e-3


def test_a_diverging_seed_does_not_touch_the_others(float64):
    """Seed 1 is fed NaN images: it is recorded as diverged; seeds 0 and 2 match their own
    separate runs, so nothing leaked across the pack."""
    seeds = [0, 1, 2]
    pair = "dcgan-mnist"
    data = torch.rand(64, 1, 28, 28)
    bad = torch.full_like(data, math.nan)
    loss = registry.get_loss("non-saturating").factory()
    Gs, Ds = zip(*(_models(pair, s) for s in seeds), strict=True)
    samplers = [_sampler(bad if s == 1 else data, s) for s in seeds]
    packed = train_packed(Gs, Ds, loss, samplers, seeds, _config(loss, steps=4))
    assert packed[1].status == "diverged" and packed[1].diverged_at == 1
    assert packed[1].diverged_reason == "d_loss"
    for k in (0, 2):
        G, D = _models(pair, k)
        alone = train(G, D, loss, _sampler(data, k), _config(loss, k, steps=4))
        assert packed[k].status == alone.status == "ok"
        assert _max_diff(G, Gs[k]) < 1e-8
        assert packed[k].final_g_loss == pytest.approx(alone.final_g_loss, rel=1e-9)


def test_run_with_pack_records_each_seed_and_resumes_like_any_run(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST]
    assert main([*args, "--loss", "wgan", "--seeds", "3", "--pack", "2"]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(runs["seed"]) == [0, 1, 2]
    assert (runs["status"] == "ok").all()
    assert sorted(runs["pack"]) == [1, 2, 2]  # seeds 0 and 1 as one pack, seed 2 alone
    assert (runs["train_images_per_s"] > 0).all() and (runs["gflop_per_step"] > 0).all()
    curves = pd.read_csv(out / "curves.csv")
    for run_id in runs["run_id"]:
        steps = curves[(curves.run_id == run_id) & (curves.metric == "g_loss")]["step"]
        assert list(steps) == [2, 4]
    # the same command again: every cell finished, nothing retrained
    assert main([*args, "--loss", "wgan", "--seeds", "3", "--pack", "2"]) == 0
    assert len(pd.read_csv(out / "runs.csv")) == 3
    # the packed cells are the unpacked cells: an unpacked rerun also finds them finished
    assert main([*args, "--loss", "wgan", "--seeds", "3"]) == 0
    assert len(pd.read_csv(out / "runs.csv")) == 3


class ItemLoss(Loss):
    """A loss that reads a value back to Python inside d_loss: vmap cannot batch that."""

    def d_loss(self, D, real, fake):
        real_logits = D(real)
        if real_logits.mean().item() > 1e9:
            raise AssertionError("unreachable")
        return logistic_d_loss(real_logits, D(fake))

    def g_loss(self, D, real, fake):
        return non_saturating_g_loss(D(fake))


def test_a_loss_that_cannot_be_packed_trains_its_seeds_one_at_a_time(
    tiny_mnist, tmp_path, add_plugin, capsys
):
    add_plugin("register_losses", "item-loss", ItemLoss)
    out = tmp_path / "res"
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST]
    assert main([*args, "--loss", "item-loss", "--seeds", "2", "--pack", "2"]) == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["status"]) == ["ok", "ok"]
    assert list(runs["seed"]) == [0, 1]
    assert "item-loss cannot be trained packed" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--pack", "0"], "--pack must be a whole number of at least 1, got 0"),
        (["--pack", "2", "--jobs", "2"], "--pack trains its seeds in this process"),
    ],
)
def test_bad_pack_is_one_line(tiny_mnist, tmp_path, capsys, extra, message):
    out = tmp_path / "res"
    args = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, "--loss", "wgan"]
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
