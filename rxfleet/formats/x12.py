"""ASC X12 837P / 837I: every service line that carries an NDC becomes a drug claim.

The delimiters come from the ISA segment, never assumed: the element separator
is the character after ``ISA``, the component separator is ISA16, the segment
terminator the character right after ISA16, and (5010) ISA11 the repetition
separator. Line breaks after terminators are ignored. The file is read in chunks
and split on the terminator, one segment at a time (constant memory, apart from
the last ``RECENT_IDS`` claim ids issued in the current transaction set, kept to
make them unique; an id repeated from further back is not lost: the producer's
run-wide check quarantines it as ``DUPLICATE_CLAIM_ID``).

Loops are tracked with a small state machine (:class:`_Walker`): billing
provider (``NM1*85``), subscriber (``HL`` 22, ``NM1*IL``, ``DMG``), payer
(``NM1*PR``), patient (``HL`` 23, ``NM1*QC``, ``DMG``), claim (``CLM``), service
line (``LX`` + ``SV1``/``SV2`` + ``DTP*472``), drug (``LIN**N4`` + ``CTP`` +
``REF*XZ``) and the rendering/ordering provider (``NM1*82`` / ``NM1*DK``, line
level before claim level; ordering before rendering). ``NM1*IL``/``NM1*PR`` after
``CLM`` belong to other-payer loops (2330A/B) and are ignored. A line is emitted
when the next ``LX``, ``CLM``, ``HL`` or envelope segment closes it.

Canonical fields of a drug line: ``claim_id`` = ``X12-{CLM01}-{LX01}`` (if that id
was already issued in the transaction set, ``-S{segment number of the LIN}`` is
appended; in the file's n-th transaction set, n >= 2, ``-T{n}`` too),
``cardholder_id`` (subscriber NM109), patient names and date of birth (the patient
loop when present, else the subscriber), ``date_of_service`` (line ``DTP*472``,
else claim ``DTP*472``/``DTP*434``; the start of a range), ``ndc`` (LIN03 as
given), ``quantity_dispensed`` (CTP04), ``prescriber_id``, ``service_provider_id``
(billing provider NM109), ``rx_number`` (``REF*XZ``), ``ingredient_cost_submitted``
(SV102 / SV203 line charge), ``pos`` (837P only: SV105, else CLM05-1) and
``bin``/``pcn``/``group_id``/``plan_id`` from the payer routing table keyed by the
payer id. ``days_supply`` is left absent: the 837 has no standard element for it.

``Record.number`` is the 1-based position of the ``LIN`` segment in the file
(the ISA is segment 1). A payer without a route gives a record with problem
``NO_PAYER_ROUTE`` (field ``payer_id``). Loop and segment positions are tables in
:mod:`rxfleet.formats.x12_segments`, whose docstring cites the sources.
"""

from __future__ import annotations

import codecs
import json
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from rxfleet.claims.dates import ccyymmdd_to_iso
from rxfleet.errors import ConfigError, InputError
from rxfleet.formats.base import Problem, Record
from rxfleet.formats.textio import open_binary
from rxfleet.formats.x12_segments import (
    CLM_FACILITY,
    CLM_ID,
    CTP_QUANTITY,
    CTP_UNIT,
    DMG_DATE,
    DMG_FORMAT,
    DTP_FORMAT,
    DTP_QUALIFIER,
    DTP_VALUE,
    HL_LEVEL,
    ISA,
    ISA_ELEMENTS,
    LIN_PRODUCT,
    LIN_QUALIFIER,
    LINE_CLOSERS,
    LX_NUMBER,
    NM1_ENTITY,
    NM1_FIRST,
    NM1_ID,
    NM1_LAST,
    REF_QUALIFIER,
    REF_VALUE,
    REPETITION_VERSION,
    SV1_CHARGE,
    SV1_PLACE,
    SV2_CHARGE,
    DateFormat,
    DateQualifier,
    Entity,
    HierarchicalLevel,
    ProductQualifier,
    ReferenceQualifier,
    UnitOfMeasure,
)

