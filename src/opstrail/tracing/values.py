"""Value types shared by the trace model: JSON values and timezone-aware UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Union

from opstrail.errors import NaiveDatetimeError

if TYPE_CHECKING:
    from typing_extensions import TypeAliasType

    # A JSON value as decoded by ``json.loads``.
    JsonValue = TypeAliasType(
        "JsonValue",
        "bool | int | float | str | list[JsonValue] | dict[str, JsonValue] | None",
    )
else:
    # At run time the only reader of this annotation is the outbox codec, which validates
    # stored JSON *text*: whatever that text parses to is already a JSON value. The recursive
    # union made pydantic test every nested value against six types, about 40 % of decoding a
    # 20-node workflow record (801 against 453 µs, docs/benchmarks.md). The type checker
    # still sees the precise alias above.
    JsonValue = Any
JsonObject = dict[str, JsonValue]


def require_utc(value: datetime, field_name: str) -> datetime:
    """Return ``value`` converted to UTC.

    Raises:
        NaiveDatetimeError: ``value`` has no time zone; a naive time would be read in the
            host's local zone somewhere down the line and shift the trace.
    """
    tzinfo = value.tzinfo
    if tzinfo is UTC:
        # Already UTC (every record time is, once its record exists): astimezone would
        # return ``value`` itself.
        return value
    if tzinfo is None or tzinfo.utcoffset(value) is None:
        raise NaiveDatetimeError(
            f"{field_name} must be timezone-aware (got naive {value.isoformat()}); "
            "use datetime.now(timezone.utc) or attach a tzinfo"
        )
    return value.astimezone(UTC)


def optional_utc(value: datetime | None, field_name: str) -> datetime | None:
    """Like ``require_utc`` but lets ``None`` through."""
    return None if value is None else require_utc(value, field_name)


__all__ = ["JsonObject", "JsonValue", "Union", "optional_utc", "require_utc"]


@cache
def _datetime_fields(cls: type) -> tuple[str, ...]:
    """Names of the fields of dataclass ``cls`` whose annotation mentions ``datetime``.

    Memoised per class: this is a pure function of the class, and checking only these
    fields keeps record creation cheap (it runs for every record the dispatcher decodes).
    """
    from dataclasses import fields  # local: keeps the module's import surface tiny

    return tuple(f.name for f in fields(cls) if "datetime" in str(f.type))


def normalise_times(instance: object) -> None:
    """Check every datetime field of a frozen dataclass and store it as UTC.

    Called from ``__post_init__`` of the trace-info records, so that a record is either
    complete and timezone-aware or never created.

    Raises:
        NaiveDatetimeError: a datetime field has no time zone.
    """
    # Classes are hashable; typeshed's signature of object.__hash__ hides that from mypy.
    for name in _datetime_fields(type(instance)):  # type: ignore[arg-type]
        value = getattr(instance, name)
        if isinstance(value, datetime):
            object.__setattr__(
                instance, name, require_utc(value, f"{type(instance).__name__}.{name}")
            )
