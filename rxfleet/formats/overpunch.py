"""Signed overpunch: the sign of a zoned-decimal number carried in its last character.

NCPDP Telecommunication amounts (format ``s9(n)v99``, e.g. 409-D9, 426-DQ, 430-DU)
encode the sign and the last digit in one character, the way EBCDIC zoned decimal
does::

    {  A  B  C  D  E  F  G  H  I      positive 0..9
    }  J  K  L  M  N  O  P  Q  R      negative 0..9

Sources: CMS Third Party Administrator, "Overpunch Character Map"
(https://tpadministrator.com/internet/tpaw3.nsf/T/References~Overpunch%20Character%20Map):
``00000000035A`` = 3.51 (A = +1), ``00000000035P`` = -3.57 (P = -7).
"""

from __future__ import annotations

from decimal import Decimal

_POSITIVE = "{ABCDEFGHI"
_NEGATIVE = "}JKLMNOPQR"

#: Last character → (sign, digit).
OVERPUNCH: dict[str, tuple[int, str]] = {
    **{char: (1, str(digit)) for digit, char in enumerate(_POSITIVE)},
    **{char: (-1, str(digit)) for digit, char in enumerate(_NEGATIVE)},
}


class OverpunchError(ValueError):
    """The text is not a signed-overpunch (or plain) number."""


def decode_overpunch(text: str, decimals: int = 2) -> Decimal:
    """Decode ``text`` (signed overpunch or plain digits) with ``decimals`` implied places.

    >>> decode_overpunch("218G")
    Decimal('21.87')
    >>> decode_overpunch("218P")
    Decimal('-21.87')
    """
    body = text.strip()
    if not body:
        raise OverpunchError("empty amount")
    sign, last = OVERPUNCH.get(body[-1], (1, body[-1]))
    digits = body[:-1] + last
    if not digits.isascii() or not digits.isdigit():
        raise OverpunchError("not a signed-overpunch number")
    return Decimal(sign * int(digits)).scaleb(-decimals)


def encode_overpunch(amount: Decimal, decimals: int = 2, width: int = 0) -> str:
    """Encode ``amount`` as signed overpunch, zero-padded to ``width`` characters."""
    units = int(amount.scaleb(decimals).to_integral_value())
    digits = str(abs(units)).rjust(max(width, 1), "0")
    table = _NEGATIVE if units < 0 else _POSITIVE
    return digits[:-1] + table[int(digits[-1])]
