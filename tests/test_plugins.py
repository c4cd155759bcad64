"""Plugin discovery through real installed distributions (dist-info directories on sys.path)."""

import re
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from ganbench import hookspecs, plugins, registry
from ganbench.cli import main
from ganbench.default_plugins.losses import NonSaturating
from ganbench.errors import GanbenchError


def install_distribution(root: Path, dist: str, module: str, source: str, version="0.3.1"):
    """Lay out a distribution as pip installs it: the module plus a .dist-info with entry points."""
    (root / f"{module}.py").write_text(textwrap.dedent(source))
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    (info / "entry_points.txt").write_text(f"[ganbench]\n{module} = {module}\n")


ECHO_PLUGIN = """
    from ganbench.hookspecs import hookimpl
    from ganbench.default_plugins.losses import NonSaturating

    class Echo(NonSaturating):
        pass

    @hookimpl
    def register_losses(register):
        register("echo", Echo)
"""


@pytest.fixture
def site(tmp_path, monkeypatch):
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    yield root
    for name in [m for m in sys.modules if m.startswith("gb_test_")]:
        del sys.modules[name]


def test_installed_distribution_is_discovered(site, monkeypatch):
    install_distribution(site, "ganbench-echo", "gb_test_echo", ECHO_PLUGIN)
    monkeypatch.delenv("GANBENCH_LOAD_PLUGINS")
    plugins.reset()
    entry = registry.get_loss("echo")
    assert (entry.provider, entry.provider_version, entry.plugin) == (
        "ganbench-echo",
        "0.3.1",
        "gb_test_echo",
    )
    assert "wgan" in registry.names("loss")  # built-ins still there


def test_load_plugins_switch(site, monkeypatch):
    install_distribution(site, "ganbench-echo", "gb_test_echo", ECHO_PLUGIN)
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "")
    plugins.reset()
    assert "echo" not in registry.names("loss")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-other")
    plugins.reset()
    assert "echo" not in registry.names("loss")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-other, ganbench-echo")
    plugins.reset()
    assert "echo" in registry.names("loss")


def test_plugins_load_lazily_not_at_import():
    plugins.reset()
    import importlib

    import ganbench.registry

    importlib.reload(ganbench.registry)
    assert plugins._pm is None


def test_duplicate_name_names_both_providers(site, monkeypatch):
    install_distribution(
        site,
        "ganbench-dup",
        "gb_test_dup",
        """
        from ganbench.hookspecs import hookimpl
        from ganbench.default_plugins.losses import WGAN

        @hookimpl
        def register_losses(register):
            register("wgan", WGAN)
    """,
    )
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-dup")
    plugins.reset()
    with pytest.raises(GanbenchError) as err:
        registry.names("loss")
    assert str(err.value) == (
        "Loss 'wgan' is registered twice: by ganbench (ganbench.default_plugins.losses) "
        "and by ganbench-dup (gb_test_dup)"
    )


def test_unknown_name_suggests_closest_and_lists_available():
    with pytest.raises(GanbenchError) as err:
        registry.get_loss("wgn")
    assert str(err.value) == (
        "Unknown loss 'wgn'. Did you mean 'wgan'? "
        "Available: feature-matching, minimax, non-saturating, wgan"
    )
    available = "grid25, mnist, ring8, stacked-mnist"
    with pytest.raises(GanbenchError, match=rf"^Unknown dataset 'zzz'\. Available: {available}$"):
        registry.get_dataset("zzz")


def test_broken_plugin_is_reported_and_skipped(site, monkeypatch, capsys):
    install_distribution(site, "ganbench-broken", "gb_test_broken", "import no_such_module\n")
    install_distribution(site, "ganbench-echo", "gb_test_echo", ECHO_PLUGIN)
    monkeypatch.delenv("GANBENCH_LOAD_PLUGINS")
    plugins.reset()
    assert "echo" in registry.names("loss")
    (broken,) = plugins.broken_plugins()
    assert broken.distribution == "ganbench-broken"
    assert "ModuleNotFoundError" in broken.error and "no_such_module" in broken.error
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "ganbench-broken" in out and "BROKEN" in out and "ganbench-echo" in out


