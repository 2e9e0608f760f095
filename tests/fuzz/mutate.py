"""A seeded mutator of TOML documents and of command lines.

:func:`mutate_document` takes any parsed TOML document (a dict) and returns a
:class:`Mutant`: either a mutated dict (type swaps, huge/inf/nan/negative/zero
numbers, deleted and unknown keys, duplicated list items, deep nesting, long
strings) or raw file bytes (non-UTF-8 bytes, empty or truncated files, a BOM,
nesting deeper than any parser allows). It knows nothing of scenarios: point it
at experiment files, or any other TOML input, unchanged.
"""

from __future__ import annotations

import copy
import datetime as dt
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import tomli_w

#: Values a leaf can be swapped to: other types, and numbers at every edge.
EDGE_NUMBERS: tuple[Any, ...] = (
    0,
    -1,
    1,
    -0.0,
    1e-300,
    5e-324,
    1e30,
    1e308,
    -1e308,
    float("inf"),
    float("-inf"),
    float("nan"),
    2**63 - 1,
    -(2**63),
    10**30,
    65535,
    65536,
    1e9,
)
OTHER_TYPES: tuple[Any, ...] = (
    "",
    "x",
    "unlimited",
    "10.0.0.0/8",
    "0.0.0.0/0",
    "255.255.255.255",
    "web",
    "imix",
    "a" * 300,
    "\u00e9\u4e2d\U0001f600",
    "tab\there\u0000nul",
    True,
    False,
    [],
    [1, 2],
    ["a", 3.5],
    {},
    {"name": "x"},
    dt.datetime(2024, 1, 1, 12, 0),
    dt.date(2024, 1, 1),
)
UNKNOWN_KEYS = ("zzz", "Name", "name ", "flows", "nodes", "", "x.y", "\u00e9")


@dataclass(frozen=True)
class Mutant:
    """One mutated input.

    Attributes
    ----------
    what : str
        What was changed (for failure messages).
    doc : dict or None
        The mutated document, to be written as TOML.
    raw : bytes or None
        Or the file's bytes, when the mutation is below the TOML level.
    """

    what: str
    doc: dict | None = None
    raw: bytes | None = None

    def to_bytes(self) -> bytes:
        """The file content."""
        if self.raw is not None:
            return self.raw
        return tomli_w.dumps(self.doc).encode("utf-8")


def _paths(node: Any, prefix: tuple = ()) -> Iterator[tuple]:
    """Every path to a value inside ``node`` (dict keys and list indices)."""
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        here = (*prefix, key)
        yield here
        if isinstance(value, dict | list):
            yield from _paths(value, here)


def _parent(doc: dict, path: tuple) -> Any:
    cur: Any = doc
    for key in path[:-1]:
        cur = cur[key]
    return cur


def _dotted(path: tuple) -> str:
    return ".".join(str(p) for p in path) or "(top)"


def _deep(value: Any, depth: int) -> Any:
    for _ in range(depth):
        value = [value]
    return value


def _new_value(rng: random.Random, old: Any) -> tuple[str, Any]:
    roll = rng.random()
    if roll < 0.45:
        return "edge number", rng.choice(EDGE_NUMBERS)
    if roll < 0.8:
        return "type swap", copy.deepcopy(rng.choice(OTHER_TYPES))
    if roll < 0.9:
        return "long string", rng.choice("ab-9/.") * rng.choice((1000, 200_000))
    if isinstance(old, int | float) and not isinstance(old, bool):
        return "scaled number", old * rng.choice((-1, 0, 1e6, 1e-6, 1e300))
    return "deep nesting", _deep(old, rng.choice((30, 40, 100)))


def _mutate_tree(doc: dict, rng: random.Random) -> tuple[str, dict]:
    doc = copy.deepcopy(doc)
    paths = list(_paths(doc))
    if not paths:
        doc["zzz"] = 1
        return "unknown key zzz", doc
    path = rng.choice(paths)
    parent = _parent(doc, path)
    key = path[-1]
    op = rng.random()
    if op < 0.12:
        if isinstance(parent, dict):
            del parent[key]
        else:
            parent.pop(key)
        return f"delete {_dotted(path)}", doc
    if op < 0.2:
        target = parent if isinstance(parent, dict) else doc
        name = rng.choice(UNKNOWN_KEYS)
        target[name] = rng.choice((1, "x", {"a": 1}))
        return f"unknown key {name!r} beside {_dotted(path)}", doc
    if op < 0.27 and isinstance(parent, list):
        parent.append(copy.deepcopy(parent[key]))
        return f"duplicate {_dotted(path)}", doc
    how, value = _new_value(rng, parent[key])
    parent[key] = value
    shown = repr(value) if len(repr(value)) < 60 else repr(value)[:60] + "..."
    return f"{_dotted(path)} = {shown} ({how})", doc


