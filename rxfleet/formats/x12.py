"""ASC X12 837P / 837I: every service line that carries an NDC becomes a drug claim.

The delimiters come from the ISA segment, never assumed: the element separator
is the character after ``ISA``, the component separator is ISA16, the segment
terminator the character right after ISA16, and (5010) ISA11 the repetition
separator. Line breaks after terminators are ignored. The file is read in chunks
and split on the terminator, one segment at a time (constant memory).

Loops are tracked with a small state machine (:class:`_Walker`): billing
provider (``NM1*85``), subscriber (``HL`` 22, ``NM1*IL``, ``DMG``), payer
(``NM1*PR``), patient (``HL`` 23, ``NM1*QC``, ``DMG``), claim (``CLM``), service
line (``LX`` + ``SV1``/``SV2`` + ``DTP*472``), drug (``LIN**N4`` + ``CTP`` +
``REF*XZ``) and the rendering/ordering provider (``NM1*82`` / ``NM1*DK``, line
level before claim level; ordering before rendering). ``NM1*IL``/``NM1*PR`` after
``CLM`` belong to other-payer loops (2330A/B) and are ignored. A line is emitted
when the next ``LX``, ``CLM``, ``HL`` or envelope segment closes it.

Canonical fields of a drug line: ``claim_id`` made at ingestion as a keyed
token of the line's identity (:func:`claim_identity`: billing provider, CLM01,
LX01, date of service, REF*XZ; CLM01 never in clear, no file position),
``patient_relationship_code`` (306-C6 from PAT01, 1 without a patient loop), ``cardholder_id``
(subscriber NM109), patient names and date of birth (the patient loop when
present, else the subscriber), ``date_of_service`` (line ``DTP*472``, else claim
``DTP*472``/``DTP*434``; the start of a range), ``ndc`` (LIN03 as given),
``quantity_dispensed`` (CTP04 converted to the NCPDP billing unit of CTP05:
UN->EA, ML->ML, GR->GM, ME->GM / 1000, F2 (international units) -> EA, the count of units)
and ``unit_of_measure`` (600-28), ``prescriber_id``, ``service_provider_id``
(billing provider NM109), ``rx_number`` (``REF*XZ``), ``gross_amount_due`` (SV102
/ SV203 line charge = 430-DU), ``pos`` (837P only: SV105, else CLM05-1),
``group_id`` (SBR03 of loop 2000B, else the payer table), ``transaction_code``
(CLM05-3: 1 -> B1, 7 -> B3, 8 -> B2; blank: absent; anything else is
``INVALID_TRANSACTION_CODE``) and
``bin``/``pcn``/``plan_id`` from the payer routing table keyed by the payer id.
``days_supply`` is left absent: the 837 has no standard element for it.

Nothing is lost: every service line with a ``LIN`` is a record (a LIN02 other
than N4 is quarantined ``PRODUCT_NOT_NDC``); each ``ISA`` re-declares the
delimiters; a first pass checks the envelopes (SE01 count, ST02/SE02, GS06/GE02,
ISA13/IEA02, GE01, IEA01, missing trailers) and the claims of a broken envelope
are quarantined; a segment that is not UTF-8 quarantines the claims it belongs to.
A file without any drug line is ``InputError("empty file: no claims")``.

``Record.number`` is the 1-based position of the ``LIN`` segment in the file
(the ISA is segment 1). A payer without a route gives a record with problem
``NO_PAYER_ROUTE`` (field ``payer_id``). Loop and segment positions are tables in
:mod:`rxfleet.formats.x12_segments`, whose docstring cites the sources.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from rxfleet.claims.dates import ccyymmdd_to_iso
from rxfleet.errors import ConfigError, InputError
from rxfleet.formats.base import KeyedId, Problem, Record
from rxfleet.formats.textio import EMPTY_FILE, NOT_UTF8, has_escaped, open_binary, scrub
from rxfleet.formats.x12_segments import (
    CLM_FACILITY,
    CLM_FREQUENCY,
    CLM_ID,
    CTP_QUANTITY,
    CTP_UNIT,
    DMG_DATE,
    DMG_FORMAT,
    DTP_FORMAT,
    DTP_QUALIFIER,
    DTP_VALUE,
    FREQUENCY_TO_TRANSACTION,
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
    PAT_RELATIONSHIP,
    REF_QUALIFIER,
    REF_VALUE,
    RELATIONSHIP_OTHER,
    RELATIONSHIP_TO_NCPDP,
    REPETITION_VERSION,
    SBR_GROUP,
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
    "envelope_problems",
    "load_payer_routes",
    "parse_isa",
    "read_x12",
    "records_from_segments",
    "segments_with_delimiters",
    "sniff_x12",
]

Routes = Mapping[str, Mapping[str, str]]
#: No payer routes: every drug line is quarantined ``NO_PAYER_ROUTE``.
NO_ROUTES: Routes = {}
ROUTE_FIELDS = ("bin", "pcn", "group_id", "plan_id")
_CHUNK = 64 * 1024
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
    # Bytes that are not UTF-8 become lone surrogates (never produced by valid
    # UTF-8): the walker quarantines the claims whose segments hold them.
    decoder = codecs.getincrementaldecoder("utf-8")(errors="surrogateescape")
    while block := handle.read(_CHUNK):
        yield decoder.decode(block)
    yield decoder.decode(b"", final=True)


_ISA_WINDOW = 200  # an ISA is 106 characters; read this much before parsing one


def segments_with_delimiters(chunks: Iterable[str]) -> Iterator[tuple[str, Delimiters]]:
    """Split a stream of text chunks into segments, re-reading the delimiters at every
    ``ISA`` (a file may hold several interchanges, each with its own separators).

    Raises ValueError when the stream does not open with an ISA segment.
    """
    scanner = _Scanner(iter(chunks))
    delimiters: Delimiters | None = None
    while scanner.at_text():
        delimiters = scanner.delimiters(delimiters)
        text = scanner.segment(delimiters.segment)
        if text:
            yield text, delimiters


@dataclass(slots=True)
class _Scanner:
    """A window on a stream of text chunks: what is buffered and where reading is."""

    source: Iterator[str]
    buf: str = ""
    pos: int = 0
    done: bool = False

    def fill(self) -> bool:
        """Append the next chunk (dropping what was read); False at the end of the stream."""
        more = next(self.source, None)
        if more is None:
            self.done = True
            return False
        self.buf, self.pos = self.buf[self.pos :] + more, 0
        return True

    def at_text(self) -> bool:
        """Skip what separates segments; False when the stream ends first."""
        while True:
            while self.pos < len(self.buf) and self.buf[self.pos] in _LEADING:
                self.pos += 1
            if self.pos < len(self.buf):
                return True
            if self.done or not self.fill():
                return False

    def delimiters(self, current: Delimiters | None) -> Delimiters:
        """Those of the ISA that starts here, else ``current`` (the first segment must be
        an ISA: ValueError when it is not)."""
        if current is not None and not self.buf.startswith(ISA, self.pos):
            return current
        while len(self.buf) - self.pos < _ISA_WINDOW and not self.done and self.fill():
            pass
        try:
            return parse_isa(self.buf[self.pos :])
        except ValueError:
            if current is None:
                raise
            return current

    def segment(self, terminator: str) -> str:
        """The text up to ``terminator`` (or the end of the stream), read past it."""
        end = self.buf.find(terminator, self.pos)
        while end < 0 and not self.done:
            searched = len(self.buf) - self.pos
            if not self.fill():
                break
            end = self.buf.find(terminator, self.pos + searched)
        if end < 0:
            text, self.pos = self.buf[self.pos :], len(self.buf)
        else:
            text, self.pos = self.buf[self.pos : end], end + 1
        return text.strip("\r\n")


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
    """Stream the drug lines of an 837P/837I file as records, in input order.

    Two passes over the file, both streaming: the first checks the envelopes
    (ISA/IEA, GS/GE, ST/SE counts and control numbers), the second emits the
    records, quarantining the claims of a broken envelope. An empty file, or one
    without a single drug line, is ``InputError("empty file: no claims")``.
    """
    try:
        problems = envelope_problems(_file_segments(path))
    except ValueError as exc:
        raise InputError(path, f"not an ASC X12 interchange: {exc}", 1) from exc
    emitted = False
    for record in _records(_file_segments(path), routes, path, problems):
        emitted = True
        yield record
    if not emitted:
        raise InputError(path, EMPTY_FILE)


def _file_segments(path: str) -> Iterator[tuple[str, Delimiters]]:
    with open_binary(path) as handle:
        yield from segments_with_delimiters(_decoded_chunks(handle))


def records_from_segments(
    segments: Iterable[str], delimiters: Delimiters, routes: Routes, source: str = ""
) -> Iterator[Record]:
    """The drug-line records of segment texts of one set of delimiters (pure: no I/O)."""
    pairs = [(text, delimiters) for text in segments]
    yield from _records(pairs, routes, source, envelope_problems(pairs))


def _records(
    pairs: Iterable[tuple[str, Delimiters]],
    routes: Routes,
    source: str,
    problems: Mapping[tuple[str, int], Problem],
) -> Iterator[Record]:
    walker: _Walker | None = None
    for number, (text, delimiters) in enumerate(pairs, start=1):
        if walker is None:
            walker = _Walker(delimiters, routes, source, problems)
        walker.delimiters = delimiters
        yield from walker.feed(text.split(delimiters.element), number, text)
    if walker is not None:
        yield from walker.close_line()


# --- envelopes (first pass) --------------------------------------------------------


@dataclass(slots=True)
class _Envelope:
    key: tuple[str, int]
    control: str
    count: int = 0  # segments (ST), transaction sets (GS) or groups (ISA)


def envelope_problems(pairs: Iterable[tuple[str, Delimiters]]) -> dict[tuple[str, int], Problem]:
    """Broken envelopes by ``("ISA"|"GS"|"ST", ordinal in the file)``.

    Checks (ASC X12 005010 envelope rules, X222A2/X223A3 TR3 appendix B): SE01 =
    the number of segments from ST to SE inclusive, SE02 = ST02, GE01 = the number
    of ST sets, GE02 = GS06, IEA01 = the number of GS groups, IEA02 = ISA13, and
    each header closed by its trailer before the next header or the end of file.
    """
    check = _EnvelopeCheck()
    for text, delimiters in pairs:
        check.feed(text.split(delimiters.element))
    check.close_open("ISA")
    return check.problems


#: Each envelope level: its trailer, the element of its control number, the level
#: it sits in, and the level it holds.
_TRAILER = {"ISA": "IEA", "GS": "GE", "ST": "SE"}
_CONTROL_ELEMENT = {"ISA": 13, "GS": 6, "ST": 2}
_PARENT = {"GS": "ISA", "ST": "GS"}
_INNER = {"ISA": "GS", "GS": "ST"}
_LEVEL_OF_TRAILER = {"SE": "ST", "GE": "GS", "IEA": "ISA"}


@dataclass
class _EnvelopeCheck:
    """One pass over the segments, one state table: the envelopes open now."""

    problems: dict[tuple[str, int], Problem] = field(default_factory=dict)
    seen: dict[str, int] = field(default_factory=lambda: {"ISA": 0, "GS": 0, "ST": 0})
    open_: dict[str, _Envelope | None] = field(
        default_factory=lambda: {"ISA": None, "GS": None, "ST": None}
    )

    def feed(self, elements: list[str]) -> None:
        tag = elements[0].strip()
        if (st := self.open_["ST"]) is not None:
            st.count += 1
        if tag in self.seen:
            self._header(tag, elements)
        elif tag in _LEVEL_OF_TRAILER:
            self._trailer(tag, elements)

    def _header(self, tag: str, elements: list[str]) -> None:
        self.close_open(tag)
        self.seen[tag] += 1
        control = _el(elements, _CONTROL_ELEMENT[tag])
        self.open_[tag] = _Envelope((tag, self.seen[tag]), control, 1 if tag == "ST" else 0)
        parent = _PARENT.get(tag)
        if parent and (holder := self.open_[parent]) is not None:
            holder.count += 1

    def _trailer(self, tag: str, elements: list[str]) -> None:
        level = _LEVEL_OF_TRAILER[tag]
        if level in _INNER:
            self.close_open(_INNER[level])
        closing = self.open_[level]
        if closing is not None:
            self._check(closing, _el(elements, 1), _el(elements, 2), tag)
            self.open_[level] = None

    def close_open(self, level: str) -> None:
        """Flag ``level`` and everything inside it still open: a missing trailer."""
        for name in ("ST", "GS", "ISA")[: ("ST", "GS", "ISA").index(level) + 1]:
            env = self.open_[name]
            if env is not None:
                self._flag(env, "MISSING_TRAILER", f"{name} without its {_TRAILER[name]} trailer")
                self.open_[name] = None

    def _check(self, env: _Envelope, counted: str, control: str, what: str) -> None:
        if counted != str(env.count) and _int(counted) != env.count:
            self._flag(env, _COUNT_CODE[what], f"{what}01 count disagrees with the envelope")
        if not _same_control(control, env.control):
            self._flag(env, "CONTROL_NUMBER_MISMATCH", f"{what}02 control number disagrees")

    def _flag(self, env: _Envelope, code: str, message: str) -> None:
        self.problems.setdefault(env.key, Problem(code, message, "envelope"))


_COUNT_CODE = {
    "SE": "SEGMENT_COUNT_MISMATCH",
    "GE": "GROUP_COUNT_MISMATCH",
    "IEA": "GROUP_COUNT_MISMATCH",
}


def _int(text: str) -> int | None:
    return int(text) if text.isascii() and text.isdigit() else None


def _same_control(a: str, b: str) -> bool:
    if a == b:
        return True
    return _int(a) is not None and _int(a) == _int(b)


# --- loop state ----------------------------------------------------------------------


@dataclass(slots=True)
class _Person:
    last: str = ""
    first: str = ""
    member_id: str = ""
    dob: str = ""
    relationship: str = ""  # PAT01 of the patient loop (2000C)


@dataclass(slots=True)
class _Line:
    number: str
    lin_qualifier: str = ""
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
    frequency: str = ""  # CLM05-3
    service_date: str = ""
    providers: dict[str, str] = field(default_factory=dict)
    line: _Line | None = None
    bad_text: bool = False


@dataclass(slots=True)
class _Loops:
    billing_npi: str = ""
    subscriber: _Person = field(default_factory=_Person)
    patient: _Person | None = None
    payer_id: str = ""
    group_number: str = ""  # SBR03 of loop 2000B
    claim: _Claim | None = None
    last_entity: str = ""
    bad_text: bool = False  # a segment of these loops was not UTF-8
    billing_bad_text: bool = False  # ... of the billing provider loop (kept across HL 22)


def _el(elements: list[str], index: int) -> str:
    return elements[index].strip() if index < len(elements) else ""


class _Walker:
    """Feeds segments through the 837 loops and emits a record per closed drug line."""

    def __init__(
        self,
        delimiters: Delimiters,
        routes: Routes,
        source: str,
        problems: Mapping[tuple[str, int], Problem] | None = None,
    ) -> None:
        self.delimiters = delimiters
        self.emitter = _Emitter(routes, source, problems or {})
        self.loops = _Loops()
        self.level = ""
        self.set_bad_text = False
        self.handlers = {
            "ST": self._on_reset,
            "SBR": self._on_sbr,
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
            "PAT": self._on_pat,
        }

    def feed(self, elements: list[str], number: int, text: str = "") -> Iterator[Record]:
        tag = elements[0].strip()
        if tag in LINE_CLOSERS or tag == ISA:
            yield from self.close_line()
        self.emitter.count(tag)
        if text and has_escaped(text):
            self._mark_bad_text()
        handler = self.handlers.get(tag)
        if handler is not None:
            handler(elements, number)

    def _mark_bad_text(self) -> None:
        loops = self.loops
        if loops.claim is not None:
            loops.claim.bad_text = True
        elif self.level == HierarchicalLevel.BILLING_PROVIDER:
            loops.bad_text = loops.billing_bad_text = True
        elif self.level:
            loops.bad_text = True
        else:  # envelope or BHT: every claim of the transaction set
            self.set_bad_text = True

    def close_line(self) -> Iterator[Record]:
        claim = self.loops.claim
        if claim is None or claim.line is None:
            return
        line, claim.line = claim.line, None
        if line.lin_segment:  # a drug line (2410 LIN): a claim or a quarantined record
            yield self.emitter.record(self.loops, claim, line, self.set_bad_text)

    # -- handlers (one per segment) --

    def _on_reset(self, elements: list[str], number: int) -> None:
        self.loops = _Loops()
        self.level = ""
        self.set_bad_text = False

    def _on_sbr(self, elements: list[str], number: int) -> None:
        if self.loops.claim is None:  # 2000B; SBR after CLM is 2320 (other subscriber)
            self.loops.group_number = _el(elements, SBR_GROUP)

    def _on_hl(self, elements: list[str], number: int) -> None:
        level, loops = _el(elements, HL_LEVEL), self.loops
        self.level = level
        if level == HierarchicalLevel.BILLING_PROVIDER:
            self.loops = _Loops()
        elif level == HierarchicalLevel.SUBSCRIBER:
            bad = loops.billing_bad_text
            self.loops = _Loops(billing_npi=loops.billing_npi, bad_text=bad, billing_bad_text=bad)
        elif level == HierarchicalLevel.PATIENT:
            loops.patient, loops.claim = _Person(), None
        loops.last_entity = ""

    def _on_pat(self, elements: list[str], number: int) -> None:
        loops = self.loops
        if loops.claim is None and loops.patient is not None:
            loops.patient.relationship = _el(elements, PAT_RELATIONSHIP)

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
            person.relationship = loops.patient.relationship if loops.patient else ""
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
        composite = _el(elements, CLM_FACILITY).split(self.delimiters.component)
        frequency = composite[CLM_FREQUENCY] if len(composite) > CLM_FREQUENCY else ""
        claim = _Claim(_el(elements, CLM_ID), place=composite[0], frequency=frequency.strip())
        self.loops.claim = claim

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
        if line is not None:
            line.lin_qualifier, line.lin_segment = _el(elements, LIN_QUALIFIER), number
            line.ndc = _el(elements, LIN_PRODUCT)

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


class _Emitter:
    """Makes the record of a closed drug line: the problems of its envelope (ISA, GS
    and ST counted as they pass), its text, its product, its route, its claim id."""

    def __init__(
        self, routes: Routes, source: str, problems: Mapping[tuple[str, int], Problem]
    ) -> None:
        self.routes = routes
        self.source = source
        self.problems = problems
        self.envelope = {"ISA": 0, "GS": 0, "ST": 0}

    def count(self, tag: str) -> None:
        if tag in self.envelope:
            self.envelope[tag] += 1

    def record(self, loops: _Loops, claim: _Claim, line: _Line, set_bad_text: bool) -> Record:
        builder = _RecordBuilder(loops, claim, line)
        for level in ("ISA", "GS", "ST"):  # a broken envelope quarantines its claims
            problem = self.problems.get((level, self.envelope[level]))
            if problem is not None:
                builder.fail(problem.code, problem.message, problem.field or "envelope")
        if set_bad_text or loops.bad_text or claim.bad_text:
            builder.fail("MALFORMED_RECORD", f"a segment of this claim is {NOT_UTF8}", "segment")
        if line.lin_qualifier != ProductQualifier.NDC:
            builder.fail("PRODUCT_NOT_NDC", "LIN02 product qualifier is not N4 (NDC)", "ndc")
        builder.route(self.routes)
        builder.convert()
        keyed = _claim_id(loops, claim, line, builder)
        return Record(self.source, line.lin_segment, builder.fields(), builder.problem, keyed)


def _claim_id(loops: _Loops, claim: _Claim, line: _Line, builder: _RecordBuilder) -> KeyedId:
    if not claim.claim_id:
        builder.fail("MISSING_FIELD", "CLM01 patient control number is empty", "claim_id")
    service = line.service_date or claim.service_date
    return claim_identity(loops.billing_npi, claim.claim_id, line.number, service, line.rx_number)


def claim_identity(
    billing_provider: str, clm01: str, lx01: str, date_of_service: str, rx_number: str
) -> KeyedId:
    """The X12 claim id, made at ingestion as a keyed token (``X12-`` + 32 hex digits)
    of the drug line's identity: billing provider NM109, CLM01, LX01, date of service
    and REF*XZ. CLM01 is the patient control number (a HIPAA identifier, often the
    patient's account number): it never appears in clear. No position in the file is
    part of it: a resubmission keeps its Idempotency-Key; an exact repeat is the same
    claim (``DUPLICATE_CLAIM_ID``), while a CLM01 reused for another service (another
    date, another prescription) is another claim."""
    return KeyedId("X12", (billing_provider, clm01, lx01, date_of_service, rx_number))


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


class _NotConvertible(ValueError):
    """A CTP05 unit with no exact NCPDP billing unit."""


#: X12 CTP05-1 (837P TR3 2410 CTP05-1 code list: F2, GR, ME, ML, UN) to the NCPDP
#: Billing Unit Standard (600-28 Unit of Measure: EA each, GM grams, ML millilitres)
#: and the factor that converts the quantity exactly. F2 (international units:
#: insulin, heparin) becomes EA with the quantity kept as the count of units: the
#: 837 does not carry the concentration (U-100, U-500) that would give millilitres,
#: so the units are billed as they were administered (docs/formats.md).
UNIT_CONVERSION: dict[str, tuple[str, Decimal]] = {
    UnitOfMeasure.UNIT: ("EA", Decimal(1)),
    UnitOfMeasure.MILLILITER: ("ML", Decimal(1)),
    UnitOfMeasure.GRAM: ("GM", Decimal(1)),
    UnitOfMeasure.MILLIGRAM: ("GM", Decimal("0.001")),
    UnitOfMeasure.INTERNATIONAL_UNIT: ("EA", Decimal(1)),
}


def convert_quantity(quantity: Decimal, unit: str) -> tuple[Decimal, str]:
    """(quantity in NCPDP billing units, the unit) for CTP04 ``quantity`` in CTP05
    ``unit``; _FieldError for a code the 837 does not define, _NotConvertible for one
    with no exact billing unit (F2)."""
    if unit not in UnitOfMeasure._value2member_map_:
        raise _FieldError("CTP05 unit of measure is not F2, GR, ME, ML or UN")
    if unit not in UNIT_CONVERSION:
        raise _NotConvertible("CTP05 unit F2 has no exact NCPDP billing unit (EA, GM, ML)")
    billing_unit, factor = UNIT_CONVERSION[unit]
    return (quantity * factor).normalize() if factor != 1 else quantity, billing_unit


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
        else:
            self.values.update({name: route[name] for name in ROUTE_FIELDS if route.get(name)})
        if self.loops.group_number:  # the file's SBR03 (2000B) wins over the table
            self.values["group_id"] = self.loops.group_number

    def convert(self) -> None:
        loops, claim, line = self.loops, self.claim, self.line
        person = loops.patient if loops.patient is not None else loops.subscriber
        self.values.update(
            cardholder_id=loops.subscriber.member_id,
            patient_first_name=person.first,
            patient_last_name=person.last,
            ndc=line.ndc if line.lin_qualifier == ProductQualifier.NDC else "",
            service_provider_id=loops.billing_npi,
            rx_number=line.rx_number,
            patient_relationship_code=_relationship(loops.patient),
            prescriber_id=_prescriber(line.providers) or _prescriber(claim.providers),
            pos=line.place,
        )
        self._convert("date_of_birth", _iso_date, person.dob, "DMG02")
        self._convert(
            "date_of_service", _iso_date, line.service_date or claim.service_date, "DTP03"
        )
        self._convert("quantity_dispensed", _decimal, line.quantity, "CTP04")
        self._unit(line.unit)
        self._transaction(claim.frequency)
        # SV102 / SV203 is the line charge: NCPDP 430-DU gross amount due, not 409-D9.
        self._convert("gross_amount_due", _decimal, line.charge, "SV1/SV2 charge")

    def _transaction(self, frequency: str) -> None:
        """CLM05-3 as a transaction code; blank is an original claim (B1 by default)."""
        if not frequency:
            return
        code = FREQUENCY_TO_TRANSACTION.get(frequency)
        if code is None:
            message = "CLM05-3 claim frequency code is not 1, 7 or 8"
            self.fail("INVALID_TRANSACTION_CODE", message, "transaction_code")
        else:
            self.values["transaction_code"] = code

    def _unit(self, unit: str) -> None:
        quantity = self.values.get("quantity_dispensed")
        if not unit:
            return
        try:
            converted, billing_unit = convert_quantity(quantity or Decimal(0), unit)
        except _FieldError as exc:
            self.fail("INVALID_FIELD", f"CTP05 unit_of_measure: {exc}", "unit_of_measure")
        except _NotConvertible as exc:
            self.fail("UNIT_NOT_CONVERTIBLE", str(exc), "unit_of_measure")
        else:
            self.values["unit_of_measure"] = billing_unit
            if quantity is not None:
                self.values["quantity_dispensed"] = converted

    def _convert(self, name: str, convert: Callable[[str], Any], raw: str, ref: str) -> None:
        if not raw:
            return
        try:
            value = convert(raw)
        except _FieldError as exc:
            self.fail("INVALID_FIELD", f"{ref} {name}: {exc}", name)
            return
        self.values[name] = value

    def fields(self) -> dict[str, Any]:
        fields = {name: value for name, value in self.values.items() if value not in ("", None)}
        return {k: scrub(v) if isinstance(v, str) else v for k, v in fields.items()}


def _relationship(patient: _Person | None) -> str:
    """306-C6 of the patient: the subscriber (1) without a patient loop, else PAT01 mapped."""
    if patient is None:
        return "1"
    return RELATIONSHIP_TO_NCPDP.get(patient.relationship, RELATIONSHIP_OTHER)


def _prescriber(providers: Mapping[str, str]) -> str:
    return providers.get(Entity.ORDERING_PROVIDER) or providers.get(Entity.RENDERING_PROVIDER, "")
