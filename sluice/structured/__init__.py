"""Structured output: the contract the run loop and the provider adapters use.

- `PartialStream(schema)`: feed raw text deltas, get the parsed object so far when it changed (coalesced).
- `finalize(schema, text)`: parse, repair cheaply, validate; returns the object or raises `SchemaViolation`.
- `reask(request, bad_text, violation)`: the same provider request with the validation error told to the model.
- `native.prepare(request, dialect)`: the request made to ask for its schema in a dialect (the provider's native
  mode, named by the provider registry, or a prompt instruction).
"""

from sluice.structured.output import PartialStream, SchemaViolation, finalize, reask

__all__ = ["PartialStream", "SchemaViolation", "finalize", "reask"]
