"""NCPDP Telecommunication Standard D.0: B1, B2 and B3 requests in, responses parsed.

Input is one transmission a line (``\\n`` or ``\\r\\n``): the fixed 56-byte request
transaction header, then segments (separator 0x1E), each a run of fields (separator
0x1C) of a two-character field id and its value, the first being ``AM`` + the
segment id. A transmission carries up to four transactions (claims), each opened
by the group separator 0x1D; the header and the transmission-level segments
(patient ``AM01``, insurance ``AM04``) apply to each of them. A transmission with
no group separator is one transaction.

Each transaction becomes one :class:`~rxfleet.formats.base.Record` numbered by
its line. A bad transaction inside a readable file comes out as a record with a
:class:`~rxfleet.formats.base.Problem` naming the field (never quoting a value)
and whatever fields could be read; only a file that is not NCPDP D.0 at all
raises :class:`~rxfleet.errors.InputError`.

Derived fields (NCPDP has neither):

- ``plan_id`` = the plan the payer sheet (:mod:`rxfleet.formats.payer_sheet`) names
  for 101-A1, 104-A4 and 301-C1, else ``f"{bin}-{pcn}-{group_id}"`` (as sent,
  trailing blanks removed; an absent part is empty). The claim id never depends on
  the sheet: a claim keeps its id when the sheet changes.
- ``claim_id`` = ``"NCPDP-"`` + the first 20 hex digits of the SHA-256 of BIN, PCN,
  service provider id (201-B1), date of service (401-D1), rx number (402-D2) and
  fill number (403-D3): the claim's identity, never its position, so a
  resubmission anywhere gets the same id (the Idempotency-Key's prefix) and two
  identical transactions are caught as ``DUPLICATE_CLAIM_ID``. A line whose header
  cannot be read gets an id from its line number and content instead.

Nothing is dropped: a transmission yields at least one record (a header with no
transaction gives one quarantined ``MISSING_SEGMENT``); transaction segments sent
before the first group separator give a record quarantined
``SEGMENT_OUTSIDE_GROUP``; a line that is not UTF-8 quarantines its records
``MALFORMED_RECORD``; a field read twice in one transaction is ``REPEATED_FIELD``.

The field identifiers, layouts and code sets are tables in
:mod:`rxfleet.formats.ncpdp_fields`, whose docstring cites the public sources they were
checked against; signed overpunch is :mod:`rxfleet.formats.overpunch`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, TypeVar

from rxfleet.claims.fields import CANONICAL_FIELDS
from rxfleet.errors import InputError
from rxfleet.formats.base import KeyedId, Problem, Record
from rxfleet.formats.ncpdp_fields import (
    COMPOUND_COUNT_FIELD,
    COMPOUND_INGREDIENT_FIELDS,
    FIELD_SEPARATOR,
    GROUP_SEPARATOR,
    MAX_TRANSACTIONS,
    REPEATING_RESPONSE_FIELDS,
    REQUEST_FIELDS,
    REQUEST_HEADER,
    REQUEST_HEADER_LENGTH,
    RESPONSE_FIELDS,
    RESPONSE_HEADER,
    RESPONSE_HEADER_LENGTH,
    SEGMENT_ID_FIELD,
    SEGMENT_SEPARATOR,
    TRANSMISSION_SEGMENTS,
    VERSION_D0,
    FieldSpec,
    FieldValueError,
    HeaderField,
    HeaderResponseStatus,
    ProductIdQualifier,
    RequestSegment,
    TransactionCode,
    TransactionResponseStatus,
    as_amount,
    as_count,
    as_quantity,
)
from rxfleet.formats.payer_sheet import NO_SHEET, PayerSheet
from rxfleet.formats.textio import EMPTY_FILE, NOT_UTF8, decode_marked, open_binary

__all__ = ["NcpdpResponse", "parse_response", "parse_transmission", "read_ncpdp", "sniff_ncpdp"]

_E = TypeVar("_E", HeaderResponseStatus, TransactionResponseStatus)
_SNIFF_LENGTH = 10  # BIN (6) + version (2) + transaction code (2)
_CLAIM_ID_DIGITS = 20


class _SegmentError(Exception):
    """A segment that cannot be parsed; carries the problem to report."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Segment:
    """One parsed segment: its id (``"07"``) and its fields as (field id, raw value)."""

    segment_id: str
    fields: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class _Claim:
    """A transaction being assembled: values by name, and the first problem met."""

    values: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    seen: set[str] = field(default_factory=set)

    def fail(self, problem: Problem) -> None:
        if self.problem is None:
            self.problem = problem


