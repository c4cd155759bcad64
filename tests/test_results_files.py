"""Results files: versioned, never overwritten when foreign, whole after a kill, shared safely."""

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from ganbench import results as R
from ganbench.cli import main
from ganbench.errors import GanbenchError

FAST = ["--steps", "2", "--batch-size", "4", "--fid-samples", "0", "--log-every", "1"]


def run(tiny_mnist, out, *args):
    return main(["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, *args])


def test_runs_csv_carries_its_format_version(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    assert run(tiny_mnist, out, "--loss", "wgan") == 0  # appending to our own format is fine
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs.format_version) == [R.RESULTS_FORMAT, R.RESULTS_FORMAT] == [1, 1]


@pytest.mark.parametrize(
    ("content", "found"),
    [
        (b"run_id,loss,status\nold-1,wgan,ok\n", "none (no format_version column)"),
        (b"run_id,status,format_version\na,ok,2\n", "2"),
        (b"run_id,status,format_version\na,ok,1\nb,ok,2\n", "1, 2"),
        (b"just some notes\n", "none (no format_version column)"),
    ],
)
def test_incompatible_runs_csv_is_refused_and_left_alone(
    tiny_mnist, tmp_path, capsys, content, found
):
    out = tmp_path / "res"
    out.mkdir()
    (out / "runs.csv").write_bytes(content)
    assert run(tiny_mnist, out, "--loss", "minimax") == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line == (
        f"ganbench: error: {out / 'runs.csv'} was written by an incompatible ganbench: results "
        f"format {found}, this version writes 1; use another --out, or move {out / 'runs.csv'} "
        "away to start a new one"
    )
    assert (out / "runs.csv").read_bytes() == content
    assert not (out / "curves.csv").exists() and not (out / "checkpoints").exists()


def test_unparsable_runs_csv_is_refused(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    (out / "runs.csv").write_bytes(b'a,b\n"unclosed quote,1\n')
    with pytest.raises(GanbenchError) as info:
        R.check_runs_format(out)
    message = str(info.value)
    assert message.startswith(f"{out / 'runs.csv'} is not a ganbench results table (ParserError: ")
    assert message.endswith(
        f"use another --out, or move {out / 'runs.csv'} away to start a new one"
    )
    assert "\n" not in message


def test_recording_refuses_a_runs_csv_that_turned_incompatible(tmp_path):
    out = tmp_path / "res"
    R.record_cell(out, {"run_id": "a", "status": "ok"}, [])
    (out / "runs.csv").write_bytes(b"run_id,status\nforeign,ok\n")  # e.g. an old version's run
    with pytest.raises(GanbenchError, match="incompatible ganbench"):
        R.record_cell(out, {"run_id": "b", "status": "ok"}, [{"run_id": "b", "step": 1}])
    assert (out / "runs.csv").read_bytes() == b"run_id,status\nforeign,ok\n"
    assert not (out / "curves.csv").exists()  # nothing of the refused cell landed


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path, monkeypatch):
    out = tmp_path / "res"
    R.record_cell(out, {"run_id": "a", "status": "ok"}, [{"run_id": "a", "step": 1}])
    before = (out / "runs.csv").read_bytes()

    def killed(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing the temp file and renaming it

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        R.append_rows(out / "runs.csv", [{"run_id": "b", "status": "ok"}])
    assert (out / "runs.csv").read_bytes() == before
    assert sorted(p.name for p in out.iterdir()) == [".ganbench.lock", "curves.csv", "runs.csv"]


def test_temp_files_of_killed_writers_are_cleaned_up_under_the_lock(tmp_path):
    out = tmp_path / "res"
    out.mkdir()
    orphans = [out / ".runs.csv.k1ll3d.tmp", out / ".curves.csv.x.tmp", out / ".summary.csv.y.tmp"]
    for orphan in orphans:
        orphan.write_text("run_id,sta")  # half a row, never renamed into place
    R.record_cell(out, {"run_id": "a", "status": "ok"}, [])
    assert not any(p.exists() for p in orphans)
    assert list(pd.read_csv(out / "runs.csv").run_id) == ["a"]


def test_hashes_that_look_like_numbers_stay_text(tmp_path):
    out = tmp_path / "res"
    rows = [
        {"run_id": "1", "config_hash": "123456789012", "setup": "000000000001", "status": "ok"},
        {"run_id": "2", "config_hash": "1234e5678901", "setup": "1e10", "status": "diverged"},
        {"run_id": "3", "config_hash": "abcdef012345", "setup": "x", "status": "error"},
    ]
    for row in rows:
        R.record_cell(out, row, [])
    runs = R.read_csv(out / "runs.csv")
    assert list(runs.config_hash) == ["123456789012", "1234e5678901", "abcdef012345"]
    assert list(runs.setup) == ["000000000001", "1e10", "x"]
    assert R.finished_run(out, "123456789012") == "1"
    assert R.finished_run(out, "1234e5678901") == "2"
    assert R.finished_run(out, "abcdef012345") is None  # error rows are retried


def test_two_concurrent_runs_on_one_out_both_land_all_rows(tiny_mnist, tmp_path):
    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    out = tmp_path / "shared"
    base = [sys.executable, "-m", "ganbench", "run", "--data-dir", str(tiny_mnist)]
    base += ["--out", str(out), *FAST, "--steps", "1", "--seeds", "3", "--checkpoint-every", "0"]
    procs = [
        subprocess.Popen(
            [*base, "--loss", loss],
            env=env,
            cwd=repo,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for loss in ("minimax", "non-saturating")
    ]
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=300)
        assert proc.returncode == 0, stderr.decode()
    runs = pd.read_csv(out / "runs.csv")
    assert sorted(zip(runs.loss, runs.seed, strict=True)) == [
        (loss, seed) for loss in ("minimax", "non-saturating") for seed in range(3)
    ]
    assert runs.run_id.is_unique and (runs.status == "ok").all()
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves.run_id) == set(runs.run_id)
    assert (curves.groupby("run_id").size() == 4).all()  # d_loss, g_loss, wall_s, train_gflop
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary.loss) == {"minimax", "non-saturating"}
    assert not list(out.glob(".*.tmp"))


def test_appending_rewrites_earlier_rows_exactly(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text("run_id,steps,fid\na,30,1.5\n")
    R.append_rows(path, [{"run_id": "b", "fid": 2.0}])  # no steps: NaN in a typed column
    assert path.read_text().splitlines() == ["run_id,steps,fid", "a,30,1.5", "b,,2.0"]


def test_results_files_follow_the_umask(tiny_mnist, tmp_path):
    import os
    import stat

    from ganbench.cli import main

    out = tmp_path / "res"
    old = os.umask(0o022)
    try:
        argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), "--loss", "minimax"]
        assert main([*argv, "--steps", "2", "--batch-size", "4", "--fid-samples", "0"]) == 0
    finally:
        os.umask(old)
    for name in ("runs.csv", "curves.csv", "summary.csv"):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    (png,) = (out / "samples").glob("*[!a].png")
    assert stat.S_IMODE(png.stat().st_mode) == 0o644
    (gen,) = (out / "generators").iterdir()
    assert stat.S_IMODE(gen.stat().st_mode) == 0o644


def test_a_cell_being_trained_elsewhere_is_skipped(tiny_mnist, tmp_path, capsys):
    import subprocess
    import sys

    import pandas as pd

    from ganbench.cli import main

    out = tmp_path / "res"
    argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), "--loss", "minimax"]
    argv += ["--steps", "2", "--batch-size", "4", "--fid-samples", "0"]
    assert main(argv) == 0
    chash = pd.read_csv(out / "runs.csv", dtype=str)["config_hash"][0]
    lock = R.cell_lock(out, chash).lock_file
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from filelock import FileLock; import sys, time; "
         f"l = FileLock({lock!r}); l.acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        assert main([*argv, "--fresh"]) == 75  # not done: rerun when the other has finished
        err = capsys.readouterr().err
        assert "being trained by another process" in err
        assert err.splitlines()[-1].startswith("ganbench: error: another process is training")
        assert len(pd.read_csv(out / "runs.csv")) == 1  # not trained twice
    finally:
        holder.kill()
        holder.wait()
