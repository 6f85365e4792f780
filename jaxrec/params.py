"""Dotted names for parameters, from any of the path forms JAX and NNX produce."""

from __future__ import annotations


def path_name(path) -> str:
    """`encoder.layer.0.output.dense.kernel` from a jax key path or an nnx state path.

    A trailing `.value` (the NNX Variable wrapper's own attribute in a jax key path) is not
    part of the parameter's name and is dropped.
    """
    parts = [str(getattr(p, "key", getattr(p, "idx", getattr(p, "name", p)))) for p in path]
    if parts and parts[-1] == "value" and type(path[-1]).__name__ == "GetAttrKey":
        parts.pop()
    return ".".join(parts)
