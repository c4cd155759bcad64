"""ganbench run end to end, on tiny IDX data the test writes (seconds, no evaluation)."""

import pandas as pd
import pytest
import torch

from ganbench import registry
from ganbench.cli import main
from ganbench.default_plugins.dcgan_mnist import WGAN_STEPS
from ganbench.defaults import with_defaults
from ganbench.devices import auto_precision
from ganbench.spec import RunSpec

FAST = ["--steps", "4", "--batch-size", "16", "--fid-samples", "0", "--log-every", "2"]


def run(tiny_mnist, out, *args):
    return main(["run", "--data-dir", str(tiny_mnist), "--out", str(out), *FAST, *args])


def test_run_writes_runs_curves_summary_and_grids(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    # the pair's own settings (the default, --defaults tuned: tests/test_tuned_defaults.py)
    args = ("--loss", "wgan", "--loss", "minimax", "--seed", "3", "--defaults", "pair")
    assert run(tiny_mnist, out, *args) == 0
    runs = pd.read_csv(out / "runs.csv")
    required = (
        "loss, generator, discriminator, dataset, seed, steps, batch_size, n_critic, "
        "optimizer_g, optimizer_d, lr_g, lr_d, status, train_images_per_s, d_step_ms, "
        "g_step_ms, wall_s, final_d_loss, final_g_loss, torch_version, ganbench_version"
    )
    assert set(required.split(", ")) <= set(runs.columns)
    assert list(runs["loss"]) == ["wgan", "minimax"]
    assert list(runs["status"]) == ["ok", "ok"]
    wgan, minimax = runs.iloc[0], runs.iloc[1]
    assert (wgan.n_critic, wgan.optimizer_d, wgan.lr_d) == (5, "rmsprop", 5e-5)
    # the default pair (dcgan-lite-dense-ttur) gives the logistic losses DCGAN's Adam at lr 1e-3
    # for G and 2e-4 for D
    assert (minimax.n_critic, minimax.optimizer_g, minimax.lr_g, minimax.lr_d, minimax.beta1) == (
        1,
        "adam",
        1e-3,
        2e-4,
        0.5,
    )
    assert set(runs["generator"]) == {"dcgan-lite-dense-ttur"}
    assert (runs["seed"] == 3).all() and (runs["steps"] == 4).all()
    assert (runs["train_images_per_s"] > 0).all()
    assert (runs["gflop_per_step"] > 0).all()  # counted with torch.utils.flop_counter
    curves = pd.read_csv(out / "curves.csv")
    assert list(curves.columns) == ["run_id", "step", "metric", "value"]
    assert set(curves["metric"]) == {"d_loss", "g_loss", "wall_s", "train_gflop"}
    gflop = curves[(curves.run_id == wgan.run_id) & (curves.metric == "train_gflop")]["value"]
    assert gflop.iloc[1] == pytest.approx(2 * gflop.iloc[0]) and gflop.iloc[0] > 0
    assert sorted(curves[curves.run_id == wgan.run_id]["step"].unique()) == [2, 4]
    for png in runs["samples_png"]:
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = pd.read_csv(out / "summary.csv")
    assert set(summary["loss"]) == {"wgan", "minimax"}
    comparisons = pd.read_csv(out / "comparisons.csv")  # no FID here: the pair, no statistics
    assert list(zip(comparisons.loss_a, comparisons.loss_b, strict=True)) == [("wgan", "minimax")]
    assert (comparisons.n_a[0], comparisons.n_b[0], bool(comparisons.significant[0])) == (
        0,
        0,
        False,
    )
    printed = capsys.readouterr().out
    assert "wgan" in printed and "minimax" in printed and "img/s" in printed
    assert "comparisons.csv" in printed and "loss a" not in printed  # no FIDs: nothing tested


def test_new_runs_add_rows_and_never_destroy_earlier_ones(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    first = pd.read_csv(out / "runs.csv")
    assert run(tiny_mnist, out, "--loss", "non-saturating", "--seed", "1") == 0
    both = pd.read_csv(out / "runs.csv")
    assert len(both) == 2
    pd.testing.assert_frame_equal(both.iloc[:1][first.columns], first, check_dtype=False)


def test_same_seed_same_result_on_cpu(tiny_mnist, tmp_path):
    fm = ("--loss", "feature-matching", "--defaults", "pair")  # 4 G steps: 2 logged points
    for name in ("a", "b"):
        assert run(tiny_mnist, tmp_path / name, *fm, "--seed", "7") == 0

    def losses(name):
        curves = pd.read_csv(tmp_path / name / "curves.csv")
        return curves[curves.metric.isin(["d_loss", "g_loss"])]["value"].tolist()

    assert len(losses("a")) == 4 and losses("a") == losses("b")
    assert run(tiny_mnist, tmp_path / "c", *fm, "--seed", "8") == 0
    assert losses("c") != losses("a")


def test_overrides_are_applied_and_recorded(tiny_mnist, tmp_path):
    out = tmp_path / "res"
    args = [
        "--loss",
        "wgan",
        "--lr-d",
        "0.001",
        "--n-critic",
        "2",
        "--optimizer-g",
        "adam",
        "--beta1",
        "0.5",
        "--loss-param",
        "clip=0.05",
        "--defaults",  # over the pair's settings, whatever the study has tuned
        "pair",
    ]
    assert run(tiny_mnist, out, *args) == 0
    row = pd.read_csv(out / "runs.csv").iloc[0]
    assert (row.lr_d, row.lr_g, row.n_critic, row.optimizer_g, row.optimizer_d, row.beta1) == (
        0.001,
        5e-5,
        2,
        "adam",
        "rmsprop",
        0.5,
    )
    assert row.loss_params == '{"clip": 0.05}'


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--loss", "wgn"], "Unknown loss 'wgn'. Did you mean 'wgan'? Available: "),
        (["--loss", "wgan", "--generator", "dcgan"], "Unknown generator 'dcgan'. Did you mean"),
        (["--loss", "wgan", "--steps", "0"], "--steps must be a positive number, got 0"),
        (["--loss", "wgan", "--batch-size", "1000"], "--batch-size 1000 is larger than dataset"),
        (["--loss", "wgan", "--optimizer", "adamw"], "Unknown optimizer 'adamw'. Available: adam"),
        (["--loss", "wgan", "--lr", "-1"], "--lr must be a positive number, got -1.0"),
        (
            ["--loss", "wgan", "--precision", "fp8"],
            "Unknown precision 'fp8'. Available: auto, fp32, bf16",
        ),
        ([], "No loss given. Use --loss NAME. Available: feature-matching"),
    ],
)
def test_bad_input_is_one_line_exit_2_before_training(tiny_mnist, tmp_path, capsys, args, message):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, *args) == 2
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("ganbench: error: ")]
    assert len(errors) == 1 and message in errors[0]
    assert "Traceback" not in err
    assert not (out / "runs.csv").exists()


