"""NaN/Inf in a loss or a weight ends the cell as `diverged`; the other cells run; tables say so."""

import math

import pandas as pd
import torch

from ganbench import plugins
from ganbench.cli import main
from ganbench.default_plugins.losses import NonSaturating
from ganbench.hookspecs import hookimpl
from ganbench.views import summary_view

FAST = ["--steps", "6", "--batch-size", "8", "--fid-samples", "0", "--log-every", "2"]


class NanGLossAtStep3(NonSaturating):
    """Non-saturating, but the generator loss of the 3rd generator step is NaN."""

    def __init__(self):
        super().__init__()
        self.g_calls = 0

    def g_loss(self, D, real, fake):
        self.g_calls += 1
        loss = super().g_loss(D, real, fake)
        return loss * math.nan if self.g_calls == 3 else loss


class InfWeightAfterStep4(NonSaturating):
    """Finite losses throughout, but D's last bias becomes Inf after the 4th critic step."""

    def __init__(self):
        super().__init__()
        self.d_steps = 0

    def after_d_step(self, D):
        self.d_steps += 1
        if self.d_steps == 4:
            last = [m for m in D.modules() if isinstance(m, torch.nn.Linear)][-1]  # the logit's
            with torch.no_grad():
                last.bias.fill_(math.inf)


class Diverging:
    @hookimpl
    def register_losses(self, register):
        register("nan-g-at-3", NanGLossAtStep3)
        register("inf-weight-at-4", InfWeightAfterStep4)


def run(tiny_mnist, out, *args, steps="6"):
    plugins.add_plugin(Diverging(), "diverging")
    fast = [*FAST]
    fast[1] = steps
    return main(["run", "--data-dir", str(tiny_mnist), "--out", str(out), *fast, *args])


def test_nan_loss_ends_the_cell_as_diverged_and_the_others_run(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--loss", "nan-g-at-3", "--loss", "minimax", "--checkpoint-every", "0"]
    assert run(tiny_mnist, out, *args) == 0
    runs = pd.read_csv(out / "runs.csv")
    bad, good = runs.iloc[0], runs.iloc[1]
    assert (bad.loss, bad.status, bad.diverged_at, bad.diverged_reason) == (
        "nan-g-at-3",
        "diverged",
        3,
        "g_loss",
    )
    assert bad.steps_done == 4  # seen at the log point after step 4; training stopped there
    assert pd.isna(bad.error) and pd.isna(bad.get("samples_png"))
    assert (good.loss, good.status, good.steps_done) == ("minimax", "ok", 6)
    assert pd.isna(good.diverged_at)
    curves = pd.read_csv(out / "curves.csv")
    bad_steps = sorted(curves[curves.run_id == bad.run_id]["step"].unique())
    assert bad_steps == [2]  # the window holding the NaN is not on the curves
    assert curves["value"].map(math.isfinite).all()
    err = capsys.readouterr().err
    assert "diverged at step 3 (non-finite g_loss)" in err


def test_non_finite_weight_with_finite_losses_is_divergence(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "inf-weight-at-4", steps="4") == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    # step 4 G loss is softplus(-inf) = 0, finite: only the weight check sees the Inf bias
    assert (row.status, row.diverged_at, row.diverged_reason) == ("diverged", 4, "parameters")
    assert math.isfinite(row.final_d_loss)  # the last finite window, not a sentinel


def test_summary_table_shows_diverged_plainly(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--loss", "nan-g-at-3", "--seeds", "2", "--checkpoint-every", "0"]
    assert run(tiny_mnist, out, *args, "--defaults", "pair") == 0  # not "(untuned)" beside it
    summary = pd.read_csv(out / "summary.csv")
    row = summary[summary.loss == "nan-g-at-3"].iloc[0]
    assert (row.n_runs, row.n_ok, row.n_diverged, row.n_error) == (2, 0, 2, 0)
    assert "train_images_per_s_mean" not in summary or pd.isna(row.train_images_per_s_mean)
    table = summary_view(summary).to_string(index=False)
    header, line = table.splitlines()
    assert header.split()[:7] == ["loss", "generator", "steps", "runs", "ok", "diverged", "failed"]
    values = line.split()
    assert values[:7] == ["nan-g-at-3", "dcgan-lite-dense-ttur", "6", "2", "0", "2", "0"]
    assert set(values[7:]) <= {"-"}  # no number stands in for a diverged cell
