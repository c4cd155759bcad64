"""Every plugin hook has a test here (``test_hook_<hook>...``) and is documented, with a complete
example that works, in docs/plugins.md -- checked by meta-tests over the hookspecs themselves
(as datasette does), so a new hook cannot ship untested or undocumented."""

import inspect
import re
import types
from pathlib import Path

import pandas as pd
import pytest
import torch

from ganbench import hookspecs, plugins, registry
from ganbench.datasets import Dataset, EvalOptions
from ganbench.default_plugins.losses import NonSaturating
from ganbench.runner import RunSpec, run
from ganbench.testing import (
    TinyDiscriminator,
    TinyGenerator,
    check_dataset,
    check_discriminator,
    check_generator,
    check_loss,
    check_model_pair,
)

HOOKS = sorted(name for name, value in vars(hookspecs).items() if hasattr(value, "ganbench_spec"))
DOC = Path(__file__).parents[1] / "docs" / "plugins.md"


class HalfNonSaturating(NonSaturating):
    """The non-saturating loss with G's loss halved."""

    def g_loss(self, D, real, fake):
        return 0.5 * super().g_loss(D, real, fake)


class Stripes(Dataset):
    """8x8 images, each with one white row."""

    sample_shape = (1, 8, 8)
    default_model = "tiny"
    default_steps = 2

    def __len__(self):
        return 8

    def sampler(self, batch_size, generator, device):
        def next_batch():
            rows = torch.randint(0, 8, (batch_size,), generator=generator)
            images = torch.zeros(batch_size, 1, 8, 8)
            images[torch.arange(batch_size), 0, rows, :] = 1.0
            return images.to(device)

        return next_batch


# ---- one test per hook -------------------------------------------------------------------------


def test_hook_register_losses(add_plugin):
    add_plugin("register_losses", "half-ns", HalfNonSaturating, "ganbench-half")
    entry = registry.get_loss("half-ns")
    assert (entry.provider, entry.factory) == ("ganbench-half", HalfNonSaturating)
    assert "non-saturating" in registry.names("loss")  # next to the built-ins
    check_loss("half-ns")


def test_hook_register_generators(add_plugin):
    add_plugin("register_generators", "tiny", TinyGenerator, "ganbench-tiny")
    entry = registry.get_generator("tiny")
    assert (entry.provider, entry.factory) == ("ganbench-tiny", TinyGenerator)
    check_generator("tiny")


def test_hook_register_discriminators(add_plugin):
    add_plugin("register_discriminators", "tiny", TinyDiscriminator, "ganbench-tiny")
    entry = registry.get_discriminator("tiny")
    assert (entry.provider, entry.factory) == ("ganbench-tiny", TinyDiscriminator)
    check_discriminator("tiny", (1, 8, 8))


def test_hook_register_datasets_in_a_run_with_plugin_models_and_loss(add_plugin, tmp_path):
    add_plugin("register_datasets", "stripes", Stripes, "ganbench-stripes")
    add_plugin("register_generators", "tiny", TinyGenerator, "ganbench-tiny")
    add_plugin("register_discriminators", "tiny", TinyDiscriminator, "ganbench-tiny")
    add_plugin("register_losses", "half-ns", HalfNonSaturating, "ganbench-half")
    assert registry.get_dataset("stripes").provider == "ganbench-stripes"
    check_dataset("stripes")
    check_model_pair("tiny")
    spec = RunSpec(
        losses=("half-ns", "minimax"),
        dataset="stripes",
        batch_size=4,
        out=tmp_path,
        eval=EvalOptions(fid_samples=0),
        progress=False,
    )
    run(spec, log=lambda message: None)
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["status"]) == ["ok", "ok"]
    assert list(runs["loss_provider"]) == ["ganbench-half", "ganbench"]
    assert set(runs["dataset_provider"]) == {"ganbench-stripes"}
    assert set(runs["generator"]) == set(runs["discriminator"]) == {"tiny"}  # default_model
    assert set(runs["generator_provider"]) == {"ganbench-tiny"}
    assert set(runs["steps"]) == {2}  # default_steps


# ---- meta-tests --------------------------------------------------------------------------------


def test_the_hookspecs_are_found_and_each_is_called_by_the_registry():
    assert HOOKS == sorted(registry.KINDS.values())


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_have_tests(hook):
    tests = [name for name in globals() if name.startswith(f"test_hook_{hook}")]
    assert tests, f"hook {hook} has no test_hook_{hook}* test in {__name__}"


def signature(hook: str) -> str:
    return f"{hook}({', '.join(inspect.signature(getattr(hookspecs, hook)).parameters)})"


def doc_section(heading_text: str) -> str | None:
    """The markdown under the heading that contains ``heading_text``, up to the next heading
    of the same or a higher level."""
    lines = DOC.read_text().splitlines()
    for i, line in enumerate(lines):
        match = re.match(r"^(#+) ", line)
        if match and heading_text in line:
            level = len(match.group(1))
            body = []
            for following in lines[i + 1 :]:
                deeper = re.match(r"^(#+) ", following)
                if deeper and len(deeper.group(1)) <= level:
                    break
                body.append(following)
            return "\n".join(body)
    return None


def example(hook: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", doc_section(signature(hook)) or "", re.DOTALL)
    return next((b for b in blocks if f"def {signature(hook)}:" in b), "")


@pytest.mark.parametrize("hook", HOOKS)
def test_plugin_hooks_are_documented(hook):
    assert signature(hook) == f"{hook}(register)"
    assert doc_section(f"`{signature(hook)}`") is not None, (
        f"docs/plugins.md has no heading with `{signature(hook)}`"
    )
    code = example(hook)
    assert "@hookimpl" in code and "register(" in code, (
        f"the {hook} section of docs/plugins.md has no complete example defining "
        f"`def {signature(hook)}:`"
    )


CHECKS = {
    "loss": check_loss,
    "generator": check_generator,
    "discriminator": lambda name: check_discriminator(name, (1, 28, 28)),
    "dataset": check_dataset,
}


@pytest.mark.parametrize("hook", HOOKS)
def test_documented_examples_work_and_conform(hook):
    kind = next(k for k, h in registry.KINDS.items() if h == hook)
    before = set(registry.names(kind))
    module = types.ModuleType(f"docs_example_{hook}")
    exec(compile(example(hook), f"docs/plugins.md ({hook})", "exec"), module.__dict__)
    plugins.add_plugin(module, module.__name__, "docs-example")
    added = set(registry.names(kind)) - before
    assert added, f"the {hook} example registers nothing"
    for name in added:
        CHECKS[kind](name)


def test_documented_generator_and_discriminator_examples_form_a_pair():
    for hook in ("register_generators", "register_discriminators"):
        module = types.ModuleType(f"docs_example_{hook}")
        exec(example(hook), module.__dict__)
        plugins.add_plugin(module, module.__name__, "docs-example")
    check_model_pair("mlp-mnist")
