"""Replies carry no NaN or infinity: JSON has no such numbers, so they are sent as null.

The catalog can hold them (a container reporting an infinite duration, NaN kept by
PostgreSQL or in a JSON column) and arithmetic can make them (a sum over an infinite
duration). A reply field fed by stored or computed floats is a ``FiniteOrNull``: validation
turns a non-finite value into None, and the OpenAPI type says the field may be null. Extra
fields of a ``Reply`` (what the query layer adds to a hit) are cleaned the same way. Done at
validation, not left to the serializer: FastAPI's pydantic fast path writes null, while
``model_dump`` + ``json.dumps`` (a custom response class, an older FastAPI) raise, a 500.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, model_validator


def finite_or_none(value: float | None) -> float | None:
    return value if value is None or math.isfinite(value) else None


FiniteOrNull = Annotated[float | None, AfterValidator(finite_or_none)]


def without_non_finite(value: Any) -> Any:
    """``value`` with every non-finite float inside its dicts and lists made None."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {key: without_non_finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [without_non_finite(item) for item in value]
    return value


class Reply(BaseModel):
    """Base of the reply models: their extra fields get no NaN or infinity either."""

    @model_validator(mode="after")
    def _finite_extras(self) -> "Reply":
        extra = self.__pydantic_extra__
        if extra:
            for key, value in extra.items():
                extra[key] = without_non_finite(value)
        return self
