"""Which rows are kept (filters, labels, duplicates) and how images group by lesion, patient and duplicate."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grader.data.isic.formats import ImportFormatError, SourceFormat
from grader.data.isic.sources import SourceReading, SourceRow

DROP_REASONS = ("not_dermoscopic", "indeterminate", "unlabelled", "duplicate")


class UnionFind:
    """Disjoint sets of strings; merges images that share a lesion, a patient or a duplicate pair."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, item: str) -> str:
        self.parent.setdefault(item, item)
        while self.parent[item] != item:
            self.parent[item] = self.parent[self.parent[item]]
            item = self.parent[item]
        return item

    def union(self, first: str, second: str) -> None:
        roots = sorted((self.find(first), self.find(second)))
        self.parent[roots[1]] = roots[0]


@dataclass(frozen=True)
class Selection:
    """The rows kept after filtering, the group of each, and how many rows were dropped for what reason."""

    kept: tuple[SourceRow, ...]
    group_of: dict[str, str]
    dropped: dict[str, int]


def select_rows(reading: SourceReading, dermoscopic_only: bool) -> Selection:
    """Drop unusable rows (filter, label, duplicate) and group the rest by lesion, patient and duplicate."""
    if dermoscopic_only and not reading.fmt.all_dermoscopic and reading.fmt.image_type_column:
        _require_image_types(reading)
    reasons = {row.source_id: _drop_reason(row, dermoscopic_only, reading.fmt) for row in reading.rows}
    usable = [row.source_id for row in reading.rows if reasons[row.source_id] is None]
    for source_id in _duplicates_to_drop(reading.duplicate_pairs, usable):
        reasons[source_id] = "duplicate"
    groups = group_images(reading.rows, reading.duplicate_pairs)
    kept = tuple(row for row in reading.rows if reasons[row.source_id] is None)
    dropped = Counter(reason for reason in reasons.values() if reason)
    return Selection(
        kept,
        {row.source_id: groups.find(row.source_id) for row in kept},
        {r: dropped[r] for r in DROP_REASONS},
    )


def _require_image_types(reading: SourceReading) -> None:
    if not any(row.image_type for row in reading.rows):
        column = reading.fmt.image_type_column
        raise ImportFormatError(
            f"{reading.metadata_path}: dermoscopic_only needs column {column!r}, which is absent or empty"
        )


def _drop_reason(row: SourceRow, dermoscopic_only: bool, fmt: SourceFormat) -> str | None:
    if dermoscopic_only and not fmt.all_dermoscopic and "dermoscopic" not in row.image_type.lower():
        return "not_dermoscopic"
    return row.drop_reason


def _duplicates_to_drop(pairs: Sequence[tuple[str, str]], usable: Sequence[str]) -> list[str]:
    """Keep one image per cluster of duplicates: the first usable one in file order (pair (a, b) keeps a)."""
    usable_ids = set(usable)
    clusters = UnionFind()
    order: list[str] = []
    for first, second in pairs:
        clusters.union(first, second)
        order.extend((first, second))
    keeper: dict[str, str] = {}
    drop = []
    for source_id in dict.fromkeys(order):
        if source_id not in usable_ids:
            continue
        root = clusters.find(source_id)
        if keeper.setdefault(root, source_id) != source_id:
            drop.append(source_id)
    return drop


def group_images(rows: Iterable[SourceRow], duplicate_pairs: Iterable[tuple[str, str]]) -> UnionFind:
    """Union every image with its lesion, patient and duplicate; dropped rows only ever merge more."""
    groups = UnionFind()
    for row in rows:
        groups.find(row.source_id)
        if row.lesion_id:
            groups.union(row.source_id, f"lesion\0{row.lesion_id}")
        if row.patient_id:
            groups.union(row.source_id, f"patient\0{row.patient_id}")
    for first, second in duplicate_pairs:
        groups.union(first, second)
    return groups
