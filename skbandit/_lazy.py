"""Lazy re-exports (PEP 562), so that importing a package stays cheap.

``import skbandit.policies`` must not pay for torch, and ``skbandit --help``
must not wait for it: packages list their public names here and import the
submodule that defines one only when it is first used (the pattern of
scientific-python's ``lazy_loader.attach``).
"""

import importlib

__all__ = ["attach"]


def attach(package, submodule_names):
    """``(__getattr__, __dir__, __all__)`` for a package's lazy public names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    submodule_names : dict of str to sequence of str
        Relative submodule (``"._tabular"``) -> the public names it defines.
    """
    where = {name: sub for sub, names in submodule_names.items() for name in names}

    def __getattr__(name):
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(where[name], package), name)
        # Cache on the package: later lookups skip __getattr__.
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__():
        return sorted(where)

    return __getattr__, __dir__, sorted(where)