# --- sniffing and file reading -------------------------------------------------


def sniff_ncpdp(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) opens an NCPDP D.0 request."""
    first = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    if len(first) < _SNIFF_LENGTH:
        return False
    bin_, version, code = first[:6], first[6:8], first[8:10]
    return (
        bin_.isascii()
        and bin_.isascii()
        and bin_.isdigit()
        and version == VERSION_D0.encode()
        and code.isascii()
        and code.isalnum()
    )


def read_ncpdp(path: str, sheet: PayerSheet = NO_SHEET) -> Iterator[Record]:
    """Stream the transactions of an NCPDP D.0 file, one record each, in input order;
    ``sheet`` names the plan of a BIN, PCN and group (else the derived plan id)."""
    with open_binary(path) as handle:
        for record in _read_lines(path, handle):
            yield with_sheet_plan(record, sheet)


def with_sheet_plan(record: Record, sheet: PayerSheet) -> Record:
    """``record`` with the plan id ``sheet`` names for its BIN, PCN and group, if any."""
    fields = record.fields
    if not sheet or "plan_id" not in fields:
        return record
    bin_, pcn, group = (str(fields.get(name, "")) for name in ("bin", "pcn", "group_id"))
    plan = sheet.plan_for(bin_, pcn, group)
    return record if plan is None else replace(record, fields={**fields, "plan_id": plan})


def _read_lines(path: str, lines: Iterable[bytes]) -> Iterator[Record]:
    checked = False
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip(b"\r\n")
        if not line.strip():
            continue
        if not checked and not sniff_ncpdp(line):
            raise InputError(path, "not an NCPDP D.0 request file (no transaction header)", number)
        checked = True
        text, utf8 = decode_marked(line)
        records = parse_transmission(text, path, number)
        if not utf8:  # one rule for every format: a line that is not UTF-8 is quarantined
            problem = Problem("MALFORMED_RECORD", f"line is {NOT_UTF8}", None)
            records = [replace(record, problem=problem) for record in records]
        yield from records
    if not checked:
        raise InputError(path, EMPTY_FILE)


# --- one transmission ----------------------------------------------------------


def parse_transmission(line: str, source: str = "", number: int = 0) -> list[Record]:
    """The records of one transmission line (header, segments, transaction groups)."""
    if len(line) < REQUEST_HEADER_LENGTH:
        return [_truncated(line, source, number)]
    header = _Claim()
    _read_header(header, line[:REQUEST_HEADER_LENGTH])
    common, groups, stray = _split_groups(line[REQUEST_HEADER_LENGTH:])
    shared = _Claim(dict(header.values), header.problem)
    _apply_segments(shared, common, transmission_only=True)
    claims = [_transaction(shared, group) for group in groups]
    _check_count(header.values.get("_transaction_count"), claims)
    if stray:  # transaction segments before the first group separator: read, quarantined
        misplaced = _transaction(shared, stray)
        message = "transaction segments before the first group separator (0x1D)"
        misplaced.problem = Problem("SEGMENT_OUTSIDE_GROUP", message, "segment")
        claims.insert(0, misplaced)
    if not claims:  # a transmission yields at least one record: nothing is lost silently
        empty = _Claim(dict(shared.values), shared.problem)
        empty.fail(Problem("MISSING_SEGMENT", "no transaction after the header", "claim_segment"))
        claims = [empty]
    return [
        replace(_record(claim, source, number), transaction=index)
        for index, claim in enumerate(claims, start=1)
    ]


def _truncated(line: str, source: str, number: int) -> Record:
    digest = _digest(["line", str(number), line])
    problem = Problem(
        "TRUNCATED_HEADER",
        f"transaction header has fewer than {REQUEST_HEADER_LENGTH} bytes",
        "transaction_header",
    )
    return Record(source, number, {"claim_id": f"NCPDP-{digest}"}, problem)


def _read_header(claim: _Claim, text: str) -> None:
    offset = 0
    for spec in REQUEST_HEADER:
        _convert(claim, spec, text[offset : offset + spec.width])
        offset += spec.width
    version = claim.values.get("_version")
    if version != VERSION_D0:
        claim.fail(Problem("UNSUPPORTED_VERSION", "102-A2 version is not D0", "version"))
    if claim.values.get("transaction_code") not in CLAIM_TRANSACTIONS:
        message = "103-A3 transaction code is not B1, B2 or B3"
        claim.fail(Problem("UNSUPPORTED_TRANSACTION", message, "transaction_code"))


_Items = list[Segment | Problem]


#: 103-A3 codes read as claims: billing, reversal (a B2 carries the claim segment's
#: identity and no pricing) and rebill.
CLAIM_TRANSACTIONS = frozenset(
    {TransactionCode.BILLING, TransactionCode.REVERSAL, TransactionCode.REBILL}
)


def _split_groups(body: str) -> tuple[_Items, list[_Items], _Items]:
    """Transmission-level segments, the segments of each transaction group, and the
    transaction-level segments found before the first group separator (stray)."""
    chunks = body.split(GROUP_SEPARATOR)
    common = list(_segments(chunks[0]))
    local = [seg for seg in common if not _is_transmission_level(seg)]
    if len(chunks) == 1:
        return common, [local] if local else [], []
    groups = [list(_segments(chunk)) for chunk in chunks[1:]]
    return common, [group for group in groups if group], local


def _is_transmission_level(item: Segment | Problem) -> bool:
    return isinstance(item, Segment) and item.segment_id in TRANSMISSION_SEGMENTS


def _transaction(shared: _Claim, group: list[Segment | Problem]) -> _Claim:
    claim = _Claim(dict(shared.values), shared.problem, set(shared.seen))
    _apply_segments(claim, group, transmission_only=False)
    if not any(isinstance(s, Segment) and s.segment_id == RequestSegment.CLAIM for s in group):
        claim.fail(Problem("MISSING_SEGMENT", "claim segment AM07 is missing", "claim_segment"))
    return claim


def _check_count(declared: object, claims: list[_Claim]) -> None:
    if not isinstance(declared, int):
        return
    if declared != len(claims) or declared > MAX_TRANSACTIONS:
        problem = Problem(
            "TRANSACTION_COUNT_MISMATCH",
            "109-A9 transaction count does not match the transaction groups (at most 4)",
            "transaction_count",
        )
        for claim in claims:
            claim.fail(problem)


# --- segments and fields -------------------------------------------------------


def _segments(chunk: str) -> Iterator[Segment | Problem]:
    for text in chunk.split(SEGMENT_SEPARATOR):
        if not text.strip(FIELD_SEPARATOR + " \t"):
            continue
        try:
            yield parse_segment(text)
        except _SegmentError as exc:
            yield exc.problem


def parse_segment(text: str) -> Segment:
    """Parse one segment's text (without the segment separator)."""
    parts = [part for part in text.split(FIELD_SEPARATOR) if part]
    head = parts[0] if parts else ""
    if len(head) != 4 or not head.startswith(SEGMENT_ID_FIELD):
        problem = Problem("MALFORMED_SEGMENT", "segment does not start with 111-AM", "segment")
        raise _SegmentError(problem)
    if any(len(part) < 2 for part in parts[1:]):
        message = f"segment AM{head[2:]} has a field without an identifier"
        problem = Problem("MALFORMED_FIELD", message, "segment")
        raise _SegmentError(problem)
    return Segment(head[2:], tuple((part[:2], part[2:]) for part in parts[1:]))