def _nudge_number(doc: dict, rng: random.Random) -> tuple[str, dict] | None:
    """Scale one number, keeping its type: reaches deeper than a type swap."""
    doc = copy.deepcopy(doc)
    paths = [
        p
        for p in _paths(doc)
        if isinstance(_parent(doc, p)[p[-1]], int | float)
        and not isinstance(_parent(doc, p)[p[-1]], bool)
    ]
    if not paths:
        return None
    path = rng.choice(paths)
    parent = _parent(doc, path)
    old = parent[path[-1]]
    new = old * rng.choice((0, 0.5, 2, 10, 1000, 1e-3, -1))
    parent[path[-1]] = int(new) if isinstance(old, int) else new
    return f"{_dotted(path)}: {old!r} -> {parent[path[-1]]!r}", doc


def _mutate_bytes(text: bytes, rng: random.Random) -> tuple[str, bytes]:
    op = rng.randrange(7)
    at = rng.randrange(len(text) + 1)
    if op == 0:
        return "empty file", b""
    if op == 1:
        return "byte-order mark", b"\xef\xbb\xbf" + text
    if op == 2:
        return f"invalid UTF-8 at byte {at}", text[:at] + b"\xff\xfe\x80" + text[at:]
    if op == 3:
        return f"truncated at byte {at}", text[:at]
    if op == 4:
        depth = rng.choice((200, 1000, 5000))
        return f"array nested {depth} deep", text + f"\nzz = {'[' * depth}{']' * depth}\n".encode()
    if op == 5:
        return "NUL byte", text[:at] + b"\x00" + text[at:]
    depth = rng.choice((200, 1000))
    return (
        f"inline table nested {depth} deep",
        text + b"\nzy = " + b"{a = " * depth + b"1" + b"}" * depth,
    )


def mutate_document(
    doc: dict, rng: random.Random, *, p_bytes: float = 0.15, p_nudge: float = 0.3
) -> Mutant:
    """One random mutation of ``doc`` (1-3 tree changes, or a byte-level change).

    Parameters
    ----------
    doc : dict
        A parsed TOML document (not modified).
    rng : random.Random
        The seeded generator that picks the mutation.
    p_bytes : float
        Probability of a byte-level mutation of the serialized document.
    p_nudge : float
        Probability of scaling one number (keeps the document mostly valid, so the
        mutant reaches the code past validation).
    """
    roll = rng.random()
    if roll < p_bytes:
        what, raw = _mutate_bytes(tomli_w.dumps(doc).encode("utf-8"), rng)
        return Mutant(what, raw=raw)
    if roll < p_bytes + p_nudge:
        nudged = _nudge_number(doc, rng)
        if nudged is not None:
            return Mutant(nudged[0], doc=nudged[1])
    whats = []
    for _ in range(rng.choice((1, 1, 2, 3))):
        what, doc = _mutate_tree(doc, rng)
        whats.append(what)
    return Mutant("; ".join(whats), doc=doc)


def mutants(doc: dict, seed: int, n: int, **odds: float) -> Iterator[Mutant]:
    """``n`` mutants of ``doc`` from ``seed`` (same seed, same mutants).

    ``odds`` (``p_bytes``, ``p_nudge``) go to :func:`mutate_document`.
    """
    rng = random.Random(seed)
    for _ in range(n):
        yield mutate_document(doc, rng, **odds)


#: Cells a CSV mutation may put in a row.
CSV_CELLS = (
    "",
    "-1",
    "inf",
    "nan",
    "1e308",
    "0",
    "19",
    "65536",
    "1e-300",
    "web",
    "api",
    "client",
    "web/nginx",
    "nowhere",
    "10.0.0.2",
    "93.184.216.34",
    "999.1.1.1",
    '"a,b"',
    '"multi\nline"',
    "\u00e9",
    "a" * 200_000,
)


def mutate_csv(text: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One random mutation of a CSV file: cells, rows, order, encoding, size."""
    lines = text.split(b"\n")
    op = rng.randrange(8)
    at = rng.randrange(len(lines))
    if op == 0:
        what, raw = _mutate_bytes(text, rng)
        return what, raw
    if op == 1:
        cells = lines[at].split(b",")
        k = rng.randrange(len(cells))
        cells[k] = rng.choice(CSV_CELLS).encode()
        lines[at] = b",".join(cells)
        return f"line {at + 1} cell {k} changed", b"\n".join(lines)
    if op == 2:
        lines[at] = lines[at] + b"," + rng.choice(CSV_CELLS).encode()
        return f"line {at + 1} has an extra cell", b"\n".join(lines)
    if op == 3:
        del lines[at]
        return f"line {at + 1} deleted", b"\n".join(lines)
    if op == 4:
        rng.shuffle(lines)
        return "lines shuffled", b"\n".join(lines)
    if op == 5:
        return "CRLF line ends", text.replace(b"\n", b"\r\n")
    if op == 6:
        return "header only", lines[0] + b"\n"
    n = rng.choice((300, 70_000))
    extra = b"".join(
        b"%.9f,100,client,10.%d.%d.%d\n" % (1.0 + i * 1e-6, i >> 16, (i >> 8) & 255, i & 255)
        for i in range(n)
    )
    return f"{n} rows to distinct addresses", text + extra