def test_cuda_without_gpu_is_a_clear_error(tiny_mnist, tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert run(tiny_mnist, tmp_path / "r", "--loss", "wgan", "--device", "cuda") == 2
    assert "Device 'cuda' requested but no CUDA GPU is available" in capsys.readouterr().err


def test_eval_every_adds_fid_points_to_the_curves(tiny_mnist, tmp_path, monkeypatch):
    """--eval-every on tiny data: a stub evaluator counts its calls and what it scored."""
    from ganbench.default_plugins.mnist.plugin import Mnist

    calls = []

    class Stub:
        metrics = ("fid",)

        def __init__(self, options):
            self.n_samples = options.fid_samples

        def reference(self):
            return {"fid": 0.0}

        def score(self, samples):
            calls.append((self.n_samples, tuple(samples.shape)))
            return {"fid": float(samples.mean()), "backbone": "stub"}

    monkeypatch.setattr(Mnist, "make_evaluator", lambda self, options: Stub(options))
    out = tmp_path / "res"
    args = ["--loss", "minimax", "--fid-samples", "40", "--eval-every", "2", "--ema-decay", "0"]
    args += ["--eval-every-samples", "10", "--steps", "4"]
    assert (
        main(
            [
                "run",
                "--data-dir",
                str(tiny_mnist),
                "--out",
                str(out),
                "--batch-size",
                "16",
                "--log-every",
                "2",
                *args,
            ]
        )
        == 0
    )
    curves = pd.read_csv(out / "curves.csv")
    fid = curves[curves.metric == "fid"]
    assert list(fid["step"]) == [2, 4]
    # two curve points on 10 samples, then the final score on 40
    assert calls == [(10, (10, 1, 28, 28)), (10, (10, 1, 28, 28)), (40, (40, 1, 28, 28))]
    assert pd.read_csv(out / "runs.csv").iloc[0]["fid"] > 0


@pytest.mark.parametrize(
    ("losses", "generator", "expected"),
    [
        (("minimax", "non-saturating"), None, 2400),  # the default pair's own budget
        (("wgan", "minimax"), None, 2400),  # dcgan-lite-dense-ttur: one budget for every objective
        (("minimax",), "dcgan-lite-dense", 3000),  # a lite pair without a setup of its own
        (("minimax",), "dcgan-mnist-bn", 300),  # mnist's default on a pair without its own
        (("wgan", "minimax"), "dcgan-mnist-bn", WGAN_STEPS),  # every cell gets what wgan needs
        (("wgan",), "dcgan-mnist", 300),  # the article's pair declares no extra budget
    ],
)
def test_default_budget_is_shared_and_covers_the_slowest_objective(losses, generator, expected):
    spec = with_defaults(RunSpec(losses=losses, generator=generator))
    assert spec.steps == expected
    assert with_defaults(RunSpec(losses=losses, generator=generator, steps=7)).steps == 7


@pytest.mark.parametrize(
    ("native_bf16", "dataset", "generator", "expected"),
    [
        (True, "mnist", "dcgan-mnist-bn", "bf16"),  # validated there (README, Performance)
        (False, "mnist", "dcgan-mnist-bn", "fp32"),  # emulated bf16 would be slower
        (True, "mnist", None, "fp32"),  # the default pair, dcgan-lite-dense-ttur: not validated
        (True, "mnist", "dcgan-mnist", "fp32"),  # nor the article's pair
        (True, "ring8", None, "fp32"),  # not validated on the 2-D toys
    ],
)
def test_auto_precision(monkeypatch, native_bf16, dataset, generator, expected):
    from ganbench import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: native_bf16)
    spec = with_defaults(RunSpec(losses=("wgan",), dataset=dataset, generator=generator))
    assert spec.precision == expected
    explicit = with_defaults(RunSpec(losses=("wgan",), dataset=dataset, precision="fp32"))
    assert explicit.precision == "fp32"


