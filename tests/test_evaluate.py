"""Saved generators, ``ganbench evaluate`` and ``ganbench sample``, on tiny IDX data and the real
evaluator (its classifier trains in a second on 256 images)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from ganbench import generator_files
from ganbench.cli import main
from ganbench.evaluate import apply_updates

TINY = ["--steps", "4", "--batch-size", "16", "--log-every", "2", "--eval-every", "0"]
SCORED = ["--fid-samples", "40", "--kid-subset-size", "20", "--kid-subsets", "10"]


def train(tiny_mnist, out, *args):
    argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *TINY, *SCORED, *args]
    return main(argv)


def evaluate(tiny_mnist, out, *args):
    return main(["evaluate", str(out), "--data-dir", str(tiny_mnist), *args])


def test_a_cell_keeps_its_generators_and_evaluate_reproduces_its_scores(
    tiny_mnist, tmp_path, capsys
):
    out = tmp_path / "res"
    assert train(tiny_mnist, out, "--loss", "non-saturating", "--seeds", "2") == 0
    assert "MB per cell (--no-keep-generators" in capsys.readouterr().err
    before = pd.read_csv(out / "runs.csv")
    for row in before.itertuples():
        path = out / row.generator_file
        assert path == generator_files.path_for(out, row.run_id) and path.is_file()
        record = generator_files.load(path)
        assert (record["run_id"], record["config_hash"]) == (row.run_id, row.config_hash)
        assert record["generator"] == "dcgan-lite-dense-ttur" and record["dataset"] == "mnist"
        assert set(record) >= {"G", "G_ema", "noise", "channels_last"}
    assert {
        "kid",
        "precision_k3",
        "recall_k3",
        "density_k5",
        "coverage_k5",
        "coverage_k5_ema",
    } <= set(before)
    assert (before["precision"] == "fp32").all()  # the training precision, beside the metrics

    assert evaluate(tiny_mnist, out) == 0
    after = pd.read_csv(out / "runs.csv")
    assert list(after.columns) == list(before.columns)  # same settings: the row's own columns
    pd.testing.assert_frame_equal(after, before)  # every value reproduced exactly, FID included
    assert "runs.csv had" in capsys.readouterr().err

    # another sample count: tagged columns beside the row's own, which stay as they were
    assert evaluate(tiny_mnist, out, "--fid-samples", "30") == 0
    tagged = pd.read_csv(out / "runs.csv")
    assert {"fid@mnist-classifier-30", "fid_ema@mnist-classifier-30"} <= set(tagged)
    assert (tagged["fid@mnist-classifier-30"] != tagged["fid"]).all()
    pd.testing.assert_frame_equal(
        tagged[before.columns.drop("metrics")], before.drop(columns="metrics")
    )
    assert all("fid@mnist-classifier-30" in m.split() for m in tagged["metrics"])
    summary = pd.read_csv(out / "summary.csv")
    assert {"fid@mnist-classifier-30_mean", "precision_k3_ci_low", "coverage_k5_ema_mean"} <= set(
        summary
    )

    one = tagged["run_id"].iloc[1]
    assert evaluate(tiny_mnist, out, "--run-id", one, "--fid-samples", "25") == 0
    picked = pd.read_csv(out / "runs.csv")
    assert picked["fid@mnist-classifier-25"].isna().tolist() == [True, False]


def test_cells_from_before_generator_files_are_scored_from_their_final_checkpoint(
    tiny_mnist, tmp_path
):
    out = tmp_path / "res"
    # such cells kept their final checkpoint (the default before --keep-checkpoints)
    args = ("--loss", "minimax", "--no-keep-generators", "--keep-checkpoints")
    assert train(tiny_mnist, out, *args) == 0
    before = pd.read_csv(out / "runs.csv")
    assert not (out / "generators").exists() and "generator_file" not in before
    assert evaluate(tiny_mnist, out) == 0  # G and EMA-G rebuilt from the checkpoint
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), before)


def test_a_cell_with_no_generator_left_is_reported_and_exits_1(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    args = ["--loss", "minimax", "--no-keep-generators", "--checkpoint-every", "0"]
    assert train(tiny_mnist, out, *args) == 0
    before = pd.read_csv(out / "runs.csv")
    assert evaluate(tiny_mnist, out) == 1
    err = capsys.readouterr().err
    assert "no saved generator" in err and before["run_id"][0] in err.splitlines()[-1]
    pd.testing.assert_frame_equal(pd.read_csv(out / "runs.csv"), before)


def test_sample_exports_npz_and_pngs_in_the_datasets_shape(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert train(tiny_mnist, out, "--loss", "minimax") == 0
    run_id = pd.read_csv(out / "runs.csv")["run_id"][0]
    npz = tmp_path / "s.npz"
    assert main(["sample", str(out), "--run-id", run_id, "-n", "12", "--to", str(npz)]) == 0
    samples = np.load(npz)["samples"]
    assert samples.shape == (12, 1, 28, 28) and samples.dtype == np.float32
    assert 0 <= samples.min() and samples.max() <= 1
    again = tmp_path / "again.npz"  # the cell's evaluation noise: the same samples every time
    main(["sample", str(out), "--run-id", run_id, "-n", "12", "--to", str(again)])
    assert np.array_equal(np.load(again)["samples"], samples)
    ema = tmp_path / "ema.npz"
    main(["sample", str(out), "--run-id", run_id, "-n", "12", "--to", str(ema), "--ema"])
    assert not np.array_equal(np.load(ema)["samples"], samples)

    pngs = tmp_path / "pngs"
    argv = ["sample", str(out), "--run-id", run_id, "-n", "5", "--format", "png", "--to"]
    assert main([*argv, str(pngs)]) == 0
    files = sorted(pngs.iterdir())
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    first = np.asarray(Image.open(files[0]))
    assert first.shape == (28, 28) and first.dtype == np.uint8
    assert np.abs(first / 255 - samples[0, 0]).max() <= 0.5 / 255 + 1e-6  # same noise, rounded

    capsys.readouterr()
    assert main([*argv, str(pngs)]) == 2  # nothing is overwritten
    assert "exists" in capsys.readouterr().err and len(list(pngs.iterdir())) == 5


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sample", "{out}", "--run-id", "nope", "--to", "{tmp}/x.npz"], "Unknown --run-id 'nope'"),
        (["sample", "{out}", "--run-id", "{id}", "-n", "0", "--to", "{tmp}/x.npz"], "-n must be"),
        (
            ["sample", "{out}", "--run-id", "{id}", "--format", "gif", "--to", "{tmp}/x"],
            "Unknown --format 'gif'. Available: npz, png",
        ),
        (["evaluate", "{tmp}/nowhere"], "No runs.csv in"),
        (["evaluate", "{out}", "--fid-samples", "1"], "--fid-samples must be at least 2"),
        (["evaluate", "{out}", "--backbone", "resnet"], "resnet"),
    ],
)
def test_bad_input_is_one_line_exit_2(tiny_mnist, tmp_path, capsys, argv, message):
    out = tmp_path / "res"
    assert train(tiny_mnist, out, "--loss", "minimax", "--fid-samples", "0") == 0
    run_id = pd.read_csv(out / "runs.csv")["run_id"][0]
    before = (out / "runs.csv").read_bytes()
    capsys.readouterr()
    argv = [a.format(out=out, tmp=tmp_path, id=run_id) for a in argv]
    if argv[0] == "evaluate":
        argv += ["--data-dir", str(tiny_mnist)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0] and err[0].startswith("ganbench: error:")
    assert (out / "runs.csv").read_bytes() == before


def test_apply_updates_keeps_every_other_row_and_column():
    runs = pd.DataFrame(
        {
            "run_id": ["a", "b", "c"],
            "fid": [1.0, 2.0, 3.0],
            "note": ["x", "y", "z"],
            "metrics": ["fid", "fid", "fid"],
        }
    )
    updated = apply_updates(
        runs, {"b": {"values": {"fid": 2.5, "kid": 0.1}, "metrics": ["fid", "kid"]}}
    )
    assert updated["fid"].tolist() == [1.0, 2.5, 3.0]
    assert updated["note"].tolist() == ["x", "y", "z"]
    assert updated["kid"].isna().tolist() == [True, False, True]
    assert updated["metrics"].tolist() == ["fid", "fid kid", "fid"]
    assert runs["fid"].tolist() == [1.0, 2.0, 3.0]  # the input is not modified


def test_a_generator_file_that_does_not_fit_is_a_clear_error(tmp_path):
    path = tmp_path / "g.pt"
    torch.save({"format": 99}, path)
    with pytest.raises(Exception, match="generator format 99"):
        generator_files.load(path)
    path.write_bytes(b"not a zip")
    with pytest.raises(Exception, match="not a readable generator file"):
        generator_files.load(path)


def test_an_evaluator_score_named_like_a_row_column_fails_its_cell(tiny_mnist, tmp_path, capsys):
    """A dataset plugin's metric called ``precision`` would overwrite the training precision."""
    from ganbench.default_plugins.mnist.plugin import Mnist

    class Clashing:
        n_samples = 8

        def __init__(self, options):
            pass

        def reference(self):
            return {"fid": 0.0}

        def score(self, samples):
            return {"fid": 1.0, "precision": 0.5}

    mp = pytest.MonkeyPatch()
    mp.setattr(Mnist, "make_evaluator", lambda self, options: Clashing(options))
    try:
        assert train(tiny_mnist, tmp_path / "res", "--loss", "minimax") == 1
    finally:
        mp.undo()
    row = pd.read_csv(tmp_path / "res" / "runs.csv").iloc[0]
    assert row.status == "error" and "['precision'] would overwrite" in row.error
    assert row.precision == "fp32"


