"""Checkpoints and resume: a resumed cell ends exactly where an uninterrupted one does (CPU)."""

import io
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from ganbench import checkpoints, plugins, registry
from ganbench.cli import main
from ganbench.default_plugins.losses import Minimax
from ganbench.hookspecs import hookimpl
from ganbench.trainer import ResumeError, TrainConfig, train

# ---- trainer level: tiny models, every RNG the trainer must restore is in play ----------------


class TinyG(nn.Module):
    """2-D points; BatchNorm (buffers) and Dropout (the global torch RNG)."""

    z_dim = 4
    output_shape = (2,)
    output_range = None

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 2)
        )

    def forward(self, z):
        return self.net(z)


class TinyD(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2))
        self.fc = nn.Linear(16, 1)

    def features(self, x):
        return self.body(x)

    def head(self, f):
        return self.fc(f).squeeze(1)

    def forward(self, x):
        return self.head(self.features(x))


def tiny_run(loss_name, steps, resume=None, saved=None, scramble=False):
    """Train the tiny pair; ``saved`` collects checkpoint states (round-tripped through bytes,
    like a file); ``scramble`` disturbs every global RNG first, as a fresh process would."""
    torch.manual_seed(11 if scramble else 0)
    np.random.seed(11 if scramble else 0)
    random.seed(11 if scramble else 0)
    G, D = TinyG(), TinyD()
    loss = registry.get_loss(loss_name).factory()
    data = torch.randn(64, 2, generator=torch.Generator().manual_seed(5))
    data_rng = torch.Generator().manual_seed(0)

    def next_batch():
        # draws from all three RNG families, so each one must come back right
        idx = torch.randint(0, 64, (8,), generator=data_rng)
        jitter = float(np.random.normal()) + random.random()
        return data[idx] + 0.01 * jitter

    def keep(state):
        buf = io.BytesIO()
        torch.save(state, buf)
        saved.append(torch.load(io.BytesIO(buf.getvalue()), weights_only=True))

    config = TrainConfig(
        steps=steps,
        batch_size=8,
        seed=0,
        hp=loss.defaults,
        log_every=3,
        warmup=1,
        progress=False,
        checkpoint_every=4,
    )
    result = train(
        G,
        D,
        loss,
        next_batch,
        config,
        data_rng=data_rng,
        resume=resume,
        checkpoint=keep if saved is not None else None,
    )
    return G, D, result


def assert_same_state(a: nn.Module, b: nn.Module):
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def losses(result):
    return [(s, m, v) for s, m, v in result.curves if m != "wall_s"]


@pytest.mark.parametrize("loss_name", ["minimax", "wgan"])
def test_resumed_training_is_bit_identical_to_uninterrupted(loss_name):
    G0, D0, whole = tiny_run(loss_name, steps=10)
    saved: list[dict] = []
    tiny_run(loss_name, steps=10, saved=saved)
    assert [s["progress"]["step"] for s in saved] == [4, 8, 10]  # every 4 steps, and the end
    G1, D1, resumed = tiny_run(loss_name, steps=10, resume=saved[0], scramble=True)
    assert resumed.resumed_from == 4 and resumed.steps_done == 10
    assert_same_state(G0, G1)
    assert_same_state(D0, D1)
    assert (
        losses(resumed) == losses(whole) and len(losses(whole)) == 4 * 3
    )  # log points 3, 6, 9, 10
    assert (resumed.final_d_loss, resumed.final_g_loss) == (whole.final_d_loss, whole.final_g_loss)
    assert resumed.gflop_per_step == whole.gflop_per_step > 0
    assert resumed.train_s > 0 and resumed.train_images_per_s > 0


def test_resuming_a_finished_state_trains_no_further():
    saved: list[dict] = []
    G0, _, whole = tiny_run("minimax", steps=6, saved=saved)
    G1, _, again = tiny_run("minimax", steps=6, resume=saved[-1], scramble=True)
    assert again.resumed_from == 6 and again.steps_done == 6
    assert_same_state(G0, G1)
    assert losses(again) == losses(whole)


def test_state_of_another_budget_is_a_resume_error():
    saved: list[dict] = []
    tiny_run("minimax", steps=6, saved=saved)
    with pytest.raises(ResumeError, match="a 6-step budget, this cell has 9"):
        tiny_run("minimax", steps=9, resume=saved[0])


# ---- checkpoint files ---------------------------------------------------------------------------


