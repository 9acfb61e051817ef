"""tunebench: an evaluation-first harness for choosing how to adapt a language model."""

import logging

__version__ = "0.1.0"


class _DropMessage(logging.Filter):
    """Drops one known, harmless library message; everything else passes."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


# bitsandbytes tries to fetch an optional CPU kernel from a model hub at import and warns when
# it cannot; its built-in CPU path is used instead, so the warning tells users nothing.
logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
    _DropMessage("Failed to load CPU gemm_4bit_forward")
)
