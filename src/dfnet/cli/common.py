"""Pieces shared by the sub-commands."""

# dfnet.inference.ENGINES, repeated here so that building the parser does not import torch
ENGINE_CHOICES = ("torch", "optimized", "onnxruntime")


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit status 1."""
