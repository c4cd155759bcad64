"""Plugin discovery through real installed distributions (dist-info directories on sys.path)."""

import sys
import textwrap
from pathlib import Path

import pytest

from ganbench import hookspecs, plugins, registry
from ganbench.cli import main
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
    with pytest.raises(
        GanbenchError, match=r"^Unknown dataset 'zzz'\. Available: grid25, mnist, ring8$"
    ):
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
