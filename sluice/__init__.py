"""Sluice: a self-hosted AI gateway.

`import sluice` stays cheap: no web framework, database or provider driver is imported here.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