def _apply_segments(claim: _Claim, items: list[Segment | Problem], transmission_only: bool) -> None:
    for item in items:
        if isinstance(item, Problem):
            claim.fail(item)
        elif item.segment_id not in RequestSegment._value2member_map_:
            message = f"unknown request segment identifier AM{item.segment_id}"
            claim.fail(Problem("UNKNOWN_SEGMENT", message, "segment"))
        elif item.segment_id == RequestSegment.COMPOUND and not transmission_only:
            _apply_compound(claim, item)
        elif not transmission_only or item.segment_id in TRANSMISSION_SEGMENTS:
            _apply_fields(claim, item, REQUEST_FIELDS.get(item.segment_id, {}))


def _apply_compound(claim: _Claim, segment: Segment) -> None:
    """Segment 10: 447-EC the count, then per ingredient 488-RE, 489-TE, 448-ED, 449-EE
    (each ingredient opens with its 488-RE). Ingredients must be NDCs (488-RE 03)."""
    ingredients: list[dict[str, Any]] = []
    declared: int | None = None
    try:
        for field_id, raw in segment.fields:
            if field_id == COMPOUND_COUNT_FIELD:
                declared = as_count(raw)
            elif field_id == "RE":
                ingredients.append({})
            if field_id in COMPOUND_INGREDIENT_FIELDS and ingredients:
                ingredients[-1][COMPOUND_INGREDIENT_FIELDS[field_id]] = _ingredient_value(
                    field_id, raw
                )
    except FieldValueError as exc:
        claim.fail(Problem("INVALID_FIELD", f"compound segment 10: {exc}", "compound_ingredients"))
        return
    if not ingredients or declared != len(ingredients):
        message = "447-EC ingredient count does not match the ingredients of segment 10"
        claim.fail(Problem("INVALID_FIELD", message, "compound_ingredients"))
    elif any(
        item.pop("product_id_qualifier", None) != ProductIdQualifier.NDC for item in ingredients
    ):
        claim.fail(Problem("PRODUCT_NOT_NDC", "488-RE ingredient qualifier is not 03", "ndc"))
    claim.values["compound_ingredients"] = ingredients


