"""ASC X12 837P / 837I as data: delimiters, loop markers and the code sets rxfleet reads.

Sources (public):

- ISA layout: 16 elements, ISA11 repetition separator (5010) / standards id
  (4010), ISA12 version, ISA16 component separator, the segment terminator
  right after it: pyx12 segment maps, e.g. https://pyx12.sourceforge.net/doc/maps/837.X098.A1.seg.html
  and Stedi's 5010 guides (delimiters ``~ * > ^`` are conventions, not rules).
- Loops and segments of the 837P (005010X222A2): billing provider 2010AA
  ``NM1*85``, subscriber 2000B ``HL*..*22`` / 2010BA ``NM1*IL`` + ``DMG*D8``,
  payer 2010BB ``NM1*PR``, patient 2000C ``HL*..*23`` / 2010CA ``NM1*QC``, claim
  2300 ``CLM`` (CLM05-1 place of service), rendering provider 2310B / 2420A
  ``NM1*82``, service line 2400 ``LX`` + ``SV1`` (SV102 charge, SV105 place of
  service) + ``DTP*472``, drug identification 2410 ``LIN**N4`` + ``CTP`` (CTP04
  quantity, CTP05-1 unit: F2, GR, ME, ML, UN) + ``REF*XZ`` (prescription number),
  ordering provider 2420E ``NM1*DK``; 837I (005010X223A3) ``SV2`` (SV203 charge) and
  claim statement dates ``DTP*434``: the LinuxForHealth x12 sample interchanges
  bundled under ``tests/resources/x12`` (Apache-2.0) and pyx12's maps.
"""

from __future__ import annotations

from enum import StrEnum

ISA = "ISA"
ISA_ELEMENTS = 16
#: First ISA12 version that uses ISA11 as the repetition separator.
REPETITION_VERSION = "00501"


class HierarchicalLevel(StrEnum):
    """HL03 Hierarchical Level Code."""

    BILLING_PROVIDER = "20"
    SUBSCRIBER = "22"
    PATIENT = "23"


class Entity(StrEnum):
    """NM101 Entity Identifier Code (the ones rxfleet reads)."""

    BILLING_PROVIDER = "85"
    SUBSCRIBER = "IL"
    PATIENT = "QC"
    PAYER = "PR"
    RENDERING_PROVIDER = "82"
    ORDERING_PROVIDER = "DK"


class DateQualifier(StrEnum):
    """DTP01 Date/Time Qualifier."""

    SERVICE = "472"
    STATEMENT = "434"


class DateFormat(StrEnum):
    """DTP02 / DMG01 Date Time Period Format Qualifier."""

    DATE = "D8"
    RANGE = "RD8"


class ProductQualifier(StrEnum):
    """LIN02 Product/Service ID Qualifier (N4 = NDC in 5-4-2 format)."""

    NDC = "N4"


class ReferenceQualifier(StrEnum):
    """REF01 Reference Identification Qualifier."""

    PRESCRIPTION_NUMBER = "XZ"


class UnitOfMeasure(StrEnum):
    """CTP05-1 Unit or Basis for Measurement Code in the 837 drug loop."""

    INTERNATIONAL_UNIT = "F2"
    GRAM = "GR"
    MILLIGRAM = "ME"
    MILLILITER = "ML"
    UNIT = "UN"


#: Segments that end a service line (and so emit its drug record, if any).
LINE_CLOSERS = frozenset({"LX", "CLM", "HL", "SE", "ST", "GE", "IEA", "GS", "ISA"})


# Element positions (index into the segment split on the element separator).
NM1_ENTITY, NM1_LAST, NM1_FIRST, NM1_ID = 1, 3, 4, 9
HL_LEVEL = 3
DMG_FORMAT, DMG_DATE = 1, 2
CLM_ID, CLM_FACILITY = 1, 5
CLM_FREQUENCY = 2  # CLM05-3 claim frequency type code: the third component of CLM05
DTP_QUALIFIER, DTP_FORMAT, DTP_VALUE = 1, 2, 3
LX_NUMBER = 1
SV1_CHARGE, SV1_PLACE = 2, 5
SV2_CHARGE = 3
LIN_QUALIFIER, LIN_PRODUCT = 2, 3
CTP_QUANTITY, CTP_UNIT = 4, 5
REF_QUALIFIER, REF_VALUE = 1, 2
SBR_GROUP = 3  # SBR03 Reference Identification: subscriber group or policy number (2000B)
PAT_RELATIONSHIP = 1  # PAT01 Individual Relationship Code (2000C): 01 spouse, 19 child, ...

#: CLM05-3 claim frequency type code to the NCPDP transaction code (103-A3): 1
#: original claim = B1 billing, 7 replacement of a prior claim = B3 rebill, 8 void
#: of a prior claim = B2 reversal. Any other code has no drug-claim meaning here.
FREQUENCY_TO_TRANSACTION = {"1": "B1", "7": "B3", "8": "B2"}

#: PAT01 (2000C patient loop) to NCPDP 306-C6 Patient Relationship Code (1
#: cardholder, 2 spouse, 3 child, 4 other). Without a patient loop the patient
#: is the subscriber: 1.
RELATIONSHIP_TO_NCPDP = {"18": "1", "01": "2", "19": "3"}
RELATIONSHIP_OTHER = "4"
