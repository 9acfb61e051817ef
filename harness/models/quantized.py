"""4-bit linear layers (bitsandbytes, as QLoRA loads them) that compute as autocast's linear does.

Under ``torch.autocast`` an ``nn.Linear`` casts its input to the autocast dtype and returns its
output in that dtype, so the ops that follow it run in bf16 too. bitsandbytes' ``Linear4bit`` is
no op autocast knows: it casts its input to its own ``compute_dtype`` and its result back to the
input's dtype (bitsandbytes 0.50, ``nn/modules.py``, ``Linear4bit.forward``:
``bnb.matmul_4bit(x, ...).to(inp_dtype)``). In a Llama model the projections' inputs are the
fp32 outputs of the RMS norms and of the residual stream, so every 4-bit layer of a QLoRA
model handed its product back in fp32, and everything after it ran in fp32 with a cast per
layer: rotary embedding, attention, SiLU and the gate product, PEFT's defensive ``clone`` of
the base layer's output and the LoRA sum. On the embedded model in bf16 that made a QLoRA
candidate's scoring and decoding markedly slower than LoRA's on the same base
(benchmarks/README.md, "QLoRA on the CPU").

:class:`AutocastLinear4bit` gives the 4-bit layer autocast's behaviour: when autocast is on in
the layer's compute dtype, the input is cast to it first, so the product stays in that dtype.
The 4-bit product itself is unchanged (bitsandbytes computed it in ``compute_dtype`` already);
only the dtype of the ops after it changes, to what the same model without quantization runs
under autocast. Outside autocast, or with another compute dtype, the layer is bitsandbytes'
own.
"""

from __future__ import annotations

import torch
from bitsandbytes.nn import Linear4bit


class AutocastLinear4bit(Linear4bit):
    """``Linear4bit`` whose output is in the autocast dtype when autocast runs in its
    ``compute_dtype`` (as ``nn.Linear``'s is), instead of the input's dtype."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device.type
        if (torch.is_autocast_enabled(device)
                and self.compute_dtype == torch.get_autocast_dtype(device)):
            x = x.to(self.compute_dtype)
        return super().forward(x)


def compute_as_autocast(module: torch.nn.Module) -> bool:
    """Make ``module``, a bitsandbytes ``Linear4bit``, an :class:`AutocastLinear4bit` (its
    weights and quantization state untouched); returns whether it changed."""
    if type(module) is not Linear4bit:
        return False
    module.__class__ = AutocastLinear4bit
    return True