def _ingredient_value(field_id: str, raw: str) -> Any:
    convert = {"ED": as_quantity, "EE": as_amount}.get(field_id)
    return convert(raw) if convert else raw.strip()


def _apply_fields(claim: _Claim, segment: Segment, specs: Mapping[str, FieldSpec]) -> None:
    for field_id, raw in segment.fields:
        spec = specs.get(field_id)
        if spec is None:
            continue
        if spec.ref in claim.seen:  # every field rxfleet reads is non-repeating
            message = f"{spec.ref} appears more than once in the transaction"
            claim.fail(Problem("REPEATED_FIELD", message, spec.name.lstrip("_")))
            continue
        claim.seen.add(spec.ref)
        _convert(claim, spec, raw)


def _convert(claim: _Claim, spec: FieldSpec | HeaderField, raw: str) -> None:
    try:
        value = spec.convert(raw)
    except FieldValueError as exc:
        name = spec.name.lstrip("_")
        claim.fail(Problem("INVALID_FIELD", f"{spec.ref} {name}: {exc}", name))
        return
    if value != "":
        claim.values[spec.name] = value


# --- records -------------------------------------------------------------------


def _record(claim: _Claim, source: str, number: int) -> Record:
    values = claim.values
    qualifier = values.get("_product_id_qualifier")
    ingredients = values.get("compound_ingredients")
    if qualifier is None and "436-E1" not in claim.seen and "407-D7" in claim.seen:
        message = "436-E1 product id qualifier is missing (mandatory in the claim segment)"
        claim.fail(Problem("MISSING_FIELD", message, "product_id_qualifier"))
    elif qualifier == ProductIdQualifier.NOT_SPECIFIED and ingredients:
        values["ndc"] = ingredients[0].get("ndc", "")  # the compound's first ingredient
    elif qualifier is not None and qualifier != ProductIdQualifier.NDC:
        claim.fail(Problem("PRODUCT_NOT_NDC", "436-E1 product id qualifier is not 03 (NDC)", "ndc"))
    fields = {name: value for name, value in values.items() if name in CANONICAL_FIELDS}
    if "bin" in fields:
        fields["plan_id"] = derive_plan_id(values)
    if values.get("rx_number"):
        fields["claim_id"] = derive_claim_id(values)
        return Record(source, number, fields, claim.problem)
    return Record(source, number, fields, claim.problem, _content_id(fields))


def _content_id(fields: Mapping[str, Any]) -> KeyedId:
    """Without 402-D2 the identity is the whole transaction: every canonical value
    (PHI included, hence a keyed token made at ingestion), so two transactions that
    differ in anything get two ids and an exact copy is a duplicate, in any run."""
    parts = tuple(f"{name}={fields[name]!s}" for name in sorted(fields) if name != "claim_id")
    return KeyedId("NCPDP", parts)


def derive_plan_id(values: Mapping[str, Any]) -> str:
    """``{bin}-{pcn}-{group_id}``: NCPDP has no plan field."""
    return "-".join(str(values.get(name, "")) for name in ("bin", "pcn", "group_id"))


#: What identifies a claim (NCPDP D.0): BIN 101-A1, PCN 104-A4, service provider
#: 201-B1, date of service 401-D1, Rx number 402-D2, fill number 403-D3.
CLAIM_IDENTITY = (
    "bin",
    "pcn",
    "service_provider_id",
    "date_of_service",
    "rx_number",
    "fill_number",
)


def derive_claim_id(values: Mapping[str, Any]) -> str:
    """A stable id from the claim's identity, not its position (see the module docstring).

    It prefixes the gateway Idempotency-Key: the same claim resubmitted anywhere (another
    transmission, another position) gets the same id and is caught as a duplicate.
    """
    parts = [str(values.get(name, "")) for name in CLAIM_IDENTITY]
    return f"NCPDP-{_digest(parts)}"


def _digest(parts: list[str]) -> str:
    joined = "\x1f".join(parts).encode("utf-8", errors="replace")
    return hashlib.sha256(joined).hexdigest()[:_CLAIM_ID_DIGITS]


# --- responses -----------------------------------------------------------------

_RESPONSE_SOURCE = "<ncpdp response>"


