"""Helpers shared by model plugins: weight initialisation schemes."""

from __future__ import annotations

from torch import nn

INIT_SCHEMES = ("xavier", "he")


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
