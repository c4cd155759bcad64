"""Launchers: a local process pool and a real Ray cluster write the rows one process writes; a
worker killed mid-cell is retried, one that always dies becomes an ``error`` row; sweeps resume
across launchers (CPU, tiny data, seconds per cell)."""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from ganbench import launchers, plugins
from ganbench.cli import main

REPO = Path(__file__).resolve().parents[1]
FAST = ["--steps", "6", "--batch-size", "8", "--fid-samples", "0", "--log-every", "2"]
FAST += ["--checkpoint-every", "2"]
KEY = ["loss", "seed"]

# A loss plugin that kills its own worker process (SIGKILL: no cleanup, no exception) at its
# 4th D step (GANBENCH_TEST_DIE=once: only while no marker file exists) or at its first
# (=always: every attempt). Each death appends the cell's seed to the marker file. It dies in
# worker processes only, not in the driver (whose dry step before training runs it once).
KILLER_PLUGIN = """
import os, signal
from pathlib import Path

import torch

from ganbench.default_plugins.losses import NonSaturating
from ganbench.hookspecs import hookimpl


class Killer(NonSaturating):
    calls = 0

    def d_loss(self, D, real, fake):
        self.calls += 1
        mode = os.environ.get("GANBENCH_TEST_DIE", "")
        marker = Path(os.environ["GANBENCH_TEST_MARKERS"]) / "deaths"
        in_worker = os.getpid() != int(os.environ["GANBENCH_TEST_DRIVER_PID"])
        if in_worker and (
            (mode == "always" and self.calls == 1)
            or (mode == "once" and self.calls == 4 and not marker.exists())
        ):
            with open(marker, "a") as f:
                f.write(f"{torch.initial_seed()}\\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return super().d_loss(D, real, fake)


@hookimpl
def register_losses(register):
    register("killer", Killer)
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory) -> Path:
    """A directory that, on sys.path, is an installed plugin distribution ganbench-test-killer."""
    d = tmp_path_factory.mktemp("site")
    (d / "ganbench_test_killer.py").write_text(KILLER_PLUGIN)
    info = d / "ganbench_test_killer-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ganbench-test-killer\nVersion: 0.0\n"
    )
    (info / "entry_points.txt").write_text("[ganbench]\nkiller = ganbench_test_killer\n")
    return d


@pytest.fixture
def killer(plugin_dir, tmp_path, monkeypatch) -> Path:
    """Load the killer plugin here and in every worker; returns the deaths file."""
    markers = tmp_path / "markers"
    markers.mkdir()
    monkeypatch.syspath_prepend(str(plugin_dir))  # spawned pool workers inherit sys.path
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-test-killer")
    monkeypatch.setenv("GANBENCH_TEST_MARKERS", str(markers))
    monkeypatch.setenv("GANBENCH_TEST_DRIVER_PID", str(os.getpid()))
    plugins.reset()
    return markers / "deaths"


def deaths(path: Path) -> list[int]:
    return [int(s) for s in path.read_text().split()] if path.exists() else []


def sweep(tiny_mnist, out, *args):
    # the pair's settings: --steps in G steps for every loss, whatever the study has tuned
    argv = ["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, *args]
    return main([*argv, "--defaults", "pair"])


def runs(out: Path) -> pd.DataFrame:
    frame = pd.read_csv(out / "runs.csv", dtype={"config_hash": str, "run_id": str})
    return frame.sort_values(KEY, kind="stable").reset_index(drop=True)


# -- checks before any training ----------------------------------------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["--launcher", "slurm"], "Unknown launcher 'slurm'. Available: local, ray"),
        (["--jobs", "0"], "--jobs must be a whole number of at least 1, got 0"),
        (["--cpus-per-cell", "0"], "--cpus-per-cell must be a positive number, got 0.0"),
        (["--launcher", "ray", "--gpus-per-cell", "-1"], "--gpus-per-cell must be 0 or a"),
        (["--gpus-per-cell", "1"], "--gpus-per-cell is Ray's GPU request per cell"),
        (
            ["--launcher", "local", "--ray-address", "127.0.0.1:1"],
            "--ray-address needs --launcher ray",
        ),
        (["--launcher", "ray", "--jobs", "2"], "--jobs is for --launcher local"),
    ],
)
def test_bad_launch_options_are_one_line_errors(tiny_mnist, tmp_path, capsys, args, message):
    out = tmp_path / "res"
    assert sweep(tiny_mnist, out, "--loss", "minimax", *args) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"ganbench: error: {message}") and err.count("\n") == 1
    assert not (out / "runs.csv").exists()


def test_ray_launcher_without_ray_says_how_to_install(tiny_mnist, tmp_path, capsys, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ray" else find_spec(name, *a)
    )
    out = tmp_path / "res"
    assert sweep(tiny_mnist, out, "--loss", "minimax", "--ray-address", "127.0.0.1:1") == 2
    assert capsys.readouterr().err == (
        'ganbench: error: --launcher ray needs Ray: pip install "ganbench[ray]"\n'
    )
    assert not (out / "runs.csv").exists()


def test_in_process_plugin_is_refused_for_worker_processes(
    tiny_mnist, tmp_path, capsys, add_plugin
):
    from ganbench.default_plugins.losses import Minimax

    add_plugin("register_losses", "minimax-here", Minimax)
    out = tmp_path / "res"
    assert sweep(tiny_mnist, out, "--loss", "minimax-here", "--jobs", "2") == 2
    err = capsys.readouterr().err
    assert "loss 'minimax-here' comes from plugin 'plugin_register_losses_minimax-here', " in err
    assert "registered in this process only" in err and err.count("\n") == 1
    assert not (out / "runs.csv").exists()


# -- local process pool -------------------------------------------------------------------------


def test_jobs_2_writes_the_rows_jobs_1_writes(tiny_mnist, tmp_path):
    cells = ["--loss", "minimax", "--loss", "non-saturating", "--seed", "0", "--seed", "1"]
    # one torch thread in both: thread counts change float sums (in the last digits)
    assert sweep(tiny_mnist, tmp_path / "one", *cells, "--cpus-per-cell", "1") == 0
    assert sweep(tiny_mnist, tmp_path / "two", *cells, "--jobs", "2", "--cpus-per-cell", "1") == 0
    one, two = runs(tmp_path / "one"), runs(tmp_path / "two")
    assert len(one) == len(two) == 4
    same = ["config_hash", "setup", "loss", "seed", "status", "steps_done", "device"]
    pd.testing.assert_frame_equal(one[same], two[same])
    for col in ("final_d_loss", "final_g_loss", "gflop_per_step"):
        assert two[col].tolist() == pytest.approx(one[col].tolist(), rel=1e-5), col
    assert set(one.launcher) == set(two.launcher) == {"local"}
    assert set(one.parallel_cells) == {1} and set(two.parallel_cells) == {2}
    assert set(one.columns) == set(two.columns)

    def losses(out, run_ids):
        curves = pd.read_csv(out / "curves.csv")
        curves = curves[curves.metric.isin(["d_loss", "g_loss"])]
        return [curves[curves.run_id == r]["value"].tolist() for r in run_ids]

    for a, b in zip(
        losses(tmp_path / "one", one.run_id), losses(tmp_path / "two", two.run_id), strict=True
    ):
        assert len(a) == 6 and b == pytest.approx(a, rel=1e-5)


def test_resume_across_launchers_runs_only_missing_cells(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    # the same threads under every launcher: a cell's thread count is part of its identity
    one = ["--threads", "1"]
    assert sweep(tiny_mnist, out, "--loss", "minimax", "--seed", "0", *one) == 0  # in-process
    first = runs(out)
    cells = ["--loss", "minimax", "--loss", "non-saturating", "--seed", "0", "--seed", "1", *one]
    assert sweep(tiny_mnist, out, *cells, "--jobs", "2") == 0
    assert "[1/4] minimax seed 0: finished earlier" in capsys.readouterr().err
    both = runs(out)
    assert len(both) == 4 and set(both.status) == {"ok"}
    assert both.groupby(KEY).size().eq(1).all()
    kept = both[both.run_id == first.run_id[0]]
    assert kept.launcher.tolist() == ["local"] and kept.parallel_cells.tolist() == [1]
    assert (both.parallel_cells == 2).sum() == 3  # the three others, in the pool
    # and back: a rerun in one process finds everything finished
    assert sweep(tiny_mnist, out, *cells) == 0
    assert capsys.readouterr().err.count("finished earlier") == 4
    assert len(runs(out)) == 4


def test_pool_worker_that_always_dies_gets_an_error_row(tiny_mnist, tmp_path, killer, monkeypatch):
    monkeypatch.setenv("GANBENCH_TEST_DIE", "always")
    out = tmp_path / "res"
    cells = ["--loss", "killer", "--loss", "minimax", "--seed", "0"]
    assert sweep(tiny_mnist, out, *cells, "--jobs", "2") == 1  # a failed cell: exit 1
    rows = runs(out)
    assert rows[KEY + ["status"]].values.tolist() == [["killer", 0, "error"], ["minimax", 0, "ok"]]
    assert rows.error[0] == f"worker process died {launchers.RETRIES + 1} times"
    assert deaths(killer) == [0] * (launchers.RETRIES + 1)
    # the error row has a normal row's identity, so a rerun (once the cause is gone) retries it
    monkeypatch.setenv("GANBENCH_TEST_DIE", "")
    assert sweep(tiny_mnist, out, *cells, "--jobs", "2") == 0
    again = runs(out)
    assert len(again) == 3 and again.config_hash.nunique() == 2
    latest = again.drop_duplicates("config_hash", keep="last")
    assert set(latest.status) == {"ok"}


# -- Ray: a real cluster on 127.0.0.1 ----------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(plugin_dir, tmp_path_factory):
    """``ray start --head`` on 127.0.0.1 with 2 CPUs, its workers importing this checkout (and
    the killer plugin); yields the address. Stopped afterwards, whatever happened: only the
    processes this fixture started (``ray stop`` would stop every Ray on the machine)."""
    pytest.importorskip("ray", reason='needs Ray: pip install -e ".[ray]"')
    port = _free_port()
    temp = tmp_path_factory.mktemp("ray")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(plugin_dir)])}
    env.pop("RAY_ADDRESS", None)
    # a private test cluster without token authentication, even where ~/.ray/auth_token exists
    # (Ray writes one when `ray.init()` starts a local instance; with it, this head never
    # answered the `ray status` below)
    env["RAY_AUTH_MODE"] = "disabled"
    ray_bin = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
    head = subprocess.Popen(
        [
            *[ray_bin, "start", "--head", "--block", "--node-ip-address", "127.0.0.1"],
            *["--port", str(port), "--num-cpus", "2", "--include-dashboard=false"],
            *["--disable-usage-stats", "--temp-dir", str(temp)],
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(temp / "head.log").open("w"),
        start_new_session=True,  # its own process group: the teardown stops exactly these
    )
    try:
        address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while subprocess.run(
            [ray_bin, "status", "--address", address], env=env, capture_output=True
        ).returncode:
            assert head.poll() is None, (temp / "head.log").read_text()
            assert time.monotonic() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(1)
        yield address
    finally:
        head.send_signal(signal.SIGTERM)  # `ray start --block` stops its processes on SIGTERM
        try:
            head.wait(30)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(head.pid, signal.SIGKILL)  # anything of its group still there
        except ProcessLookupError:
            pass
        head.wait()


ray_test = pytest.mark.ray


@ray_test
def test_ray_sweep_on_a_real_cluster_writes_every_row(tiny_mnist, tmp_path, ray_cluster, capsys):
    out = tmp_path / "res"
    # one cell done locally, on the 1 thread a Ray cell of 1 CPU gets: the same cell
    assert sweep(tiny_mnist, out, "--loss", "wgan", "--seed", "1", "--threads", "1") == 0
    cells = ["--loss", "minimax", "--loss", "wgan", "--seed", "0", "--seed", "1"]
    ray_args = ["--launcher", "ray", "--ray-address", ray_cluster, "--cpus-per-cell", "1"]
    assert sweep(tiny_mnist, out, *cells, "--loss", "non-saturating", *ray_args) == 0
    assert "wgan seed 1: finished earlier" in capsys.readouterr().err
    rows = runs(out)
    assert rows[KEY].values.tolist() == [
        [loss, seed] for loss in ("minimax", "non-saturating", "wgan") for seed in (0, 1)
    ]
    assert set(rows.status) == {"ok"} and (rows.steps_done == 6).all()
    assert rows.config_hash.is_unique and (rows.device == "cpu").all()
    assert rows.final_d_loss.notna().all() and rows.final_g_loss.notna().all()
    ran_on_ray = rows[rows.launcher == "ray"]
    assert len(ran_on_ray) == 5 and set(ran_on_ray.parallel_cells) == {2}
    for png in rows.samples_png:
        assert (out / png).exists()
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves.run_id) == set(rows.run_id)
    assert (pd.read_csv(out / "summary.csv").loss.value_counts() == 1).all()
    # the same cell gives the same numbers in this process as on a Ray worker
    here_args = ["--loss", "minimax", "--seed", "0", "--cpus-per-cell", "1"]
    assert sweep(tiny_mnist, tmp_path / "here", *here_args) == 0
    here = runs(tmp_path / "here").iloc[0]
    there = rows.iloc[0]
    assert here.config_hash == there.config_hash
    assert here.final_g_loss == pytest.approx(there.final_g_loss, rel=1e-5)


@ray_test
def test_ray_retries_a_worker_killed_mid_cell_and_loses_no_row(
    tiny_mnist, tmp_path, ray_cluster, killer, monkeypatch
):
    monkeypatch.setenv("GANBENCH_TEST_DIE", "once")
    out = tmp_path / "res"
    cells = ["--loss", "killer", "--loss", "minimax", "--seed", "0", "--seed", "1"]
    assert sweep(tiny_mnist, out, *cells, "--ray-address", ray_cluster) == 0
    rows = runs(out)
    assert rows[KEY].values.tolist() == [
        ["killer", 0],
        ["killer", 1],
        ["minimax", 0],
        ["minimax", 1],
    ]
    assert set(rows.status) == {"ok"} and (rows.steps_done == 6).all()
    (died,) = deaths(killer)  # killed once, at its 4th step: Ray's retry resumed it
    assert rows.set_index(KEY).resumed_from_step[("killer", died)] == 2
    assert rows.resumed_from_step.sum() == 2


@ray_test
def test_ray_cell_that_always_dies_is_an_error_then_finished_locally(
    tiny_mnist, tmp_path, ray_cluster, killer, monkeypatch, capsys
):
    monkeypatch.setenv("GANBENCH_TEST_DIE", "always")
    out = tmp_path / "res"
    # 1 thread under both launchers (Ray's default for 1 CPU), so the local rerun finds its cells
    cells = ["--loss", "killer", "--loss", "minimax", "--seed", "0", "--threads", "1"]
    assert sweep(tiny_mnist, out, *cells, "--ray-address", ray_cluster) == 1
    rows = runs(out)
    assert rows[KEY + ["status"]].values.tolist() == [["killer", 0, "error"], ["minimax", 0, "ok"]]
    assert rows.error[0].startswith(f"worker died {launchers.RETRIES + 1} times")
    assert deaths(killer) == [0] * (launchers.RETRIES + 1)
    # the sweep, finished in this process: only the failed cell runs
    monkeypatch.setenv("GANBENCH_TEST_DIE", "")
    capsys.readouterr()
    assert sweep(tiny_mnist, out, *cells) == 0
    assert "minimax seed 0: finished earlier" in capsys.readouterr().err
    latest = runs(out).drop_duplicates("config_hash", keep="last")
    assert len(runs(out)) == 3 and set(latest.status) == {"ok"}
    assert latest.set_index("loss").launcher["killer"] == "local"


def _processes_tagged(tag: str) -> list[int]:
    """Pids of live processes whose environment holds ``GANBENCH_TEST_TAG=tag``."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes()
        except OSError:
            continue
        if f"GANBENCH_TEST_TAG={tag}".encode() in environ.split(b"\0"):
            found.append(int(proc.name))
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
@pytest.mark.parametrize(
    ("sig", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGKILL, -9)]
)
def test_a_signal_to_the_main_process_stops_every_worker(tiny_mnist, tmp_path, sig, code):
    """SIGTERM and SIGINT: the main process stops its workers; SIGKILL: it cannot, and the
    workers see their parent gone (launchers.die_with_parent)."""
    tag = f"{os.getpid()}-{sig}"
    out = tmp_path / "res"
    argv = [sys.executable, "-m", "ganbench", "run", "--data-dir", str(tiny_mnist), "--out"]
    argv += [str(out), "--loss", "minimax", "--seeds", "2", "--jobs", "2", "--steps", "100000"]
    argv += ["--generator", "dcgan-lite"]  # the small pair: the test is about signals
    argv += ["--batch-size", "8", "--fid-samples", "0", "--checkpoint-every", "5"]
    env = {**os.environ, "GANBENCH_TEST_TAG": tag, "GANBENCH_LOAD_PLUGINS": ""}
    # SIGINT as at a terminal: a shell starts background jobs with SIGINT ignored, and Python
    # then installs no KeyboardInterrupt handler, so under `cmd &` (a CI script run in the
    # background) the SIGINT case could never pass
    main_process = subprocess.Popen(
        argv,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 120
        while len(list((out / "checkpoints").glob("[!.]*.pt"))) < 2:  # both workers training
            assert main_process.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        main_process.send_signal(sig)
        assert main_process.wait(timeout=30) == code
        stderr = main_process.stderr.read()
        assert sig == signal.SIGKILL or "interrupted" in stderr
        assert "leaked semaphore" not in stderr
        deadline = time.monotonic() + 10
        while _processes_tagged(tag) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _processes_tagged(tag) == []  # no worker left training
        assert not (out / "runs.csv").exists()  # no row for a stopped cell; checkpoints stay
        assert len(list((out / "checkpoints").glob("[!.]*.pt"))) == 2
    finally:
        for pid in _processes_tagged(tag):
            os.kill(pid, signal.SIGKILL)
        if main_process.poll() is None:
            main_process.kill()