__all__ = [
    "Delimiters",
    "load_payer_routes",
    "parse_isa",
    "read_x12",
    "records_from_segments",
    "sniff_x12",
]

Routes = Mapping[str, Mapping[str, str]]
#: No payer routes: every drug line is quarantined ``NO_PAYER_ROUTE``.
NO_ROUTES: Routes = {}
ROUTE_FIELDS = ("bin", "pcn", "group_id", "plan_id")
_CHUNK = 64 * 1024
RECENT_IDS = 10_000  # claim ids remembered to make repeats unique (bounded memory)
_LEADING = "\ufeff \t\r\n"
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


class _FieldError(ValueError):
    """A value that does not fit its element; the message never quotes it."""


@dataclass(frozen=True, slots=True)
class Delimiters:
    """The separators an interchange declares in its ISA segment."""

    element: str
    component: str
    segment: str
    repetition: str | None = None


# --- delimiters, sniffing, streaming -------------------------------------------


def parse_isa(text: str) -> Delimiters:
    """The delimiters of the interchange that ``text`` starts with; ValueError if none."""
    text = text.lstrip(_LEADING)
    if not text.startswith(ISA) or len(text) < 4:
        raise ValueError("no ISA segment")
    element = text[3]
    parts = text.split(element, ISA_ELEMENTS)
    if len(parts) <= ISA_ELEMENTS or len(parts[ISA_ELEMENTS]) < 2:
        raise ValueError("ISA segment is incomplete")
    component, segment = parts[ISA_ELEMENTS][0], parts[ISA_ELEMENTS][1]
    if len({element, component, segment}) != 3 or any(c.isalnum() for c in (element, segment)):
        raise ValueError("ISA delimiters are not distinct separators")
    version = parts[12]
    repetition = parts[11] if version >= REPETITION_VERSION and len(parts[11]) == 1 else None
    return Delimiters(element, component, segment, repetition)


def sniff_x12(head: bytes) -> bool:
    """True when ``head`` (the first bytes of a file) opens an X12 interchange."""
    try:
        parse_isa(head.decode("utf-8", errors="replace"))
    except ValueError:
        return False
    return True


def iter_segments(chunks: Iterable[str], terminator: str) -> Iterator[str]:
    """Split a stream of text chunks into segments, dropping line breaks around them."""
    rest = ""
    for chunk in chunks:
        parts = (rest + chunk).split(terminator)
        rest = parts.pop()
        yield from (part.strip("\r\n") for part in parts if part.strip("\r\n"))
    if rest.strip(_LEADING):
        yield rest.strip("\r\n")


