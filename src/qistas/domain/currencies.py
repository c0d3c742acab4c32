"""ISO 4217 currencies: the codes a pay rate may name, and how many decimals each minor unit has.

Money is kept as an integer count of the currency's minor unit (cents for USD, fils for KWD
with three decimals, whole yen for JPY): never a float. The table holds the active codes of
ISO 4217 that have a minor unit (funds, precious metals and testing codes, "N.A." in the
standard, are left out: nobody is paid in them).
"""

from __future__ import annotations

_THREE = "BHD IQD JOD KWD LYD OMR TND"
_ZERO = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_FOUR = "CLF UYW"
_TWO = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF "
    "CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD "
    "HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT "
    "MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR "
    "SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU "
    "UZS VED VES WST XCD XCG YER ZAR ZMW ZWG"
)

# code -> decimals of its minor unit
EXPONENTS: dict[str, int] = {
    **{code: 2 for code in _TWO.split()},
    **{code: 3 for code in _THREE.split()},
    **{code: 0 for code in _ZERO.split()},
    **{code: 4 for code in _FOUR.split()},
}


def is_currency(code: object) -> bool:
    return isinstance(code, str) and code in EXPONENTS


def major(amount_minor: int, currency: str) -> str:
    """The amount written in the currency's major unit, exactly: 1234 USD -> "12.34",
    -5 KWD -> "-0.005", 700 JPY -> "700"."""
    places = EXPONENTS[currency]
    sign = "-" if amount_minor < 0 else ""
    whole, part = divmod(abs(amount_minor), 10**places)
    return f"{sign}{whole}.{part:0{places}d}" if places else f"{sign}{whole}"
