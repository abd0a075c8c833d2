"""The condition language of rule files: parse one fact pattern into a small AST.

The grammar is `conditions.lark`; positions (line, column) are 1-based within the text parsed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lark import Lark, Token, Transformer, UnexpectedCharacters, UnexpectedInput, UnexpectedToken

PARSER = Lark(
    (Path(__file__).with_name("conditions.lark")).read_text(encoding="utf-8"),
    parser="lalr",
)
READABLE = {
    "NAME": "a name",
    "STRING": 'a "quoted text"',
    "NUMBER": "a number",
    "OPERATOR": "a comparison (== != < <= > >=)",
    "LPAR": "(",
    "RPAR": ")",
    "$END": "the end of the condition",
}
HINTS = {
    "=": " (compare with ==)",
    ".": " (write the field alone: a pattern tests one fact, never another fact's fields)",
}


class ConditionError(Exception):
    """A condition that cannot be used; line and column point into the condition text."""

    def __init__(self, message: str, line: int, column: int):
        super().__init__(message)
        self.message, self.line, self.column = message, line, column


@dataclass(frozen=True)
class Word:
    """A name, "quoted text" or number as written, with where it was written."""

    text: str
    type: str  # NAME, STRING or NUMBER
    line: int
    column: int


@dataclass(frozen=True)
class Compare:
    field: Word
    op: str
    value: Word


@dataclass(frozen=True)
class Contains:
    field: Word
    value: Word


@dataclass(frozen=True)
class Defined:
    field: Word
    present: bool


@dataclass(frozen=True)
class Flag:
    """A yes/no field on its own: `is_due` means `is_due == true`."""

    field: Word


@dataclass(frozen=True)
class Not:
    test: Test


@dataclass(frozen=True)
class And:
    tests: tuple[Test, ...]


@dataclass(frozen=True)
class Or:
    tests: tuple[Test, ...]


Test = Compare | Contains | Defined | Flag | Not | And | Or


@dataclass(frozen=True)
class Pattern:
    kind: Word
    test: Test | None


def word(token: Token) -> Word:
    text = token.value[1:-1] if token.type == "STRING" else token.value
    return Word(text, token.type, token.line, token.column)


class _ToAst(Transformer):
    def start(self, items):
        return Pattern(word(items[0]), items[1] if len(items) > 1 else None)

    def value(self, items):
        return word(items[0])

    def compare(self, items):
        return Compare(word(items[0]), items[1].value, items[2])

    def contains(self, items):
        return Contains(word(items[0]), items[1])

    def defined(self, items):
        return Defined(word(items[0]), True)

    def undefined(self, items):
        return Defined(word(items[0]), False)

    def flag(self, items):
        return Flag(word(items[0]))

    def negation(self, items):
        return Not(items[0])

    def and_test(self, items):
        return And(tuple(items))

    def or_test(self, items):
        return Or(tuple(items))


def parse(text: str) -> Pattern:
    """Parse `KIND [where TEST]`; raise ConditionError pointing at the first mistake."""
    try:
        return _ToAst().transform(PARSER.parse(text))
    except UnexpectedInput as error:
        raise _syntax_error(error, text) from None


def _syntax_error(error: UnexpectedInput, text: str) -> ConditionError:
    if isinstance(error, UnexpectedCharacters):
        char = text[error.pos_in_stream]
        hint = HINTS.get(char, "")
        return ConditionError(f"unexpected character {char!r}{hint}", error.line, error.column)
    expected = ", ".join(sorted(READABLE.get(t, t.lower()) for t in error.expected))
    if isinstance(error, UnexpectedToken) and error.token.type != "$END":
        found = f"unexpected {error.token.value!r}; expected {expected}"
        return ConditionError(found, error.line, error.column)
    lines = text.rstrip().split("\n")
    found = f"the condition ends too early; expected {expected}"
    return ConditionError(found, len(lines), len(lines[-1]) + 1)
