"""One base model so every contract type is strict and rejects unknown fields.

A typo in a desired file (`acton: backup`) must be an error, not a silently ignored key, and a
YAML value of the wrong type (an unquoted date as a request token) must not be coerced.
"""

from pydantic import BaseModel, ConfigDict


class ContractModel(BaseModel):
    """Strict, frozen, no extra fields."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
