"""The multiply-accumulates of an opaque module, counted once at import (torch; no Qt).

Shape inference never runs torch, so an opaque module node cannot count its own operations the way a
Conv2d node does from its parameters. The import runs the module once on zeros under torch's flop counter
(2 FLOPs per MAC, the convention of every other layer's count) and records the result on the node.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def counted_macs(module: Any, input_shape: Sequence[int]) -> int:
    """MACs of one sample of ``input_shape`` (without the batch) through ``module``; 0 when it cannot be run.

    The module runs in eval mode and is put back in the mode it was in.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    was_training = module.training
    module.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.inference_mode():
            module(torch.zeros(1, *input_shape))
    except Exception:  # noqa: BLE001 - a count is a nicety: the node then says its MACs are not counted
        return 0
    finally:
        module.train(was_training)
    return int(counter.get_total_flops() // 2)
