"""Pay torch's one-off first-use costs before the person presses Train (torch; no Qt).

The first optimizer a process creates imports ``torch._dynamo`` (torch wraps
``Optimizer.__init__`` to keep the compiler out of it, and that wrapper
imports the compiler on its first call): 1.7 s here, which a first run
otherwise spends between the press of Train and its first batch.
"""

from __future__ import annotations


def warm_up_training() -> None:
    """Import and initialize what the first training run needs; harmless to call more than once."""
    import torch

    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
