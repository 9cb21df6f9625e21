"""How numbers are written for people: every table and printout of the toolkit (results,
eval, reproduce, bench, the HTML report) goes through `fmt`, so none loses an exponent
(`3.5e-24`, not `0.000`) or shows more digits than it means."""

from __future__ import annotations

import math
import numbers

# Fixed notation inside this range of decimal exponents, scientific outside it.
_FIXED = range(-4, 6)


def fmt(x, digits: int = 4) -> str:
  """`x` to `digits` significant digits: fixed notation from 1e-4 to below 1e6
  (`0.0507`, `1.579`, `123500`), an exponent outside it (`3.5e-24`, `1.2e24`); integers
  exactly, `nan`, `inf`, `-inf`; `-` for None; anything else as `str`."""
  if x is None:
    return "-"
  if isinstance(x, bool) or not isinstance(x, numbers.Real):
    return str(x)
  if isinstance(x, numbers.Integral):
    return str(int(x))
  x = float(x)
  if math.isnan(x):
    return "nan"
  if math.isinf(x):
    return "inf" if x > 0 else "-inf"
  if x == 0:
    return "0"
  mantissa, exponent = f"{x:.{max(digits, 1) - 1}e}".split("e")
  exponent = int(exponent)  # of the rounded value (9.9996 -> 1.000e+01)
  if exponent in _FIXED:
    decimals = max(digits - 1 - exponent, 0)
    return _trim(f"{float(f'{mantissa}e{exponent}'):.{decimals}f}")
  return f"{_trim(mantissa)}e{exponent}"


def signed(x, digits: int = 4) -> str:
  """`fmt(x)` with its sign, `+` included."""
  text = fmt(x, digits)
  return text if text.startswith(("-", "+", "n")) or text == "0" else f"+{text}"


def interval(value, low, high, digits: int = 3) -> str:
  """`value [low, high]`, each through `fmt`."""
  return f"{fmt(value, digits)} [{fmt(low, digits)}, {fmt(high, digits)}]"


def _trim(text: str) -> str:
  """Without trailing zeros after a decimal point (`1.500` -> `1.5`, `2.000` -> `2`)."""
  return text.rstrip("0").rstrip(".") if "." in text else text


# Printed under a table that shows an interval of zero width.
ZERO_WIDTH = ("note: an interval [x, x] has zero width because every item scored alike, so "
              "resampling the items cannot move it; it is not an exact value (with none or all "
              "of n items right, the 95% bound lies about 3/n away)")


def zero_width(low, high) -> bool:
  """Whether a printed interval has zero width (and so needs ZERO_WIDTH beside it)."""
  return low is not None and high is not None and low == high
