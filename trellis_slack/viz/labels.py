"""The words and numbers written on a chart: compact and exact number formats, wrapped labels."""

from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass

#: (from this magnitude, divide by, suffix): K starts at 10,000 so "9,500" stays exact.
UNITS = ((1e12, 1e12, "T"), (1e9, 1e9, "B"), (1e6, 1e6, "M"), (1e4, 1e3, "K"))


#: Units an axis title may name in brackets, written before or after the number.
_PREFIXES = {"$": "$", "usd": "$", "us$": "$", "€": "€", "eur": "€", "£": "£", "gbp": "£"}
_PREFIXES |= {"¥": "¥", "jpy": "¥", "₹": "₹", "inr": "₹"}
_SUFFIXES = {"%": "%", "percent": "%", "pct": "%"}
_UNIT = re.compile(r"[(\[]\s*([^()\[\]]{1,12}?)\s*[)\]]\s*$")


@dataclass(frozen=True, slots=True)
class Unit:
    """How a value of an axis is written: ``$1.2M``, ``45%``."""

    prefix: str = ""
    suffix: str = ""

    def write(self, number: str) -> str:
        """``number`` with the unit, the sign first: ``-$3.4K``."""
        if not number:
            return number
        sign, digits = ("-", number[1:]) if number.startswith("-") else ("", number)
        return f"{sign}{self.prefix}{digits}{self.suffix}"


def unit_of(axis_title: str) -> Unit:
    """The unit an axis title names in brackets: ``Revenue (USD)`` → ``$``, ``Share (%)`` → ``%``.

    A title naming no currency or percentage gives no unit (the title still says it).
    """
    match = _UNIT.search(axis_title)
    if match is None:
        return Unit()
    word = match.group(1).strip().lower()
    if word in _PREFIXES:
        return Unit(prefix=_PREFIXES[word])
    if word in _SUFFIXES:
        return Unit(suffix=_SUFFIXES[word])
    return Unit()


def format_number(value: float, *, scale: float | None = None) -> str:
    """A value for a label: ``412``, ``1,234``, ``12.5``, ``2.1M``, ``-3.4K``, ``0.042``.

    Thousands and more are written as people write them, to one decimal: ``12.3K``, ``1.2M``.

    ``scale`` (say the largest value of the chart) picks the unit, so labels side by side share
    it ("12K", "-4K" rather than "12K", "-4,000"), unless the shared unit would round a value
    that is not zero to nothing: 412 beside 1.23M stays "412", not "0".
    """
    if not math.isfinite(value):
        return ""
    if value == 0:
        return "0"
    magnitude = abs(value) if scale is None or not math.isfinite(scale) else abs(scale)
    for threshold, divisor, suffix in UNITS:
        if magnitude >= threshold:
            scaled = value / divisor
            text = trim(f"{scaled:,.{1 if abs(scaled) < 99.95 else 0}f}")
            if text in ("0", "-0"):
                return format_number(value)
            return text + suffix
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return trim(f"{value:,.2f}")
    return f"{value:.2g}"


def exact_number(value: float) -> str:
    """A value in full for alt text: ``1,234,000``, ``12.5``, ``0.0042``."""
    if not math.isfinite(value):
        return "no value"
    if value != 0 and abs(value) < 1:
        return f"{value:.3g}"
    return trim(f"{value:,.2f}")


def share(fraction: float) -> str:
    """A slice's share of the whole: ``42%``, or ``<1%`` for a sliver that is not zero."""
    return "<1%" if 0 < fraction < 0.005 else f"{fraction:.0%}"


def wrap(text: str, width: int, lines: int) -> str:
    """Wraps ``text`` to ``lines`` lines of ``width`` characters, ending in "…" when cut."""
    text = " ".join(text.split())
    if len(text) <= width:
        return text
    wrapped = textwrap.wrap(text, width, break_long_words=True, max_lines=lines, placeholder="…")
    return "\n".join(wrapped)


def trim(number: str) -> str:
    """``"12.50"`` → ``"12.5"``, ``"3.00"`` → ``"3"``; integers stay as they are."""
    return number.rstrip("0").rstrip(".") if "." in number else number