def test_checkpoint_file_that_cannot_be_used_is_reported_and_ignored(tmp_path):
    path = checkpoints.path_for(tmp_path, "abc123")
    warnings: list[str] = []
    assert checkpoints.load(path, "abc123", warnings.append) is None and warnings == []
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 not really a zip")
    assert checkpoints.load(path, "abc123", warnings.append) is None
    assert (
        warnings[-1].startswith(f"checkpoint {path} is unreadable (")
        and "starting over" in (warnings[-1])
    )
    good = {"format": 1, "config_hash": "abc123", "noise": {}, "trainer": {"progress": {"step": 3}}}
    checkpoints.save(path, {**good, "format": 99})
    assert checkpoints.load(path, "abc123", warnings.append) is None
    assert "has format 99, this ganbench reads 1; starting over" in warnings[-1]
    checkpoints.save(path, good)
    assert checkpoints.load(path, "zzz999", warnings.append) is None
    assert "belongs to cell 'abc123', not 'zzz999'" in warnings[-1]
    assert list(path.parent.iterdir()) == [path]  # saves leave no temp files behind
    killed_save, ongoing_save = path.parent / ".abc123.k1ll3d.pt", path.parent / ".abc123.n0w.pt"
    killed_save.write_bytes(b"PK half a zip")
    ongoing_save.write_bytes(b"PK half a zip")
    os.utime(killed_save, (time.time() - 3600, time.time() - 3600))
    assert checkpoints.load(path, "abc123", warnings.append)["trainer"]["progress"]["step"] == 3
    assert sorted(path.parent.iterdir()) == [ongoing_save, path]


# ---- the command: skip finished cells, retry failed ones, --fresh --------------------------------

# finished cells keep their final checkpoint here: these tests read and resume from them
FAST = ["--batch-size", "8", "--fid-samples", "0", "--log-every", "2", "--keep-checkpoints"]


def cli(tiny_mnist, out, *args, steps="4"):
    argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), "--steps", steps, *FAST]
    return main([*argv, *args])


def test_rerun_skips_finished_cells_and_fresh_appends_new_rows(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert cli(tiny_mnist, out, "--loss", "minimax", "--checkpoint-every", "2") == 0
    first = pd.read_csv(out / "runs.csv", dtype={"config_hash": str})
    (ckpt,) = (out / "checkpoints").iterdir()
    assert ckpt.name == f"{first.config_hash[0]}.pt"  # the final checkpoint is kept
    final = torch.load(ckpt, weights_only=True)
    assert final["trainer"]["progress"]["step"] == 4 and final["noise"]["grid"] == 1234
    capsys.readouterr()

    assert cli(tiny_mnist, out, "--loss", "minimax", "--loss", "wgan") == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.loss) == ["minimax", "wgan"]  # minimax skipped, only wgan trained
    err = capsys.readouterr().err
    assert f"minimax seed 0: finished earlier (run {first.run_id[0]}), skipped" in err

    assert cli(tiny_mnist, out, "--loss", "minimax", "--fresh") == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.loss) == ["minimax", "wgan", "minimax"]  # earlier row kept, new one added
    assert runs.run_id.nunique() == 3 and runs.config_hash.nunique() == 2
    assert runs.final_g_loss[2] == runs.final_g_loss[0]  # same seed, same numbers (CPU)
    assert runs.resumed_from_step[2] == 0
    summary = pd.read_csv(out / "summary.csv")
    assert summary.set_index("loss").loc["minimax", "n_runs"] == 1  # the latest attempt only


class FailsOnce(Minimax):
    """Raises during training (from its 2nd G step: its first passes the dry step before
    training) while the marker file exists (a flaky plugin)."""

    marker: Path
    calls = 0

    def g_loss(self, D, real, fake):
        self.calls += 1
        if self.marker.exists() and self.calls > 1:
            raise RuntimeError("flaky plugin")
        return super().g_loss(D, real, fake)


class Flaky:
    @hookimpl
    def register_losses(self, register):
        register("flaky", FailsOnce)


def test_error_rows_are_retried(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    FailsOnce.marker = tmp_path / "fail"
    FailsOnce.marker.touch()
    plugins.add_plugin(Flaky(), "flaky")
    assert cli(tiny_mnist, out, "--loss", "flaky") == 1  # the failed cell: exit 1
    FailsOnce.marker.unlink()
    assert cli(tiny_mnist, out, "--loss", "flaky") == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.status) == ["error", "ok"]
    assert runs.error[0] == "RuntimeError: flaky plugin"
    summary = pd.read_csv(out / "summary.csv")
    assert (summary.n_runs[0], summary.n_ok[0], summary.n_error[0]) == (1, 1, 0)