def test_auto_precision_and_its_reason_come_from_one_decision(monkeypatch):
    """The logged reason is the choice's: on a GPU, auto is fp32 and says why, even for the
    pair whose CPU precision is bf16 (two functions once decided apart and disagreed)."""
    from ganbench import devices

    monkeypatch.setattr(devices, "cpu_has_native_bf16", lambda: True)
    mnist = registry.get_dataset("mnist").factory()
    cpu = auto_precision(mnist, torch.device("cpu"), "dcgan-mnist-bn")
    gpu = auto_precision(mnist, torch.device("cuda"), "dcgan-mnist-bn")
    assert cpu == ("bf16", "the dataset's validated CPU precision is bf16")
    assert gpu[0] == "fp32" and "host-bound" in gpu[1] and "bf16 is" not in gpu[1]


def test_auto_precision_is_recorded_resolved(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "res"
    assert run(tiny_mnist, out, "--loss", "minimax") == 0
    expected = auto_precision(registry.get_dataset("mnist").factory(), torch.device("cpu"))[0]
    assert list(pd.read_csv(out / "runs.csv")["precision"]) == [expected]
    assert f"precision {expected} (--precision auto on cpu" in capsys.readouterr().err
    # an explicit --precision of the same value is the same cell: finished, not retrained
    assert run(tiny_mnist, out, "--loss", "minimax", "--precision", expected) == 0
    assert len(pd.read_csv(out / "runs.csv")) == 1


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--compile", "fast"], "Unknown compile mode 'fast'. Available: default, reduce-overhead"),
    ],
)
def test_bad_compile_is_one_line(tiny_mnist, tmp_path, capsys, extra, message):
    assert run(tiny_mnist, tmp_path / "res", "--loss", "wgan", *extra) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compile_compiles_both_models_and_records_the_mode(tiny_mnist, tmp_path, monkeypatch):
    """The wiring only (torch.compile itself is torch's): every cell's G and D are compiled in
    place with the mode asked for, and rows say which."""
    calls = []
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, **kw: calls.append((type(self).__name__, kw))
    )
    out = tmp_path / "res"
    args = ["--loss", "minimax", "--compile", "reduce-overhead", "--generator", "dcgan-mnist-bn"]
    assert run(tiny_mnist, out, *args) == 0
    assert calls == [
        ("DcganMnistBnGenerator", {"mode": "reduce-overhead"}),
        ("DcganMnistDiscriminator", {"mode": "reduce-overhead"}),
    ]
    assert list(pd.read_csv(out / "runs.csv")["compile"]) == ["reduce-overhead"]


def test_the_default_out_is_ignored_by_git_so_a_fresh_clone_trains_and_stays_clean():
    import subprocess
    from pathlib import Path

    from ganbench import arguments, cli, runner

    assert arguments.DEFAULT_OUT == runner.DEFAULT_OUT and not runner.DEFAULT_OUT.startswith(
        "results"
    )
    assert RunSpec(losses=("minimax",)).out == Path(runner.DEFAULT_OUT)
    assert cli.run_spec(cli.build_parser().parse_args(["run"])).out == Path(runner.DEFAULT_OUT)
    root = Path(__file__).resolve().parents[1]
    if not (root / ".git").exists():
        pytest.skip("not a git checkout")
    for name in ("runs.csv", "samples/x.png", "checkpoints/x.pt"):
        probe = subprocess.run(
            ["git", "check-ignore", "-q", f"{runner.DEFAULT_OUT}/{name}"], cwd=root
        )
        assert probe.returncode == 0, name
