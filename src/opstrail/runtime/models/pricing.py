"""Prices of known models in USD per million tokens, and the cost of one call.

Only models whose public list price is known are priced; any other model gets no price
(``None``), never a guess. The offline model is free.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

from opstrail.runtime.models.base import ModelUsage

_MILLION: Final = Decimal(1_000_000)

# (input, output) USD per 1M tokens, OpenAI list prices.
USD_PER_MILLION: Final[dict[str, tuple[Decimal, Decimal]]] = {
    "gpt-4o": (Decimal("2.50"), Decimal("10.00")),
    "gpt-4o-mini": (Decimal("0.15"), Decimal("0.60")),
    "gpt-4.1": (Decimal("2.00"), Decimal("8.00")),
    "gpt-4.1-mini": (Decimal("0.40"), Decimal("1.60")),
    "gpt-4.1-nano": (Decimal("0.10"), Decimal("0.40")),
    "gpt-3.5-turbo": (Decimal("0.50"), Decimal("1.50")),
    "gpt-4-turbo": (Decimal("10.00"), Decimal("30.00")),
    "o3-mini": (Decimal("1.10"), Decimal("4.40")),
}


def unit_prices(provider: str, model: str) -> tuple[Decimal, Decimal] | None:
    """Input and output price per token in USD, or ``None`` when unknown."""
    if provider == "opstrail":
        return (Decimal(0), Decimal(0))
    prices = USD_PER_MILLION.get(model)
    if prices is None:
        return None
    return (prices[0] / _MILLION, prices[1] / _MILLION)


def priced_usage(provider: str, model: str, prompt_tokens: int, completion_tokens: int) -> ModelUsage:
    """Usage with its price in USD (price fields ``None`` for an unpriced model)."""
    total = prompt_tokens + completion_tokens
    prices = unit_prices(provider, model)
    if prices is None:
        return ModelUsage(prompt_tokens, completion_tokens, total)
    input_price = _money(prices[0] * prompt_tokens)
    output_price = _money(prices[1] * completion_tokens)
    return ModelUsage(
        prompt_tokens,
        completion_tokens,
        total,
        price=input_price + output_price,
        input_price=input_price,
        output_price=output_price,
        currency="USD",
    )


def _money(value: Decimal) -> Decimal:
    # Seven decimals, trailing zeros dropped: 0 prints as "0", not "0E-7".
    quantized = value.quantize(Decimal("0.0000001"))
    if not quantized:
        return Decimal(0)
    normal = quantized.normalize()
    exponent = normal.as_tuple().exponent
    return normal if isinstance(exponent, int) and exponent <= 0 else normal.quantize(Decimal(1))
