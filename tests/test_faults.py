"""The fault probe of the issue "faults lose nothing": full disks, damaged and foreign files."""

import errno
import os
import subprocess
import time

import pandas as pd
import pytest
from test_bad_input import run, the_error

from ganbench import checkpoints
from ganbench import results as R
from ganbench.cli import main


def test_a_full_disk_while_recording_is_one_line_naming_the_file(
    tiny_mnist, tmp_path, capsys, monkeypatch
):
    real = R.atomic_write_bytes

    def full(path, data):
        if path.name == "runs.csv":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path, data)

    monkeypatch.setattr(R, "atomic_write_bytes", full)
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 74  # the machine's failure, not a user's
    assert the_error(capsys) == f"{out / 'runs.csv'}: No space left on device"
    # the cell that could not be recorded leaves no curves and no generator file behind
    assert not (out / "curves.csv").exists() or pd.read_csv(out / "curves.csv").empty
    assert list((out / "generators").glob("*.pt")) == []


def test_a_checkpoint_that_cannot_be_written_is_logged_and_training_goes_on(
    tiny_mnist, tmp_path, capsys, monkeypatch
):
    def full(path, checkpoint):
        raise RuntimeError("[enforce fail at inline_container.cc:672] unexpected pos 64")

    monkeypatch.setattr(checkpoints, "save", full)
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", "--checkpoint-every", "1") == 0
    assert "not written (RuntimeError: [enforce fail" in capsys.readouterr().err
    assert list(pd.read_csv(out / "runs.csv")["status"]) == ["ok"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (bytes(range(256)) * 4, "is not a ganbench results table"),
        (b"a,b\n1,2\n", "incompatible ganbench: results format none"),
    ],
)
def test_report_checks_the_format_like_run(tmp_path, capsys, content, message):
    out = tmp_path / "res"
    out.mkdir()
    (out / "runs.csv").write_bytes(content)
    assert main(["report", str(out)]) == 2
    assert message in the_error(capsys)
    assert (out / "runs.csv").read_bytes() == content and not (out / "summary.csv").exists()


def test_a_runs_csv_cut_mid_line_is_refused_before_training(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    with open(out / "runs.csv", "a") as f:
        f.write("minimax-s1-cut,abc")
    before = (out / "runs.csv").read_bytes()
    capsys.readouterr()
    assert run(tiny_mnist, out, "--loss", "minimax", "--seed", "1") == 2
    assert "1 incomplete row(s), cut short (line(s) 3" in the_error(capsys)
    assert (out / "runs.csv").read_bytes() == before


def test_an_unreadable_curves_csv_is_refused_and_a_summary_rebuilt(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    (out / "summary.csv").write_bytes(bytes(range(256)))  # derived: rebuilt
    assert run(tiny_mnist, out, "--loss", "minimax", "--seed", "1") == 0
    assert set(pd.read_csv(out / "summary.csv")["loss"]) == {"minimax"}
    (out / "curves.csv").write_bytes(bytes(range(256)))  # data: refused, left alone
    capsys.readouterr()
    assert run(tiny_mnist, out, "--loss", "minimax", "--seed", "2") == 2
    assert "curves.csv is not a ganbench curves table" in the_error(capsys)


def _immutable(path) -> bool:
    return subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0


def test_a_runs_csv_that_cannot_be_written_fails_before_training(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    before = {p: p.stat().st_mtime for p in out.rglob("*") if p.is_file()}
    if not _immutable(out / "runs.csv"):
        pytest.skip("chattr +i is not available here (needs root and a supporting filesystem)")
    try:
        assert run(tiny_mnist, out, "--loss", "non-saturating") == 74
        assert "runs.csv cannot be written" in the_error(capsys)
    finally:
        subprocess.run(["chattr", "-i", str(out / "runs.csv")], check=True)
    after = {p: p.stat().st_mtime for p in out.rglob("*") if p.is_file()}
    assert after == before  # nothing trained: no curves, generators or checkpoints added


def test_a_second_run_of_a_cell_being_trained_says_so_and_exits_75(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    chash = pd.read_csv(out / "runs.csv", dtype=str)["config_hash"][0]
    capsys.readouterr()
    with R.cell_lock(out, chash):  # another process holds the cell
        assert run(tiny_mnist, out, "--loss", "minimax", "--fresh") == 75
    error = the_error(capsys)
    assert error.startswith("another process is training 1 cell(s) of this run")
    assert len(pd.read_csv(out / "runs.csv")) == 1


def test_counts_stay_whole_numbers_after_an_empty_value(tmp_path):
    path = tmp_path / "runs.csv"
    R.append_rows(path, [{"trial": 0, "steps_done": 50}, {"trial": None, "steps_done": None}])
    R.append_rows(path, [{"trial": 1.0, "steps_done": 20.0}])
    assert path.read_text().splitlines() == ["trial,steps_done", "0,50", ",", "1,20"]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--loss", "minimax", "--loss-param", "clp=0.1"],
        ["search", "--dataset", "ring8", "--loss", "minimax", "--metric", "foo"],
        ["run", "--dataset", "ring8", "--loss", "minimax", "--threads", "0"],
    ],
)
def test_a_refused_command_creates_no_folder(tmp_path, args, capsys):
    out = tmp_path / "a" / "b" / "c"
    assert main([*args, "--out", str(out)]) == 2
    the_error(capsys)
    assert list(tmp_path.iterdir()) == []


def test_stale_temp_files_are_removed_at_the_next_start_with_one_line(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    for folder, name in (("generators", ".minimax-x.abc.pt"), ("checkpoints", ".0123.xyz.pt")):
        (out / folder).mkdir(parents=True)
        (out / folder / name).write_bytes(b"\0" * 1000)
        old = time.time() - 2 * checkpoints.STALE_TEMP_S
        os.utime(out / folder / name, (old, old))
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    assert "removed 2 temp file(s) of an earlier run" in capsys.readouterr().err
    assert list(out.rglob(".*.pt")) == []


def test_finished_cells_keep_no_checkpoint_unless_asked(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax", "--checkpoint-every", "2") == 0
    assert list((out / "checkpoints").glob("*.pt")) == []
    assert (
        run(tiny_mnist, out, "--loss", "wgan", "--checkpoint-every", "2", "--keep-checkpoints") == 0
    )
    assert len(list((out / "checkpoints").glob("*.pt"))) == 1


def test_a_run_that_would_take_days_says_so(tmp_path, capsys):
    from ganbench.validation import days_warnings

    assert days_warnings(2400 * 4, 10_000) == []
    (steps,) = days_warnings(10**20, 10_000)
    assert steps.startswith("warning: 100,000,000,000,000,000,000 generator steps")
    assert len(days_warnings(0, 10**11)) == 1
