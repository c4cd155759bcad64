"""ganbench: a plugin-based benchmark harness for GAN objectives."""

__version__ = "0.1.0"
