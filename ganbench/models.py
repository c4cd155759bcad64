"""Helpers shared by model plugins: weight initialisation schemes."""

from __future__ import annotations

import torch
from torch import Tensor, nn

INIT_SCHEMES = ("xavier", "he")


class ConvFeaturesHead(nn.Module):
    """A discriminator of the form ``self.conv`` -> flatten (the features feature matching
    uses) -> ``self.fc`` -> one logit per sample; subclasses build ``conv`` and ``fc``."""

    conv: nn.Module
    fc: nn.Module

    def features(self, x: Tensor) -> Tensor:
        return torch.flatten(self.conv(x), 1)

    def head(self, features: Tensor) -> Tensor:
        return self.fc(features).squeeze(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x))


def init_weights(module: nn.Module, scheme: str) -> nn.Module:
    """Re-initialise every conv and linear layer of ``module``; biases to zero.

    ``xavier``: Glorot uniform (Keras' default, so the article's models start as in Keras).
    ``he``: Kaiming uniform for ReLU-family activations (He et al. 2015).
    """
    if scheme not in INIT_SCHEMES:
        raise ValueError(f"Unknown init {scheme!r}. Available: {', '.join(INIT_SCHEMES)}")
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            if scheme == "xavier":
                nn.init.xavier_uniform_(m.weight)
            else:
                nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
    return module