def test_corrupt_checkpoint_is_reported_and_the_cell_starts_over(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "a"
    assert cli(tiny_mnist, out, "--loss", "minimax") == 0
    ok = pd.read_csv(out / "runs.csv", dtype={"config_hash": str}).iloc[0]
    ckpt = checkpoints.path_for(out, ok.config_hash)
    (out / "runs.csv").rename(tmp_path / "old-runs.csv")  # so the cell is not "finished"
    ckpt.write_bytes(ckpt.read_bytes()[:1000])  # truncated
    assert cli(tiny_mnist, out, "--loss", "minimax") == 0
    assert f"checkpoint {ckpt} is unreadable" in capsys.readouterr().err
    again = pd.read_csv(out / "runs.csv").iloc[0]
    assert (again.status, again.resumed_from_step, again.final_g_loss) == (
        "ok",
        0,
        ok.final_g_loss,
    )


# ---- the real thing: SIGKILL a `python -m ganbench run` mid-cell, then run it again -------------

KILL_STEPS = "30"


def test_sigkill_mid_run_then_resume_matches_uninterrupted(tiny_mnist, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}  # this checkout's ganbench, not an installed one
    args = [
        sys.executable,
        "-m",
        "ganbench",
        "run",
        "--data-dir",
        str(tiny_mnist),
        "--loss",
        "non-saturating",
        "--steps",
        KILL_STEPS,
        "--batch-size",
        "4",
        "--fid-samples",
        "0",
        "--log-every",
        "5",
        "--checkpoint-every",
        "5",
        "--keep-checkpoints",
    ]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [*args, "--out", str(killed)], env=env, cwd=repo, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 120
    while not list((killed / "checkpoints").glob("[!.]*.pt")):  # not a save's temp file
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.monotonic() < deadline, "no checkpoint within 120 s"
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "runs.csv").exists()  # killed mid-cell, not after it
    (ckpt,) = (killed / "checkpoints").glob("[!.]*.pt")
    stopped_at = torch.load(ckpt, weights_only=True)["trainer"]["progress"]["step"]
    assert 5 <= stopped_at < int(KILL_STEPS)

    resumed = subprocess.run(
        [*args, "--out", str(killed)], env=env, cwd=repo, capture_output=True, text=True
    )
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming from step" in resumed.stderr
    whole = tmp_path / "whole"
    assert main([*args[3:], "--out", str(whole)]) == 0  # the same command, uninterrupted

    def final(out):
        runs = pd.read_csv(out / "runs.csv", dtype={"config_hash": str})
        (row,) = runs.itertuples()
        state = torch.load(checkpoints.path_for(out, row.config_hash), weights_only=True)
        curves = pd.read_csv(out / "curves.csv")
        curves = curves[curves.metric != "wall_s"][["step", "metric", "value"]]
        return row, state, curves.reset_index(drop=True)

    row_k, state_k, curves_k = final(killed)
    row_w, state_w, curves_w = final(whole)
    assert row_k.config_hash == row_w.config_hash
    assert row_k.resumed_from_step == stopped_at and row_w.resumed_from_step == 0
    assert (row_k.status, row_k.steps_done) == (row_w.status, row_w.steps_done) == ("ok", 30)
    assert (row_k.final_d_loss, row_k.final_g_loss) == (row_w.final_d_loss, row_w.final_g_loss)
    pd.testing.assert_frame_equal(curves_k, curves_w, check_exact=True)
    trainer_k, trainer_w = state_k["trainer"], state_w["trainer"]
    for part in ("G", "D"):
        assert trainer_k[part].keys() == trainer_w[part].keys()
        for key in trainer_k[part]:
            assert torch.equal(trainer_k[part][key], trainer_w[part][key]), (part, key)
    for part in ("opt_g", "opt_d"):
        for idx, st in trainer_w[part]["state"].items():
            for key, value in st.items():
                assert torch.equal(trainer_k[part]["state"][idx][key], value), (part, idx, key)
    assert torch.equal(
        trainer_k["rng"]["generators"]["noise"], trainer_w["rng"]["generators"]["noise"]
    )
    assert torch.equal(
        trainer_k["rng"]["generators"]["data"], trainer_w["rng"]["generators"]["data"]
    )


def test_loss_history_is_bounded_by_the_log_interval_not_the_steps(tiny_mnist, tmp_path):
    """--steps 1000000000 must not reserve 8 GB before step 1: the buffers hold one log window."""
    from ganbench.losses import Hyperparams
    from ganbench.trainer import TrainConfig, history_size

    def config(steps, log_every):
        return TrainConfig(steps=steps, batch_size=4, seed=0, hp=Hyperparams(), log_every=log_every)

    assert history_size(config(10**9, 10)) == 10 and history_size(config(3, 10)) == 3
    out = tmp_path / "res"
    assert cli(tiny_mnist, out, "--loss", "minimax", "--checkpoint-every", "3") == 0  # log every 2
    ckpt = torch.load(next((out / "checkpoints").glob("*.pt")), weights_only=True)
    assert ckpt["trainer"]["d_hist"].shape == (2,)
