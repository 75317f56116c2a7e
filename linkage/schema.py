"""The canonical application schema: the roles every input column is mapped onto.

One declaration drives the column-mapping validation (:mod:`linkage.config`), the store's tables
(:mod:`linkage.store`) and the schema table in the README (checked by ``tests/test_docs.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

__all__ = ["DECISIONS", "FIELDS", "REFUSALS", "REQUIRED", "ROLES", "Field"]

Decision = Literal["issued", "rejected", "postponed", "cancelled", "pending"]
DECISIONS: Final[tuple[Decision, ...]] = ("issued", "rejected", "postponed", "cancelled", "pending")
# The decisions that count as a refusal by default: a postponement is a pause for documents (see
# linkage/evaluate.py for why it is left out unless asked for).
REFUSALS: Final[tuple[str, ...]] = ("rejected",)


@dataclass(frozen=True)
class Field:
    """One canonical column: its name, type as stored, whether a row needs it, meaning and an example."""

    name: str
    type: str
    required: bool
    meaning: str
    example: str


FIELDS: Final[tuple[Field, ...]] = (
    Field("record_id", "VARCHAR", True, "Unique id of the application across all offices' extracts", "BDL-2024-000123"),
    Field("office", "VARCHAR", False, "Immigration office that received the application", "Kanim Bandar Lampung"),
    Field("application_date", "DATE", False, "Date the application was lodged", "2024-03-05"),
    Field(
        "full_name", "VARCHAR", True, "Applicant's full name as written, titles and all", "H. Moch. Rizki bin Sukardi"
    ),
    Field("sex", "VARCHAR", False, "Sex as stated: L/P, M/F, Laki-laki/Perempuan", "L"),
    Field(
        "birth_date", "DATE", False, "Date of birth (ISO, DD-MM-YYYY, DD/MM/YYYY, Indonesian months)", "5 Agustus 1990"
    ),
    Field("birth_place", "VARCHAR", False, "Place of birth as written", "B. Lampung"),
    Field("nik", "VARCHAR", False, "16-digit national identity number (NIK)", "1871014508900001"),
    Field("mother_name", "VARCHAR", False, "Mother's name as written", "Siti Aminah"),
    Field(
        "address",
        "VARCHAR",
        False,
        "Address as written, with RT/RW and village",
        "Jl. Kartini No. 5 RT 003/RW 005 Kel. Palapa",
    ),
    Field("phone", "VARCHAR", False, "Phone number in any common form", "0812-3456-7890"),
    Field("prior_passport_no", "VARCHAR", False, "Number of a previous passport, if any", "B1234567"),
    Field("decision", "VARCHAR", False, "Office decision: " + ", ".join(DECISIONS), "rejected"),
    Field("decision_reason", "VARCHAR", False, "Free-text reason for the decision", "tujuan tidak jelas"),
    # Address parts, for inputs that keep them apart from the street (FEBRL does): compared one by one,
    # a typo in one part is not mistaken for another address. Map `address` to the street part then.
    Field("postcode", "VARCHAR", False, "Postal code of the address, where the input keeps it apart", "35111"),
    Field(
        "locality", "VARCHAR", False, "Suburb, town or village of the address, where kept apart", "Tanjung Karang"
    ),
    Field("region", "VARCHAR", False, "State or province of the address, where kept apart", "Lampung"),
)

ROLES: Final[tuple[str, ...]] = tuple(f.name for f in FIELDS)
REQUIRED: Final[frozenset[str]] = frozenset(f.name for f in FIELDS if f.required)
