"""torch's global random generator, for the sections that cannot avoid it.

Fits and :func:`~skbandit.pruning.prune` draw from generators of their own.
Dropout inside a model, and the initialisation of arbitrary modules, only
draw from torch's global generator: such a section takes
:data:`GLOBAL_RNG_LOCK`, seeds the global generator and restores the
caller's state when it ends (:func:`seeded_global_rng`).
"""

import contextlib
import threading

import torch
from torch import nn

__all__ = ["GLOBAL_RNG_LOCK", "draws_from_global_rng", "seeded_global_rng"]

#: Serialises the sections that seed torch's global generator: two of them
#: in different threads would draw from, and reseed, one shared stream.
#: Reentrant, so that such a section may call another.
GLOBAL_RNG_LOCK = threading.RLock()

#: Modules whose training-mode forward draws from torch's global generator.
_STOCHASTIC_MODULES = (
    nn.modules.dropout._DropoutNd,
    nn.RReLU,
    nn.FractionalMaxPool2d,
    nn.FractionalMaxPool3d,
)


def draws_from_global_rng(model):
    """Whether training ``model`` may draw from torch's global generator.

    True when ``model`` holds a dropout-like module, an attention layer with
    a positive ``dropout`` rate, or a module of a class that is neither
    torch's nor skbandit's: its ``forward`` may call ``F.dropout`` or
    ``torch.rand`` itself.

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    bool
    """
    for module in model.modules():
        if isinstance(module, _STOCHASTIC_MODULES):
            return True
        rate = getattr(module, "dropout", 0.0)
        if isinstance(rate, float) and rate > 0:
            return True
        if not type(module).__module__.startswith(("torch.", "skbandit.")):
            return True
    return False


@contextlib.contextmanager
def seeded_global_rng(seed, device=None):
    """Seed torch's global generator for a section; restore the caller's after.

    Holds :data:`GLOBAL_RNG_LOCK` for the whole section, so that no other
    such section (in any thread) draws from or reseeds the stream meanwhile.
    Code of the caller's that draws from the global generator in another
    thread at the same time is not held back, and would share the stream.

    Parameters
    ----------
    seed : int
        Seed of the CPU generator, and of ``device``'s generator when it is
        a CUDA device.
    device : torch.device or str, default=None
        A CUDA device whose generator is seeded and restored as well; any
        other device (or None) leaves the accelerators' generators alone.
    """
    device = torch.device("cpu" if device is None else device)
    cuda = [device] if device.type == "cuda" else []
    with GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=cuda, device_type="cuda"):
        # Not torch.manual_seed: it would also reseed (and leak into) the
        # generators of every other accelerator, which are not restored.
        torch.default_generator.manual_seed(seed)
        if cuda:
            with torch.cuda.device(device):
                torch.cuda.manual_seed(seed)
        yield