def _decoded_chunks(handle: IO[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while block := handle.read(_CHUNK):
        yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


# --- payer routes ----------------------------------------------------------------


def load_payer_routes(path: str | Path) -> dict[str, dict[str, str]]:
    """The ``routes`` table of a payer routing file (``config/payer_routes.json``)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        routes = data["routes"]
        return {str(k): {f: str(v[f]) for f in ROUTE_FIELDS if f in v} for k, v in routes.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(f"payer routes file {path} cannot be read: {exc}") from exc


# --- reading -----------------------------------------------------------------------


def read_x12(path: str, routes: Routes) -> Iterator[Record]:
    """Stream the drug lines of an 837P/837I file as records, in input order."""
    with open_binary(path) as handle:
        chunks = _decoded_chunks(handle)
        head = next(chunks, "")
        while len(head.lstrip(_LEADING)) < 200 and (more := next(chunks, None)) is not None:
            head += more
        try:
            delimiters = parse_isa(head)
        except ValueError as exc:
            raise InputError(path, f"not an ASC X12 interchange: {exc}", 1) from exc

        segments = iter_segments(_prepend(head.lstrip(_LEADING), chunks), delimiters.segment)
        yield from records_from_segments(segments, delimiters, routes, path)


def _prepend(first: str, rest: Iterator[str]) -> Iterator[str]:
    yield first
    yield from rest


def records_from_segments(
    segments: Iterable[str], delimiters: Delimiters, routes: Routes, source: str = ""
) -> Iterator[Record]:
    """The drug-line records of a stream of segment texts (pure: no I/O)."""
    walker = _Walker(delimiters, routes, source)
    for number, text in enumerate(segments, start=1):
        yield from walker.feed(text.split(delimiters.element), number)
    yield from walker.close_line()


# --- loop state ----------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    last: str = ""
    first: str = ""
    member_id: str = ""
    dob: str = ""


@dataclass(slots=True)
class _Line:
    number: str
    charge: str = ""
    place: str = ""
    service_date: str = ""
    ndc: str = ""
    lin_segment: int = 0
    quantity: str = ""
    unit: str = ""
    rx_number: str = ""
    providers: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class _Claim:
    claim_id: str
    place: str = ""
    service_date: str = ""
    providers: dict[str, str] = field(default_factory=dict)
    line: _Line | None = None


@dataclass(slots=True)
class _Loops:
    billing_npi: str = ""
    subscriber: _Person = field(default_factory=_Person)
    patient: _Person | None = None
    payer_id: str = ""
    claim: _Claim | None = None
    last_entity: str = ""


def _el(elements: list[str], index: int) -> str:
    return elements[index].strip() if index < len(elements) else ""


class _Walker:
    """Feeds segments through the 837 loops and emits a record per closed drug line."""

    def __init__(self, delimiters: Delimiters, routes: Routes, source: str) -> None:
        self.delimiters = delimiters
        self.routes = routes
        self.source = source
        self.loops = _Loops()
        self.issued: OrderedDict[str, None] = OrderedDict()
        self.transaction_sets = 0
        self.handlers = {
            "ST": self._on_reset,
            "HL": self._on_hl,
            "NM1": self._on_nm1,
            "DMG": self._on_dmg,
            "CLM": self._on_clm,
            "DTP": self._on_dtp,
            "LX": self._on_lx,
            "SV1": self._on_sv1,
            "SV2": self._on_sv2,
            "LIN": self._on_lin,
            "CTP": self._on_ctp,
            "REF": self._on_ref,
        }

    def feed(self, elements: list[str], number: int) -> Iterator[Record]:
        tag = elements[0].strip()
        if tag in LINE_CLOSERS:
            yield from self.close_line()
        handler = self.handlers.get(tag)
        if handler is not None:
            handler(elements, number)

    def close_line(self) -> Iterator[Record]:
        claim = self.loops.claim
        if claim is None or claim.line is None:
            return
        line, claim.line = claim.line, None
        if line.ndc:
            yield self._record(claim, line)

    # -- handlers (one per segment) --

    def _on_reset(self, elements: list[str], number: int) -> None:
        self.loops = _Loops()
        self.issued = OrderedDict()  # ids are made unique per transaction set
        self.transaction_sets += 1

    def _on_hl(self, elements: list[str], number: int) -> None:
        level, loops = _el(elements, HL_LEVEL), self.loops
        if level == HierarchicalLevel.BILLING_PROVIDER:
            self.loops = _Loops()
        elif level == HierarchicalLevel.SUBSCRIBER:
            self.loops = _Loops(billing_npi=loops.billing_npi)
        elif level == HierarchicalLevel.PATIENT:
            loops.patient, loops.claim = _Person(), None
        loops.last_entity = ""

    def _on_nm1(self, elements: list[str], number: int) -> None:
        entity, loops = _el(elements, NM1_ENTITY), self.loops
        loops.last_entity = entity
        person = _Person(_el(elements, NM1_LAST), _el(elements, NM1_FIRST), _el(elements, NM1_ID))
        if entity == Entity.BILLING_PROVIDER:
            loops.billing_npi = person.member_id
        elif entity in (Entity.RENDERING_PROVIDER, Entity.ORDERING_PROVIDER):
            self._provider(entity, person.member_id)
        elif loops.claim is not None:
            return  # other subscriber / other payer loops (2330x) after CLM
        elif entity == Entity.SUBSCRIBER:
            loops.subscriber = person
        elif entity == Entity.PATIENT:
            loops.patient = person
        elif entity == Entity.PAYER:
            loops.payer_id = person.member_id

    def _provider(self, entity: str, npi: str) -> None:
        claim = self.loops.claim
        if claim is not None:
            target = claim.line.providers if claim.line is not None else claim.providers
            target[entity] = npi

    def _on_dmg(self, elements: list[str], number: int) -> None:
        loops = self.loops
        if loops.claim is not None or _el(elements, DMG_FORMAT) != DateFormat.DATE:
            return
        if loops.last_entity == Entity.SUBSCRIBER:
            loops.subscriber.dob = _el(elements, DMG_DATE)
        elif loops.last_entity == Entity.PATIENT and loops.patient is not None:
            loops.patient.dob = _el(elements, DMG_DATE)

    def _on_clm(self, elements: list[str], number: int) -> None:
        place = _el(elements, CLM_FACILITY).split(self.delimiters.component)[0]
        self.loops.claim = _Claim(_el(elements, CLM_ID), place=place)

    def _on_dtp(self, elements: list[str], number: int) -> None:
        claim = self.loops.claim
        qualifier, value = _el(elements, DTP_QUALIFIER), _date_value(elements)
        if claim is None or not value:
            return
        if claim.line is not None:
            if qualifier == DateQualifier.SERVICE:
                claim.line.service_date = value
        elif qualifier == DateQualifier.SERVICE or (
            qualifier == DateQualifier.STATEMENT and not claim.service_date
        ):
            claim.service_date = value

    def _on_lx(self, elements: list[str], number: int) -> None:
        if self.loops.claim is not None:
            self.loops.claim.line = _Line(_el(elements, LX_NUMBER))

    def _line(self) -> _Line | None:
        claim = self.loops.claim
        return None if claim is None else claim.line

    def _on_sv1(self, elements: list[str], number: int) -> None:
        claim = self.loops.claim
        if claim is not None and claim.line is not None:
            claim.line.charge = _el(elements, SV1_CHARGE)
            claim.line.place = _el(elements, SV1_PLACE) or claim.place

    def _on_sv2(self, elements: list[str], number: int) -> None:
        if (line := self._line()) is not None:
            line.charge = _el(elements, SV2_CHARGE)

    def _on_lin(self, elements: list[str], number: int) -> None:
        line = self._line()
        if line is not None and _el(elements, LIN_QUALIFIER) == ProductQualifier.NDC:
            line.ndc, line.lin_segment = _el(elements, LIN_PRODUCT), number

    def _on_ctp(self, elements: list[str], number: int) -> None:
        if (line := self._line()) is not None:
            line.quantity = _el(elements, CTP_QUANTITY)
            line.unit = _el(elements, CTP_UNIT).split(self.delimiters.component)[0]

    def _on_ref(self, elements: list[str], number: int) -> None:
        line = self._line()
        if (
            line is not None
            and _el(elements, REF_QUALIFIER) == ReferenceQualifier.PRESCRIPTION_NUMBER
        ):
            line.rx_number = _el(elements, REF_VALUE)

    # -- records --

    def _record(self, claim: _Claim, line: _Line) -> Record:
        builder = _RecordBuilder(self.loops, claim, line)
        builder.route(self.routes)
        builder.convert()
        builder.values["claim_id"] = self._claim_id(claim, line, builder)
        return Record(self.source, line.lin_segment, builder.fields(), builder.problem)

    def _claim_id(self, claim: _Claim, line: _Line, builder: _RecordBuilder) -> str:
        if not claim.claim_id:
            builder.fail("MISSING_FIELD", "CLM01 patient control number is empty", "claim_id")
        claim_id = f"X12-{claim.claim_id}-{line.number}"
        if self.transaction_sets > 1:
            claim_id += f"-T{self.transaction_sets}"
        if claim_id in self.issued:
            claim_id = f"{claim_id}-S{line.lin_segment}"
        self.issued[claim_id] = None
        if len(self.issued) > RECENT_IDS:  # bounded memory whatever the file's size
            self.issued.popitem(last=False)
        return claim_id


def _date_value(elements: list[str]) -> str:
    fmt, value = _el(elements, DTP_FORMAT), _el(elements, DTP_VALUE)
    if fmt == DateFormat.RANGE:
        return value.split("-")[0]
    return value if fmt == DateFormat.DATE else ""


def _iso_date(text: str) -> str:
    try:
        return ccyymmdd_to_iso(text)
    except ValueError as exc:
        raise _FieldError(str(exc)) from None


def _decimal(text: str) -> Decimal:
    if not _NUMBER.fullmatch(text):
        raise _FieldError("not a decimal number")
    return Decimal(text)


def _unit(text: str) -> str:
    if text and text not in UnitOfMeasure._value2member_map_:
        raise _FieldError("CTP05 unit of measure is not F2, GR, ME, ML or UN")
    return text


class _RecordBuilder:
    """Assembles one drug line's canonical fields and its first problem."""

    def __init__(self, loops: _Loops, claim: _Claim, line: _Line) -> None:
        self.loops, self.claim, self.line = loops, claim, line
        self.values: dict[str, Any] = {}
        self.problem: Problem | None = None

    def fail(self, code: str, message: str, name: str) -> None:
        if self.problem is None:
            self.problem = Problem(code, message, name)

    def route(self, routes: Routes) -> None:
        route = routes.get(self.loops.payer_id) if self.loops.payer_id else None
        if route is None:
            message = "no payer route for the payer id of NM1*PR (NM109)"
            self.fail("NO_PAYER_ROUTE", message, "payer_id")
            return
        self.values.update({name: route[name] for name in ROUTE_FIELDS if route.get(name)})

    def convert(self) -> None:
        loops, claim, line = self.loops, self.claim, self.line
        person = loops.patient if loops.patient is not None else loops.subscriber
        self.values.update(
            cardholder_id=loops.subscriber.member_id,
            patient_first_name=person.first,
            patient_last_name=person.last,
            ndc=line.ndc,
            service_provider_id=loops.billing_npi,
            rx_number=line.rx_number,
            prescriber_id=_prescriber(line.providers) or _prescriber(claim.providers),
            pos=line.place,
        )
        self._convert("date_of_birth", _iso_date, person.dob, "DMG02")
        self._convert(
            "date_of_service", _iso_date, line.service_date or claim.service_date, "DTP03"
        )
        self._convert("quantity_dispensed", _decimal, line.quantity, "CTP04")
        self._convert("quantity_dispensed", _unit, line.unit, "CTP05", keep=False)
        self._convert("ingredient_cost_submitted", _decimal, line.charge, "SV1/SV2 charge")

    def _convert(
        self, name: str, convert: Callable[[str], Any], raw: str, ref: str, keep: bool = True
    ) -> None:
        if not raw:
            return
        try:
            value = convert(raw)
        except _FieldError as exc:
            self.fail("INVALID_FIELD", f"{ref} {name}: {exc}", name)
            return
        if keep:
            self.values[name] = value

    def fields(self) -> dict[str, Any]:
        return {name: value for name, value in self.values.items() if value not in ("", None)}


def _prescriber(providers: Mapping[str, str]) -> str:
    return providers.get(Entity.ORDERING_PROVIDER) or providers.get(Entity.RENDERING_PROVIDER, "")
