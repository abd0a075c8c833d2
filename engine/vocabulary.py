"""Terminology held by the knowledge base: drugs, substances, code sets, regimens, statements."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Drug:
    key: str
    name: str
    rxnorm: frozenset[str]
    names: tuple[str, ...]
    classes: tuple[str, ...]
    strength_mg: float | None
    ndc_labelers: tuple[str, ...]


@dataclass(frozen=True)
class Substance:
    """Something a patient can be allergic to: a drug or an excipient of one."""

    key: str
    name: str
    names: tuple[str, ...]
    excipient_of: str | None


@dataclass(frozen=True)
class CodeSet:
    key: str
    name: str
    system: str
    codes: frozenset[str]
    units: frozenset[str]
    names: tuple[str, ...] = ()
    liveness: str | None = None
    topic: str | None = None  # the code set this one adds codes of another system to


@dataclass(frozen=True)
class DrugClass:
    key: str
    name: str
    expected_with: str | None


@dataclass(frozen=True)
class Phase:
    from_day: int
    until_day: int | None
    every_days: int


@dataclass(frozen=True)
class MonitoringItem:
    key: str
    name: str
    code_set: str
    order_code: str
    phases: tuple[Phase, ...]

    def interval_on(self, day: int) -> int | None:
        """Days between measurements on a given day of therapy; None once none are scheduled."""
        return next(
            (
                p.every_days
                for p in self.phases
                if p.from_day <= day and (p.until_day is None or day < p.until_day)
            ),
            None,
        )


@dataclass(frozen=True)
class Dose:
    amount_mg: float
    text: str  # as the label words it: "15.8 mg (2 capsules) in the morning"


@dataclass(frozen=True)
class Regimen:
    key: str
    text: str
    sections: tuple[str, ...]
    doses: tuple[Dose, ...]


@dataclass(frozen=True)
class Statement:
    id: str
    sections: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class LabelInfo:
    name: str
    url: str
    version: str
    drug: str


class NameIndex:
    """Finds drug or substance keys named in free text (whole words, case-insensitive)."""

    def __init__(self, names: dict[str, str]):
        ordered = sorted(names, key=len, reverse=True)
        self._keys = {n.casefold(): k for n, k in names.items()}
        alternation = "|".join(re.escape(n.casefold()) for n in ordered) or r"(?!)"
        self._pattern = re.compile(rf"(?<![\w-])({alternation})(?![\w-])")

    def find(self, text: str) -> list[str]:
        found = (self._keys[m.group(1)] for m in self._pattern.finditer(normalise(text)))
        return list(dict.fromkeys(found))

    def head(self, text: str) -> str | None:
        """The key whose name the text starts with ("alcohol", not "benzyl alcohol")."""
        words = HEAD_NOISE.sub("", normalise(text).strip())
        match = self._pattern.match(words)
        return self._keys[match.group(1)] if match else None


HEAD_NOISE = re.compile(r"^(?:(?:allergy|allergic|hypersensitivity|intolerance)\s*(?:to|:)?\s*)+")


def normalise(text: str) -> str:
    """Lower-case and unify apostrophes so "St. John’s Wort" matches "st. john's wort"."""
    return text.casefold().replace("\u2019", "'").replace("\u2011", "-")


@dataclass(frozen=True)
class Vocabulary:
    drugs: dict[str, Drug]
    substances: dict[str, Substance]
    code_sets: dict[str, CodeSet]
    classes: dict[str, DrugClass]

    def __post_init__(self) -> None:
        drug_names = {n: d.key for d in self.drugs.values() for n in d.names}
        subst_names = {n: s.key for s in self.substances.values() for n in s.names}
        object.__setattr__(self, "_drug_index", NameIndex(drug_names))
        object.__setattr__(self, "_substance_index", NameIndex({**drug_names, **subst_names}))
        by_code = {c: d.key for d in self.drugs.values() for c in d.rxnorm}
        object.__setattr__(self, "_by_rxnorm", by_code)
        indexes = {
            k: NameIndex({n: k for n in s.names}) for k, s in self.code_sets.items() if s.names
        }
        object.__setattr__(self, "_set_indexes", indexes)
        topics: dict[str, list[CodeSet]] = {}
        for code_set in self.code_sets.values():
            topics.setdefault(code_set.topic or code_set.key, []).append(code_set)
        object.__setattr__(self, "_topics", topics)

    def topic_sets(self, key: str) -> list[CodeSet]:
        """The code set `key` and those that add codes of other systems to its topic."""
        return self._topics.get(key, [])

    def code_set_named_in(self, key: str, text: str) -> bool:
        index = self._set_indexes.get(key)
        return bool(index and index.find(text))

    def drug_by_rxnorm(self, code: str) -> str | None:
        return self._by_rxnorm.get(code)

    def drugs_named_in(self, text: str) -> list[str]:
        return self._drug_index.find(text)

    def substance_headed(self, text: str) -> str | None:
        """The substance an allergen text names as a whole: its leading name."""
        return self._substance_index.head(text)

    def drug_by_ndc(self, ndc: str) -> str | None:
        labeler = ndc.split("-")[0]
        return next((d.key for d in self.drugs.values() if labeler in d.ndc_labelers), None)
