"""The catalogue of the paper's experiments: rows, the claims checked on them, and the registry of experiments."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..registry import Registry


@dataclass(frozen=True)
class Row:
    """One row of an experiment's table."""

    label: str  # as the table prints it
    system: str = "ours"  # a comparison system (`hsiclip compare --list`)
    overrides: tuple[tuple[str, Any], ...] = ()  # `section.field` changes to the system's recipe (VLM rows only)
    fraction: float = 0.1  # share of labelled pixels per class used for training
    paper_oa: float | None = None  # the paper's printed OA for this row
    paper_kappa: float | None = None
    paper_table1: bool = True  # an unchanged system row also shows its Table 1 numbers (False: only `paper_oa`)
    series: str = ""  # for plots with a numeric x: which line the row belongs to
    x: float | None = None  # its position on that x axis


@dataclass(frozen=True)
class Finding:
    """A claim of the paper about the rows: `order` = the rows' mean OA decreases in this order; `best` = the
    first row beats every other listed row."""

    claim: str
    kind: str  # "order" or "best"
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Experiment:
    name: str
    title: str
    source: str  # where it is in the paper
    rows: Callable[[str], list[Row]] = lambda scene: []
    findings: tuple[Finding, ...] = ()
    x_label: str | None = None  # numeric x axis for the figure (None: one bar per row)
    log_x: bool = False
    notes: tuple[str, ...] = ()
    figure: Callable[..., dict[str, Any]] | None = None  # figure experiments: their own function
    systems: tuple[str, ...] = field(default=())  # figure experiments: the systems they need trained


EXPERIMENTS: Registry[Experiment] = Registry("experiment")  # `EXPERIMENTS.in_order()`: the paper's order


def register(exp: Experiment) -> None:
    EXPERIMENTS.register(exp.name, exp)
