"""jaxrec: fine-tune pretrained BERT encoders for recommendation, in JAX."""

from jaxrec.errors import CheckpointError, ConfigError, DataError

__all__ = ["CheckpointError", "ConfigError", "DataError"]
