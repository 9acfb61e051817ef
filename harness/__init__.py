"""tunebench: an evaluation-first harness for choosing how to adapt a language model."""

__version__ = "0.1.0"
