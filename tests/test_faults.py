"""The fault probe of the issue "faults lose nothing": full disks, damaged and foreign files."""

import errno

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
    assert run(tiny_mnist, out, "--loss", "minimax") == 2
    assert the_error(capsys) == f"{out / 'runs.csv'}: No space left on device"


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
