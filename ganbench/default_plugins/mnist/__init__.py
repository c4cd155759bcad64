"""The MNIST dataset plugin: data, FID/IS backbones and the image evaluator.

ganbench's core reaches it only as it reaches any plugin: through the ``register_datasets`` hook
(:mod:`.plugin`) and the :class:`~ganbench.datasets.Dataset` / ``Evaluator`` contract.

- :mod:`.plugin`: the ``mnist`` dataset and its registration;
- :mod:`.data`: MNIST as uint8 tensors, from ``--data-dir``, the cache or a download
  (:mod:`.sources`);
- :mod:`.backbones`: the feature extractors FID and IS use (:mod:`.classifier`,
  :mod:`.inception`);
- :mod:`.evaluation`: :class:`~.evaluation.ImageEvaluator`, FID/IS/KID and the k-NN metrics
  (its torchmetrics heads: :mod:`.heads`; KID and the k-NN metrics: :mod:`.manifold`).

Importing this package imports none of them.
"""

import sys
from collections.abc import Callable

Log = Callable[[str], None]  # where progress and provenance lines go


def log_stderr(message: str) -> None:
    """The default :data:`Log`: one line on stderr, flushed."""
    print(message, file=sys.stderr, flush=True)