@dataclass(frozen=True, slots=True)
class NcpdpResponse:
    """One transaction of an NCPDP D.0 response, as far as rxfleet uses it."""

    header_status: HeaderResponseStatus
    transaction_index: int
    status: TransactionResponseStatus | None = None
    reject_count: int = 0
    reject_codes: tuple[str, ...] = ()
    authorization_number: str | None = None
    message: str | None = None
    additional_messages: tuple[str, ...] = ()
    rx_number: str | None = None
    patient_pay_amount: Decimal | None = None
    total_amount_paid: Decimal | None = None


def parse_response(line: str | bytes) -> list[NcpdpResponse]:
    """Parse one response transmission: one :class:`NcpdpResponse` per transaction.

    A response with no transaction group (a rejected header) gives one response
    built from the transmission-level segments. Raises :class:`InputError` when
    the response cannot be read.
    """
    text = line.decode("utf-8", errors="replace") if isinstance(line, bytes) else line
    text = text.rstrip("\r\n")
    if len(text) < RESPONSE_HEADER_LENGTH:
        raise InputError(_RESPONSE_SOURCE, "response header shorter than 31 bytes")
    header, count = _response_header(text[:RESPONSE_HEADER_LENGTH])
    chunks = text[RESPONSE_HEADER_LENGTH:].split(GROUP_SEPARATOR)
    common = _response_values(chunks[0])
    groups = [chunk for chunk in chunks[1:] if chunk.strip(SEGMENT_SEPARATOR)]
    if groups and count != len(groups):
        raise InputError(_RESPONSE_SOURCE, "109-A9 transaction count disagrees with the groups")
    responses = [
        _response(header, index, {**common, **_response_values(group)})
        for index, group in enumerate(groups or [""])
    ]
    return responses


def _response_header(text: str) -> tuple[HeaderResponseStatus, int]:
    offset = 0
    values: dict[str, Any] = {}
    for spec in RESPONSE_HEADER:
        try:
            values[spec.name] = spec.convert(text[offset : offset + spec.width])
        except FieldValueError as exc:
            raise InputError(_RESPONSE_SOURCE, f"{spec.ref} {spec.name}: {exc}") from exc
        offset += spec.width
    status = _enum(HeaderResponseStatus, values["header_response_status"], "501-F1")
    return status, values["transaction_count"]


def _response_values(chunk: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in _segments(chunk):
        if isinstance(item, Problem):
            raise InputError(_RESPONSE_SOURCE, item.message)
        if not _is_response_segment(item.segment_id):
            raise InputError(_RESPONSE_SOURCE, f"unknown response segment AM{item.segment_id}")
        # D.0 response segments rxfleet does not read (AM24 DUR, AM25 insurance, AM26
        # PA, AM27, AM28 COB/other payers -- typical with reject 41 --, AM29 patient)
        # are valid and ignored: RESPONSE_FIELDS has no specs for them.
        _collect(values, item, RESPONSE_FIELDS.get(item.segment_id, {}))
    return values


def _is_response_segment(segment_id: str) -> bool:
    """D.0 response segments are AM20 to AM29 (request segments are 01 to 16)."""
    return segment_id.isdigit() and 20 <= int(segment_id) <= 29


def _collect(values: dict[str, Any], segment: Segment, specs: Mapping[str, FieldSpec]) -> None:
    for field_id, raw in segment.fields:
        spec = specs.get(field_id)
        if spec is None:
            continue
        try:
            value = spec.convert(raw)
        except FieldValueError as exc:
            raise InputError(_RESPONSE_SOURCE, f"{spec.ref} {spec.name}: {exc}") from exc
        if spec.name in REPEATING_RESPONSE_FIELDS:
            values[spec.name] = (*values.get(spec.name, ()), value)
        else:
            values[spec.name] = value


def _response(header: HeaderResponseStatus, index: int, values: dict[str, Any]) -> NcpdpResponse:
    declared = values.get("reject_count")
    if declared is not None and declared != len(values.get("reject_codes", ())):
        raise InputError(_RESPONSE_SOURCE, "510-FA reject count disagrees with the 511-FB codes")
    raw_status = values.pop("transaction_response_status", None)
    status = None if raw_status is None else _enum(TransactionResponseStatus, raw_status, "112-AN")
    values.pop("rx_reference_qualifier", None)
    return NcpdpResponse(header_status=header, transaction_index=index, status=status, **values)


def _enum(kind: type[_E], raw: str, ref: str) -> _E:
    try:
        return kind(raw)
    except ValueError as exc:
        raise InputError(_RESPONSE_SOURCE, f"{ref} is not a known status code") from exc
