"""Fixed-point conventions shared by nodes, the contract and the audit.

The contract only sees integers. Validation metrics (accuracy, F1, ...) in [0, 1] travel
as ``round(metric * METRIC_SCALE)``; contribution scores (utility improvements, typically
1e-4..1) as ``round(score * SCORE_SCALE)``; token amounts in wei (18 decimals).
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

METRIC_SCALE = 10**6
SCORE_SCALE = 10**9
TOKEN_DECIMALS = 18
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def to_fixed(value: float, scale: int) -> int:
    """Round ``value * scale`` to an int64, clamping so a huge value cannot make a
    transaction revert on ABI encoding."""
    if value != value:  # NaN
        raise ValueError("cannot encode NaN as a fixed-point integer")
    return max(INT64_MIN, min(INT64_MAX, round(value * scale)))


def tokens_to_wei(amount: str | int | float) -> int:
    """Parse a token amount such as ``"1000"`` or ``"0.5"`` into wei, exactly."""
    try:
        wei = Decimal(str(amount)) * (10**TOKEN_DECIMALS)
    except InvalidOperation:
        raise ValueError(f"not a token amount: {amount!r}") from None
    if wei != wei.to_integral_value() or wei < 0:
        raise ValueError(f"token amount must be >= 0 with at most {TOKEN_DECIMALS} decimals: {amount!r}")
    return int(wei)


def wei_to_tokens(wei: int) -> Decimal:
    """wei as a Decimal token amount, for display."""
    return Decimal(wei) / (10**TOKEN_DECIMALS)
