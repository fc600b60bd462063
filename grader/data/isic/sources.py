"""Reading the metadata CSVs of an export by header name, with loud errors naming the file, column and row."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader.data.isic.formats import ImportFormatError, LabelRule, SourceFormat, metadata_file, row_error


@dataclass(frozen=True)
class Table:
    """A CSV read by header name, each row with its spreadsheet row number (header = row 1)."""

    path: Path
    columns: tuple[str, ...]
    rows: tuple[tuple[int, dict[str, str]], ...]


@dataclass(frozen=True)
class SourceRow:
    """One metadata row, with its label or the reason it is dropped."""

    source_id: str
    line: int
    label: int | None
    drop_reason: str | None = None
    lesion_id: str = ""
    patient_id: str = ""
    image_type: str = ""
    licence: str = ""
    attribution: str = ""


@dataclass(frozen=True)
class SourceReading:
    """Everything read from the metadata files of one export."""

    fmt: SourceFormat
    metadata_path: Path
    rows: tuple[SourceRow, ...]
    duplicate_pairs: tuple[tuple[str, str], ...] = ()


def read_table(path: Path, required: Sequence[str]) -> Table:
    """Read a UTF-8 CSV (BOM allowed) by header name; names the file and any missing column."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = tuple((name or "").strip() for name in reader.fieldnames or ())
            missing = [column for column in required if column not in columns]
            if missing:
                found = ", ".join(columns) or "no header"
                raise ImportFormatError(f"{path}: missing column(s) {', '.join(missing)} (found: {found})")
            reader.fieldnames = list(columns)
            rows = tuple((reader.line_num, _clean_cells(row)) for row in reader)
    except FileNotFoundError as error:
        raise ImportFormatError(f"{path}: file not found") from error
    except UnicodeDecodeError as error:
        raise ImportFormatError(f"{path}: not UTF-8 text ({error})") from error
    except csv.Error as error:
        raise ImportFormatError(f"{path}: unreadable CSV ({error})") from error
    return Table(path, columns, rows)


def _clean_cells(row: dict[str | None, str | None]) -> dict[str, str]:
    return {key: (value or "").strip() for key, value in row.items() if isinstance(key, str)}


def read_source(source: Path, fmt: SourceFormat, duplicates_csv: Path | None = None) -> SourceReading:
    """Read the metadata (and duplicates file, if any) of an export of format ``fmt``."""
    metadata_path = metadata_file(source, fmt)
    if metadata_path is None:
        raise ImportFormatError(f"{source}: no {' or '.join(fmt.metadata_files)} for format {fmt.name}")
    table = read_table(metadata_path, fmt.required_columns)
    rules = tuple(rule for rule in fmt.label_rules if rule.column in table.columns)
    if not rules:
        wanted = " or ".join(rule.column for rule in fmt.label_rules)
        raise ImportFormatError(f"{metadata_path}: missing label column, expected {wanted}")
    rows = tuple(_parse_row(fmt, rules, table.path, line, cells) for line, cells in table.rows)
    _reject_repeated_ids(table.path, fmt.id_column, rows)
    duplicates_path = duplicates_csv or (source / fmt.duplicates_file if fmt.duplicates_file else None)
    pairs = (
        read_duplicate_pairs(duplicates_path)
        if duplicates_path and (duplicates_csv or duplicates_path.is_file())
        else ()
    )
    return SourceReading(fmt, metadata_path, rows, pairs)


def _parse_row(
    fmt: SourceFormat, rules: Sequence[LabelRule], path: Path, line: int, cells: dict[str, str]
) -> SourceRow:
    source_id = cells.get(fmt.id_column, "")
    if not source_id:
        raise row_error(path, line, fmt.id_column, "empty image id")
    label, reason = _row_label(rules, path, line, cells)
    return SourceRow(
        source_id=source_id,
        line=line,
        label=label,
        drop_reason=reason,
        lesion_id=_cell(cells, fmt.lesion_column),
        patient_id=_cell(cells, fmt.patient_column),
        image_type=_cell(cells, fmt.image_type_column),
        licence=_cell(cells, fmt.licence_column),
        attribution=_cell(cells, fmt.attribution_column),
    )


def _cell(cells: dict[str, str], column: str | None) -> str:
    return cells.get(column, "") if column else ""


def _row_label(
    rules: Sequence[LabelRule], path: Path, line: int, cells: dict[str, str]
) -> tuple[int | None, str | None]:
    for rule in rules:
        value = cells.get(rule.column, "")
        if not value:
            continue
        decision = rule.decide(value)
        if decision is None:
            raise row_error(path, line, rule.column, f"unknown label {value!r}, expected one of {rule.expected()}")
        return decision
    return None, "unlabelled"


def _reject_repeated_ids(path: Path, column: str, rows: Iterable[SourceRow]) -> None:
    first_line: dict[str, int] = {}
    for row in rows:
        if row.source_id in first_line:
            raise row_error(path, row.line, column, f"id {row.source_id!r} already on row {first_line[row.source_id]}")
        first_line[row.source_id] = row.line


def read_duplicate_pairs(path: Path) -> tuple[tuple[str, str], ...]:
    """Read an ISIC 2020 style duplicates file (image_name_1,image_name_2), one pair per row."""
    table = read_table(path, ("image_name_1", "image_name_2"))
    pairs = []
    for line, cells in table.rows:
        for column in ("image_name_1", "image_name_2"):
            if not cells[column]:
                raise row_error(path, line, column, "empty image name")
        pairs.append((cells["image_name_1"], cells["image_name_2"]))
    return tuple(pairs)
