"""The export formats the importer reads (isic-cli folder, ISIC 2020 challenge, HAM10000) and how to tell them apart."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.data.layout import DatasetError


class ImportFormatError(DatasetError):
    """A source file does not fit its format; the message names the file, and the column and row if known."""


def row_error(path: Path, line: int, column: str, problem: str) -> ImportFormatError:
    """An ImportFormatError naming the file, the spreadsheet row and the column."""
    return ImportFormatError(f"{path}: row {line}, column {column!r}: {problem}")


@dataclass(frozen=True)
class LabelRule:
    """How one metadata column spells benign, malignant and 'no usable label' (compared lower-case)."""

    column: str
    benign: frozenset[str]
    malignant: frozenset[str]
    indeterminate: frozenset[str] = frozenset()

    def decide(self, value: str) -> tuple[int | None, str | None] | None:
        """(label, drop reason) for a cell value, or None when the value is not in the vocabulary."""
        key = value.lower()
        if key in self.benign:
            return 0, None
        if key in self.malignant:
            return 1, None
        if key in self.indeterminate:
            return None, "indeterminate"
        return None

    def expected(self) -> str:
        return ", ".join(sorted(self.benign | self.malignant | self.indeterminate))


@dataclass(frozen=True)
class SourceFormat:
    """Where one export format keeps its metadata and which header names carry what (never positions)."""

    name: str
    metadata_files: tuple[str, ...]  # first one present wins; also used by detect_format
    id_column: str
    required_columns: tuple[str, ...]
    label_rules: tuple[LabelRule, ...]  # per row, the first rule whose column is present and non-empty
    lesion_column: str | None = "lesion_id"
    patient_column: str | None = "patient_id"
    image_type_column: str | None = None
    licence_column: str | None = None
    attribution_column: str | None = None
    duplicates_file: str | None = None
    all_dermoscopic: bool = False  # true when the whole collection is dermoscopic (no image_type column)


FORMATS: dict[str, SourceFormat] = {
    "isic-cli": SourceFormat(
        name="isic-cli",
        metadata_files=("metadata.csv",),
        id_column="isic_id",
        required_columns=("isic_id",),
        label_rules=(
            LabelRule("diagnosis_1", frozenset({"benign"}), frozenset({"malignant"}), frozenset({"indeterminate"})),
            LabelRule(
                "benign_malignant",
                frozenset({"benign"}),
                frozenset({"malignant"}),
                frozenset({"indeterminate", "indeterminate/benign", "indeterminate/malignant"}),
            ),
        ),
        image_type_column="image_type",
        licence_column="copyright_license",
        attribution_column="attribution",
    ),
    "isic2020": SourceFormat(
        name="isic2020",
        metadata_files=("ISIC_2020_Training_GroundTruth_v2.csv", "ISIC_2020_Training_GroundTruth.csv"),
        id_column="image_name",
        required_columns=("image_name", "patient_id", "target"),
        label_rules=(LabelRule("target", frozenset({"0"}), frozenset({"1"})),),
        duplicates_file="ISIC_2020_Training_Duplicates.csv",
        all_dermoscopic=True,
    ),
    "ham10000": SourceFormat(
        name="ham10000",
        metadata_files=("HAM10000_metadata.csv",),
        id_column="image_id",
        required_columns=("lesion_id", "image_id", "dx"),
        label_rules=(LabelRule("dx", frozenset({"bkl", "df", "nv", "vasc"}), frozenset({"mel", "bcc", "akiec"})),),
        patient_column=None,  # HAM10000 has no patient ids; grouping is by lesion only
        all_dermoscopic=True,
    ),
}


def detect_format(source: Path) -> str:
    """Name the export format of ``source`` by its metadata CSV; raises when none or several match."""
    source = Path(source)
    if not source.is_dir():
        raise ImportFormatError(f"{source}: not a folder")
    found = [name for name, fmt in FORMATS.items() if metadata_file(source, fmt) is not None]
    if len(found) == 1:
        return found[0]
    if not found:
        expected = "; ".join(f"{' or '.join(fmt.metadata_files)} ({name})" for name, fmt in FORMATS.items())
        raise ImportFormatError(f"{source}: no known metadata file, expected one of: {expected}")
    raise ImportFormatError(f"{source}: holds metadata of several formats ({', '.join(found)}); pass fmt")


def metadata_file(source: Path, fmt: SourceFormat) -> Path | None:
    return next((source / name for name in fmt.metadata_files if (source / name).is_file()), None)
