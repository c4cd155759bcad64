"""The ``mnist`` dataset: MNIST digits, scored by :class:`~.evaluation.ImageEvaluator`.

A built-in plugin (:data:`ganbench.plugins.DEFAULT_PLUGINS`); its data and evaluator modules are
imported when the dataset is loaded or scored, not when the plugin is registered.
"""

from __future__ import annotations

from pathlib import Path
from types import MappingProxyType

from ganbench.datasets import EvalOptions, Evaluator, ImageTensorDataset
from ganbench.default_plugins.mnist.backbones import BACKBONES
from ganbench.hookspecs import hookimpl


class Mnist(ImageTensorDataset):
    """MNIST digits, 60k training images (1, 28, 28); evaluated against the 10k test split."""

    sample_shape = (1, 28, 28)
    # The default pair and the named budgets, and why (each choice's measurements, with their
    # dates and commands, are in docs/ablation.md, docs/ablation-lite.md and docs/findings.md):
    # dcgan-lite-dense-ttur (dcgan-lite with a Dense 1024 layer in G and D, D's Adam at 2e-4) is
    # the default; 300 steps is the budget of pairs that declare none of their own (the lite
    # pairs declare theirs).
    default_model = "dcgan-lite-dense-ttur"
    default_steps = 300
    # --budget long: the Lucic et al. 2018 MNIST pair (dcgan-lite-lucic) for 5 epochs
    budgets = MappingProxyType(
        {"long": MappingProxyType({"generator": "dcgan-lite-lucic", "epochs": 5})}
    )
    # bf16 autocast is validated (the fp32 FIDs within seed noise, and faster) on dcgan-mnist-bn
    # only: results/bf16-validation; on the lite pairs it was not (results/bf16-validation-lite,
    # -ttur; README "Performance"), so they train in fp32
    cpu_precision = "bf16"
    cpu_precision_pairs = ("dcgan-mnist-bn",)
    backbones = BACKBONES  # FID/IS on the mnist-classifier (default) or InceptionV3

    def load(self, data_dir: Path | None = None) -> None:
        if self.train_images is not None:
            return
        from ganbench.default_plugins.mnist.data import load_mnist

        self.arrays = load_mnist(data_dir)
        self.train_images = self.arrays.train_images
        self.source = self.arrays.source
        self.data_id = self.arrays.checksum

    def make_evaluator(self, options: EvalOptions) -> Evaluator | None:
        from ganbench.default_plugins.mnist.evaluation import ImageEvaluator
        from ganbench.files import cache_dir

        a = self.arrays
        return ImageEvaluator(
            backbone=options.backbone,
            train_images=a.train_images,
            train_labels=a.train_labels,
            test_images=a.test_images,
            test_labels=a.test_labels,
            data_checksum=a.checksum,
            fid_samples=options.fid_samples,
            device=options.device,
            cache_dir=cache_dir(),
            inception_weights=options.inception_weights,
            kid_subsets=options.kid_subsets,
            kid_subset_size=options.kid_subset_size,
            manifold_metrics=options.manifold_metrics,
        )


@hookimpl
def register_datasets(register):
    register("mnist", Mnist)