@pytest.mark.slow
def test_evaluate_with_another_backbone_writes_tagged_columns(
    tiny_mnist, tmp_path, random_inception_weights
):
    out = tmp_path / "res"
    assert train(tiny_mnist, out, "--loss", "minimax") == 0
    before = pd.read_csv(out / "runs.csv")
    args = ["--backbone", "inception", "--inception-weights", str(random_inception_weights)]
    assert evaluate(tiny_mnist, out, *args, "--fid-samples", "20") == 0
    after = pd.read_csv(out / "runs.csv")
    assert np.isfinite(after["fid@inception-20"][0]) and np.isfinite(
        after["fid_ema@inception-20"][0]
    )
    assert after["kid@inception-20"].notna().all()
    pd.testing.assert_frame_equal(
        after[before.columns.drop("metrics")], before.drop(columns="metrics")
    )


def test_a_cell_that_fails_to_score_fails_alone_and_exits_1(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert train(tiny_mnist, out, "--loss", "minimax", "--seeds", "2") == 0
    before = pd.read_csv(out / "runs.csv")
    broken = before["run_id"][0]
    generator_files.path_for(out, broken).write_bytes(b"damaged")
    capsys.readouterr()
    assert evaluate(tiny_mnist, out, "--fid-samples", "30") == 1
    err = capsys.readouterr().err
    assert "not a readable generator file" in err
    assert err.splitlines()[-1] == f"ganbench: cells not scored: 1 failed: {broken}"
    after = pd.read_csv(out / "runs.csv")
    assert after["fid@mnist-classifier-30"].isna().tolist() == [True, False]  # the other: scored
