"""osha: high-availability testing for OpenStack clouds.

osha runs monitors, disruptors and runners as supervised actors, each in its own OS process,
and records everything they say in an append-only ledger that reports are computed from.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
