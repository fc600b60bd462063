"""Grouped, stratified splits: whole groups go to train, val or test (and a test partition), re-checked for leaks."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from grader.data.isic.options import ImportOptions
from grader.data.isic.selection import Selection
from grader.data.isic.sources import SourceRow
from grader.data.layout import SPLITS, DatasetError, opaque_ids


@dataclass(frozen=True)
class PlannedImage:
    """One output image: its opaque id, where it comes from and where it goes."""

    image_id: str
    row: SourceRow
    path: Path
    group: str
    split: str
    partition: str = ""  # "public" or "private" for test images


def deal_groups(
    groups: dict[str, tuple[int, int]],
    names: Sequence[str],
    fractions: Sequence[float],
    rng: np.random.Generator,
) -> dict[str, str]:
    """Deal groups {key: (label, images)} to ``names`` per label, each to the one furthest below its share."""
    assignment: dict[str, str] = {}
    for label in (0, 1):
        keys = sorted(key for key, (group_label, _) in groups.items() if group_label == label)
        keys = [keys[index] for index in rng.permutation(len(keys))]
        total = sum(groups[key][1] for key in keys)
        filled = [0.0] * len(names)
        for key in keys:
            deficits = [fraction * total - count for fraction, count in zip(fractions, filled, strict=True)]
            chosen = int(np.argmax(deficits))
            assignment[key] = names[chosen]
            filled[chosen] += groups[key][1]
    return assignment


def plan_splits(selection: Selection, image_files: dict[str, Path], options: ImportOptions) -> list[PlannedImage]:
    """Assign groups to splits and test partitions, and give every image an opaque id; sorted by id."""
    split_rng, partition_rng, id_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(options.seed).spawn(3))
    groups: dict[str, tuple[int, int]] = {}
    for row in selection.kept:
        key = selection.group_of[row.source_id]
        label, count = groups.get(key, (0, 0))
        groups[key] = (max(label, row.label or 0), count + 1)
    split_of = deal_groups(groups, SPLITS, options.fractions, split_rng)
    test_groups = {key: value for key, value in groups.items() if split_of[key] == "test"}
    shares = (options.public_fraction, 1 - options.public_fraction)
    partition_of = deal_groups(test_groups, ("public", "private"), shares, partition_rng)
    kept = sorted(selection.kept, key=lambda row: row.source_id)
    ids = opaque_ids(id_rng, len(kept), options.limits.image_id_hex_digits)
    planned = []
    for image_id, row in zip(ids, kept, strict=True):
        group = selection.group_of[row.source_id]
        where = (split_of[group], partition_of.get(group, ""))
        planned.append(PlannedImage(image_id, row, image_files[row.source_id], group, *where))
    return sorted(planned, key=lambda image: image.image_id)


def check_no_leakage(images: Sequence[PlannedImage]) -> None:
    """Re-check, apart from the grouping, that no lesion, patient or group spans two splits or partitions."""
    for attribute in ("group", "lesion_id", "patient_id"):
        places: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for image in images:
            key = image.group if attribute == "group" else getattr(image.row, attribute)
            if key:
                places[key].add((image.split, image.partition))
        for key, where in places.items():
            if len(where) > 1:
                raise DatasetError(f"leak: {attribute} {key!r} spans {sorted(where)}; refusing to write the data set")