def test_misspelled_hook_is_caught_by_check_pending(site, monkeypatch):
    install_distribution(
        site,
        "ganbench-typo",
        "gb_test_typo",
        """
        from ganbench.hookspecs import hookimpl

        @hookimpl
        def register_loss(register):
            pass
    """,
    )
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-typo")
    plugins.reset()
    (broken,) = plugins.broken_plugins()
    assert "register_loss" in broken.error


def test_cli_list_shows_every_kind_with_provider(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for heading in ("losses:", "generators:", "discriminators:", "datasets:"):
        assert heading in out
    assert "wgan" in out and "ganbench.default_plugins.losses" in out


def test_every_hook_is_documented():
    for name in (
        "register_losses",
        "register_generators",
        "register_discriminators",
        "register_datasets",
    ):
        doc = getattr(hookspecs, name).__doc__
        assert doc and "register(name" in doc and "Example" in doc, name


# ---- isolation: a failing plugin or loss fails alone -------------------------------------------

FAST_RUN = ["--steps", "3", "--batch-size", "8", "--fid-samples", "0", "--log-every", "1"]
BROKEN_IMPORT = "ModuleNotFoundError: No module named 'no_such_module'"


def test_broken_plugin_is_named_and_skipped_by_every_command(
    site, monkeypatch, capsys, tiny_mnist, tmp_path
):
    install_distribution(site, "ganbench-ragan", "gb_test_ragan", "import no_such_module\n")
    install_distribution(site, "ganbench-echo", "gb_test_echo", ECHO_PLUGIN)
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-ragan,ganbench-echo")
    plugins.reset()
    assert main(["list"]) == 0
    captured = capsys.readouterr()
    assert f"ganbench: plugin ganbench-ragan failed to load: {BROKEN_IMPORT}" in captured.err
    assert "echo" in captured.out and "ragan" not in captured.out
    assert main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"ganbench-ragan .* BROKEN: {re.escape(BROKEN_IMPORT)}", out)
    assert re.search(r"ganbench-echo .* ok", out)

    data = ["--data-dir", str(tiny_mnist), *FAST_RUN]
    out_dir = tmp_path / "ok"
    assert main(["run", "--loss", "echo", "--out", str(out_dir), *data]) == 0
    runs = pd.read_csv(out_dir / "runs.csv")
    assert list(runs["status"]) == ["ok"] and list(runs["loss_provider"]) == ["ganbench-echo"]
    capsys.readouterr()

    out_dir = tmp_path / "broken"
    assert main(["run", "--loss", "ragan", "--out", str(out_dir), *data]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == (
        "ganbench: error: Loss 'ragan' is not available because plugin ganbench-ragan "
        f"failed to load: {BROKEN_IMPORT} (see `ganbench plugins`)"
    )
    assert "Traceback" not in err and not (out_dir / "runs.csv").exists()


def test_a_broken_plugin_is_matched_by_its_entry_point_name_too(site, monkeypatch):
    install_distribution(site, "gan-extras", "ragan", "import no_such_module\n")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "gan-extras")
    plugins.reset()
    with pytest.raises(GanbenchError) as err:
        registry.get_loss("ragan")
    assert str(err.value).startswith(
        "Loss 'ragan' is not available because plugin gan-extras failed to load: "
    )
    assert "ragan" not in sys.modules


def test_unknown_name_lists_broken_plugins_that_may_provide_it(site, monkeypatch):
    install_distribution(site, "ganbench-extra", "gb_test_extra", "import no_such_module\n")
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-extra")
    plugins.reset()
    with pytest.raises(GanbenchError) as err:
        registry.get_loss("ragan")
    assert str(err.value) == (
        "Unknown loss 'ragan'. Did you mean 'wgan'? "
        "Available: feature-matching, minimax, non-saturating, wgan. "
        f"Plugins that failed to load (one may provide it): ganbench-extra ({BROKEN_IMPORT})"
    )


