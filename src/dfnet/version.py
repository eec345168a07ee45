"""The package version, in a module of its own so that code inside the package can read it without
importing the package (and everything it re-exports)."""

__version__ = "0.1.0"
