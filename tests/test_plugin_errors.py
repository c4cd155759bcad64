"""Plugin mistakes surface before training, as one line naming the plugin (exit 2); a loss
parameter that no loss of the run declares is refused; a failing sample picture costs no cell."""

import numpy as np
import pandas as pd
import pytest
from test_bad_input import assert_nothing_trained, run, the_error

from ganbench.default_plugins.losses import NonSaturating


class PerSampleD(NonSaturating):
    """d_loss forgets to reduce over the batch."""

    def d_loss(self, D, real, fake):
        return super().d_loss(D, real, fake) * 0 + D(real)


class DetachedG(NonSaturating):
    def g_loss(self, D, real, fake):
        return super().g_loss(D, real, fake.detach())


def raises():
    raise OSError("weights file missing")


@pytest.mark.parametrize(
    ("kind", "factory", "message"),
    [
        (
            "register_losses",
            PerSampleD,
            "Loss 'bad' (from ganbench-test): d_loss must return a scalar tensor (shape ()), "
            "got shape (4,); reduce over the batch, e.g. with .mean() (found by a dry step "
            "before training; ganbench.testing.check_loss runs every check)",
        ),
        (
            "register_losses",
            DetachedG,
            "Loss 'bad' (from ganbench-test): g_loss sends no gradient to the generator (its "
            "result has no gradient; is `fake` detached?)",
        ),
        (
            "register_losses",
            raises,
            "Loss 'bad' (from ganbench-test) cannot be built: OSError: weights file missing",
        ),
    ],
)
def test_a_broken_loss_is_one_line_before_training(
    tiny_mnist, tmp_path, capsys, add_plugin, kind, factory, message
):
    add_plugin(kind, "bad", factory)
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", "--loss", "bad") == 2
    assert the_error(capsys).startswith(message)
    assert_nothing_trained(out)


@pytest.mark.parametrize(
    ("hook", "flag", "message"),
    [
        (
            "register_generators",
            "--generator",
            "Generator 'bad' (from ganbench-test) cannot be built",
        ),
        (
            "register_discriminators",
            "--discriminator",
            "Discriminator 'bad' (from ganbench-test) cannot be built",
        ),
    ],
)
def test_a_model_factory_that_raises_is_one_line(
    tiny_mnist, tmp_path, capsys, add_plugin, hook, flag, message
):
    add_plugin(hook, "bad", raises)
    out = tmp_path / "res"
    other = ["--discriminator", "dcgan-lite"] if flag == "--generator" else []
    assert run(tiny_mnist, out, "--loss", "minimax", flag, "bad", *other) == 2
    assert the_error(capsys) == f"{message}: OSError: weights file missing"
    assert_nothing_trained(out)


def test_loss_params_reach_only_the_losses_that_declare_them(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--loss", "wgan", "--loss", "minimax", "--loss-param", "clip=0.02"]
    assert run(tiny_mnist, out, *args) == 0
    runs = pd.read_csv(out / "runs.csv").set_index("loss")
    assert runs.loc["wgan", "loss_params"] == '{"clip": 0.02}'
    assert runs.loc["minimax", "loss_params"] == "{}"
    capsys.readouterr()
    assert run(tiny_mnist, tmp_path / "r2", "--loss", "wgan", "--loss-param", "clp=0.02") == 2
    assert the_error(capsys) == (
        "Unknown --loss-param 'clp' for wgan. Did you mean 'clip'? Valid keys: clip"
    )


def test_a_failing_sample_picture_keeps_the_cell_and_its_scores(tiny_mnist, tmp_path, monkeypatch):
    from ganbench.default_plugins.mnist.plugin import Mnist

    def broken(self, samples, path):
        raise FileNotFoundError(f"{path.parent} does not exist")

    monkeypatch.setattr(Mnist, "save_samples", broken)
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    assert row.status == "ok" and "FileNotFoundError" in row.samples_error
    assert "samples_png" not in row or pd.isna(row.samples_png)
    summary = pd.read_csv(out / "summary.csv")
    assert "samples_error_mean" not in summary and "error_mean" not in summary  # text, not metrics


def test_a_plot_that_fails_costs_only_itself(tiny_mnist, tmp_path, capsys):
    from ganbench.cli import main

    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    png = out / pd.read_csv(out / "runs.csv").iloc[0].samples_png
    png.write_bytes(b"not a png")
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    assert "plot samples not drawn: UnidentifiedImageError" in capsys.readouterr().err
    assert (out / "report.md").is_file() and (out / "plots" / "throughput.png").is_file()


def test_the_data_is_part_of_the_cell_hash(tiny_mnist, tmp_path, capsys):
    import shutil

    from conftest import write_idx

    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    assert run(tiny_mnist, out, "--loss", "minimax") == 0  # the same data: resumed, skipped
    assert "finished earlier" in capsys.readouterr().err
    other = tmp_path / "other-idx"
    shutil.copytree(tiny_mnist, other)
    write_idx(other / "train-images-idx3-ubyte", np.full((256, 28, 28), 255))
    assert run(other, out, "--loss", "minimax") == 0  # other files: another cell, trained
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 2 and runs["config_hash"].nunique() == 2


def test_data_dir_for_a_dataset_that_reads_no_files_is_refused(tmp_path, capsys):
    from ganbench.cli import main

    argv = ["run", "--dataset", "ring8", "--loss", "minimax", "--steps", "2"]
    assert main([*argv, "--data-dir", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "means nothing to dataset 'ring8'" in the_error(capsys)


def test_a_header_only_runs_csv_is_appended_to(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "runs.csv").write_text("run_id,config_hash,status,format_version\n")
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    assert list(pd.read_csv(out / "runs.csv")["status"]) == ["ok"]