def test_plugin_whose_register_hook_raises_is_broken_and_the_rest_work(site, monkeypatch, capsys):
    install_distribution(
        site,
        "ganbench-faulty",
        "gb_test_faulty",
        """
        from ganbench.hookspecs import hookimpl

        @hookimpl
        def register_losses(register):
            register("faulty", 3)
    """,
    )
    monkeypatch.setenv("GANBENCH_LOAD_PLUGINS", "ganbench-faulty")
    plugins.reset()
    assert registry.names("loss") == ["feature-matching", "minimax", "non-saturating", "wgan"]
    error = (
        "register_losses raised TypeError: register('faulty', factory): factory is not callable: 3"
    )
    (broken,) = plugins.broken_plugins()
    assert (broken.distribution, broken.error) == ("ganbench-faulty", error)
    assert f"ganbench: plugin ganbench-faulty failed to load: {error}" in capsys.readouterr().err
    with pytest.raises(GanbenchError) as err:
        registry.get_loss("faulty")
    assert str(err.value) == (
        "Loss 'faulty' is not available because plugin ganbench-faulty failed to load: "
        f"{error} (see `ganbench plugins`)"
    )


class Flaky(NonSaturating):
    """Raises on its third discriminator step."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def d_loss(self, D, real, fake):
        self.calls += 1
        if self.calls == 3:
            raise RuntimeError("exploded at D step 3")
        return super().d_loss(D, real, fake)


def test_a_loss_raising_during_training_fails_its_own_cell_only(
    add_plugin, tiny_mnist, tmp_path, capsys
):
    add_plugin("register_losses", "flaky", Flaky)
    out = tmp_path / "res"
    args = ["run", "--loss", "minimax", "--loss", "flaky", "--loss", "non-saturating"]
    args += ["--data-dir", str(tiny_mnist), "--out", str(out), *FAST_RUN]
    assert main(args) == 1  # after finishing the other cells
    err = capsys.readouterr().err
    assert "cell flaky seed 0 failed: RuntimeError: exploded at D step 3" in err
    assert err.splitlines()[-1].startswith("ganbench: 1 cell(s) failed: flaky seed 0")
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["loss"]) == ["minimax", "flaky", "non-saturating"]
    assert list(runs["status"]) == ["ok", "error", "ok"]
    flaky = runs.iloc[1]
    assert (flaky.error, flaky.loss_provider) == (
        "RuntimeError: exploded at D step 3",
        "ganbench-test",
    )
    curves = pd.read_csv(out / "curves.csv")
    assert set(curves["run_id"]) == {runs.iloc[0].run_id, runs.iloc[2].run_id}  # both finished
    assert (curves.groupby("run_id")["step"].max() == 3).all()
    assert (out / runs.iloc[2].samples_png).exists()
    summary = pd.read_csv(out / "summary.csv").set_index("loss")
    assert (summary.loc["flaky", "n_ok"], summary.loc["non-saturating", "n_ok"]) == (0, 1)


class BrokenInit(NonSaturating):
    def __init__(self):
        raise RuntimeError("needs a GPU kernel")


class ZeroCritic(NonSaturating):
    defaults = NonSaturating.defaults.replace(n_critic=0)


@pytest.mark.parametrize(
    ("loss", "extra", "message"),
    [
        (
            "broken-init",
            [],
            "Loss 'broken-init' (from ganbench-test) cannot be built: RuntimeError: needs a GPU "
            "kernel",
        ),
        (
            "zero-critic",
            [],
            "Loss 'zero-critic' (from ganbench-test) has invalid hyperparameters: n_critic must be "
            "an integer >= 1, got 0",
        ),
        ("minimax", ["--beta1", "1.5"], "--beta1 must be a number in [0, 1), got 1.5"),
    ],
)
def test_a_loss_that_cannot_be_built_or_has_bad_values_stops_before_training(
    add_plugin, tiny_mnist, tmp_path, capsys, loss, extra, message
):
    add_plugin("register_losses", "broken-init", BrokenInit)
    add_plugin("register_losses", "zero-critic", ZeroCritic)
    out = tmp_path / "res"
    args = ["run", "--loss", "non-saturating", "--loss", loss, *extra]
    assert main([*args, "--data-dir", str(tiny_mnist), "--out", str(out), *FAST_RUN]) == 2
    err = capsys.readouterr().err
    assert err.splitlines()[-1] == f"ganbench: error: {message}"
    assert not (out / "runs.csv").exists()
