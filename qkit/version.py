"""qkit's version, in a module of its own so that low modules (the run environment) can read it
without importing the ``qkit`` package's ``__init__``, which imports them back."""

__version__ = "0.2.0"
