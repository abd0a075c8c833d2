"""Terminology held by the knowledge base: drugs, substances, code sets, regimens, statements."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache


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
class Product:
    """A medication product: product RxCUIs, NDC product codes (11-digit form, first 9 digits)
    or brand names, the ingredients it contains, and whether its dose form is systemic."""

    key: str
    name: str
    ingredients: tuple[str, ...]
    exposure: str
    rxnorm: frozenset[str]
    ndc: frozenset[str]
    names: tuple[str, ...]


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
    systemic_only: bool = False


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

    def __init__(self, names: dict[str, str], normaliser=None):
        self._normalise = normaliser or normalise
        self._keys = {self._normalise(n): k for n, k in names.items()}
        ordered = sorted(self._keys, key=len, reverse=True)
        alternation = "|".join(re.escape(n) for n in ordered) or r"(?!)"
        self._pattern = re.compile(rf"(?<![\w-])({alternation})(?![\w-])")

        self._found = lru_cache(maxsize=8192)(self._scan)  # the same texts come every hook

    def find(self, text: str) -> list[str]:
        return list(self._found(text))

    def _scan(self, text: str) -> tuple[str, ...]:
        found = (self._keys[m.group(1)] for m in self._pattern.finditer(self._normalise(text)))
        return tuple(dict.fromkeys(found))

    def head(self, text: str) -> str | None:
        """The key whose name the text starts with ("alcohol", not "benzyl alcohol")."""
        words = HEAD_NOISE.sub("", normalise(text).strip())
        match = self._pattern.match(words)
        return self._keys[match.group(1)] if match else None


HEAD_NOISE = re.compile(r"^(?:(?:allergy|allergic|hypersensitivity|intolerance)\s*(?:to|:)?\s*)+")


def normalise(text: str) -> str:
    """Lower-case and unify apostrophes so "St. John’s Wort" matches "st. john's wort"."""
    return text.casefold().replace("\u2019", "'").replace("\u2011", "-")


SEPARATORS = re.compile(r"[\s\-\u2010-\u2015/+,;:()\[\]{}&*_|]+")
GLUED = re.compile(r"(?<=[^\W\d_])(?=\d)|(?<=\d)(?=[^\W\d_])")


def tokens(text: str) -> str:
    """A medication text as space-separated tokens: lower case, hyphens, slashes and brackets
    as spaces, digits split from letters ("KETOCONAZOLE200MG" -> "ketoconazole 200 mg"), so
    each ingredient of "lopinavir-ritonavir" is a whole word of its own."""
    return " ".join(GLUED.sub(" ", SEPARATORS.sub(" ", normalise(text))).split())


def ndc_product(code: str) -> tuple[str, ...]:
    """The 9-digit labeler+product part of an NDC in 11-digit form. Hyphenated 10-digit codes
    (4-4-2, 5-3-2, 5-4-1) pad their short segment; an unhyphenated 10-digit code can be any of
    the three, so each reading is returned."""
    parts = code.strip().split("-")
    if not all(p.isdigit() for p in parts):
        return ()
    if len(parts) == 1:
        digits = parts[0]
        if len(digits) == 11:
            return (digits[:9],)
        if len(digits) != 10:
            return ()
        return ("0" + digits[:8], digits[:5] + "0" + digits[5:8], digits[:9])
    if len(parts) in (2, 3) and len(parts[0]) <= 5 and len(parts[1]) <= 4:
        return (parts[0].zfill(5) + parts[1].zfill(4),)
    return ()


@dataclass(frozen=True)
class Vocabulary:
    drugs: dict[str, Drug]
    substances: dict[str, Substance]
    code_sets: dict[str, CodeSet]
    classes: dict[str, DrugClass]
    products: dict[str, Product] = field(default_factory=dict)

    def __post_init__(self) -> None:
        drug_names = {n: d.key for d in self.drugs.values() for n in d.names}
        product_names = {n: p.key for p in self.products.values() for n in p.names}
        object.__setattr__(self, "_medicine_index", NameIndex(drug_names, tokens))
        object.__setattr__(self, "_product_index", NameIndex(product_names, tokens))
        object.__setattr__(
            self, "_product_codes", {c: p.key for p in self.products.values() for c in p.rxnorm}
        )
        object.__setattr__(
            self, "_product_ndcs", {c: p.key for p in self.products.values() for c in p.ndc}
        )
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
        """The drug whose NDC labeler (first 5 digits in 11-digit form) the code carries."""
        labelers = {p[:5] for p in ndc_product(ndc)}
        return next((d.key for d in self.drugs.values() if labelers & set(d.ndc_labelers)), None)

    def drugs_in_medication_text(self, text: str) -> list[str]:
        """Drug keys named in a medication text, on whole tokens (see `tokens`)."""
        return self._medicine_index.find(text)

    def products_named_in(self, text: str) -> list[str]:
        return self._product_index.find(text)

    def product_by_rxnorm(self, code: str) -> str | None:
        return self._product_codes.get(code)

    def product_by_ndc(self, code: str) -> str | None:
        """The product an NDC names: exactly one reading of it must be a known product."""
        found = {self._product_ndcs[p] for p in ndc_product(code) if p in self._product_ndcs}
        return found.pop() if len(found) == 1 else None
