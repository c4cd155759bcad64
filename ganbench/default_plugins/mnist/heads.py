"""The backbone as torchmetrics sees it: one forward pass per batch, shared by the metrics.

:class:`ImageEvaluator <.evaluation.ImageEvaluator>` injects a :class:`Head` into each
torchmetrics metric (FID's features, IS's logits) as its ``feature`` module; all heads read one
:class:`SharedForward`, so a batch fed to both metrics runs the backbone (and the coverage
classifier) once.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ganbench.default_plugins.mnist.backbones import Backbone, MnistClassifier


class SharedForward:
    """Runs the backbone (and the coverage classifier) once per batch, remembering the last batch,
    so the FID and IS heads fed the same tensor share one forward pass."""

    def __init__(self, backbone: Backbone, classifier: MnistClassifier) -> None:
        self.backbone = backbone
        self.classifier = classifier
        self._input: Tensor | None = None
        self._output: tuple[Tensor, Tensor, Tensor] | None = None

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        if x is not self._input or self._output is None:
            with torch.no_grad():
                features, logits = self.backbone.features_and_logits(x)
                if self.classifier is self.backbone:
                    class_logits = logits
                else:
                    class_logits = self.classifier.logits(x)
            self._input, self._output = x, (features, logits, class_logits)
        return self._output

    def clear(self) -> None:
        self._input = self._output = None


class Head(nn.Module):
    """The module injected into a torchmetrics metric: one output of :class:`SharedForward`, in
    float64. The backbone is held by a plain object, not as a submodule, so the metric's
    ``set_dtype(torch.float64)`` converts the statistics but leaves the backbone in float32."""

    def __init__(self, shared: SharedForward, index: int, num_features: int | None = None):
        super().__init__()
        self.shared = shared
        self.index = index
        if num_features is not None:
            self.num_features = num_features  # read by FrechetInceptionDistance

    def forward(self, x: Tensor) -> Tensor:
        return self.shared(x)[self.index].double()
