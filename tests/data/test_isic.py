"""The ISIC importer on small fake exports of all three formats, made of real JPEG files."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
from isic_exports import (
    FakeImage,
    duplicate_pair,
    ham10000_images,
    isic2020_images,
    isic_cli_images,
    make_ham10000,
    make_isic2020,
    make_isic_cli,
    read_table,
    write_jpeg,
    write_table,
)
from PIL import Image

from grader.data import (
    DatasetError,
    DatasetPaths,
    check_dataset,
    dataset_paths,
    load_images,
    read_manifest,
)
from grader.data.isic import DecodeSettings, ImportFormatError, detect_format, import_isic
from grader.data.isic.images import decode_square, index_images
from grader.data.isic.sources import SourceRow
from grader.data.isic.splits import PlannedImage, check_no_leakage, deal_groups

SIZE = 32
HEX_ID = re.compile(r"^[0-9a-f]{16}$")


@dataclass(frozen=True)
class Imported:
    """A fake export, its images, and the data set imported from it."""

    source: Path
    images: list[FakeImage]
    paths: DatasetPaths
    manifest: dict


def run_import(source: Path, data_dir: Path, name: str = "isic", **options: object) -> tuple[DatasetPaths, dict]:
    paths = dataset_paths(data_dir, name)
    settings = {"size": SIZE, "workers": 2, "progress": False} | options
    return paths, import_isic(source, paths, **settings)


@pytest.fixture(scope="module")
def isic_cli(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    images = isic_cli_images()
    source = make_isic_cli(tmp_path_factory.mktemp("isic-cli"), images)
    paths, manifest = run_import(source, tmp_path_factory.mktemp("data"))
    return Imported(source, images, paths, manifest)


@pytest.fixture(scope="module")
def isic2020(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    images = isic2020_images()
    source = make_isic2020(tmp_path_factory.mktemp("isic2020"), images, [duplicate_pair(images)])
    paths, manifest = run_import(source, tmp_path_factory.mktemp("data"))
    return Imported(source, images, paths, manifest)


@pytest.fixture(scope="module")
def ham10000(tmp_path_factory: pytest.TempPathFactory) -> Imported:
    images = ham10000_images()
    source = make_ham10000(tmp_path_factory.mktemp("ham10000"), images)
    paths, manifest = run_import(source, tmp_path_factory.mktemp("data"))
    return Imported(source, images, paths, manifest)


@pytest.fixture(params=["isic_cli", "isic2020", "ham10000"])
def imported(request: pytest.FixtureRequest) -> Imported:
    return request.getfixturevalue(request.param)


# ------------------------------------------------------------------------------------------ reading back


@dataclass(frozen=True)
class Placement:
    split: str
    partition: str
    row: int
    label: int


def placements(paths: DatasetPaths) -> dict[str, Placement]:
    """Where each source image ended up, read back through private/id_map.csv."""
    source_of = {row["image_id"]: row["source_id"] for row in read_table(paths.id_map)}
    hidden = {row["image_id"]: row for row in read_table(paths.test_labels)}
    found = {}
    for split in ("train", "val", "test"):
        for row_number, row in enumerate(read_table(paths.index(split))):
            label_row = hidden[row["image_id"]] if split == "test" else row
            partition = label_row.get("partition", "")
            found[source_of[row["image_id"]]] = Placement(split, partition, row_number, int(label_row["label"]))
    return found


def kept(images: list[FakeImage]) -> list[FakeImage]:
    """The images the importer must keep (the isic2020 duplicate is made with label None)."""
    return [image for image in images if image.label is not None]


# ------------------------------------------------------------------------------------------ the whole import


def test_detect_format_by_metadata_file(isic_cli: Imported, isic2020: Imported, ham10000: Imported) -> None:
    assert detect_format(isic_cli.source) == "isic-cli"
    assert detect_format(isic2020.source) == "isic2020"
    assert detect_format(ham10000.source) == "ham10000"
    assert {isic_cli.manifest["format"], isic2020.manifest["format"], ham10000.manifest["format"]} == {
        "isic-cli",
        "isic2020",
        "ham10000",
    }


def test_detect_format_names_the_expected_files(tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="HAM10000_metadata.csv"):
        detect_format(tmp_path)


def test_every_kept_image_arrives_once_with_its_label(imported: Imported) -> None:
    expected = {image.source_id: image.label for image in kept(imported.images)}
    found = placements(imported.paths)
    assert {source_id: place.label for source_id, place in found.items()} == expected
    assert len(read_table(imported.paths.id_map)) == len(expected)
    check_dataset(imported.paths)


def test_every_row_holds_its_own_pixels_centre_cropped(imported: Imported) -> None:
    """The colour of each array row identifies the source image: rows, CSVs and the crop all line up."""
    by_id = {image.source_id: image for image in imported.images}
    arrays = {split: load_images(imported.paths.images(split)) for split in ("train", "val", "test")}
    for source_id, place in placements(imported.paths).items():
        pixels = arrays[place.split][place.row].astype(int)
        assert pixels.shape == (SIZE, SIZE, 3)
        expected = np.array(by_id[source_id].colour)
        assert np.abs(pixels[4:-4, 4:-4].reshape(-1, 3).mean(axis=0) - expected).max() < 2.5
        assert np.abs(pixels[:, 1].mean(axis=0) - expected).max() < 8, "black bands inside: not centre-cropped"


def test_no_lesion_or_patient_spans_two_splits(imported: Imported) -> None:
    found = placements(imported.paths)
    places: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for image in imported.images:
        if image.source_id in found:
            place = found[image.source_id]
            for key in (f"lesion {image.lesion_id}", f"patient {image.patient_id}"):
                if not key.endswith(" "):
                    places[key].add((place.split, place.partition))
    assert places and all(len(where) == 1 for where in places.values()), places


def test_split_sizes_and_classes_follow_the_fractions(isic2020: Imported) -> None:
    counts = isic2020.manifest["counts"]
    totals = {split: sum(counts[split].values()) for split in ("train", "val", "test")}
    assert sum(totals.values()) == len(kept(isic2020.images))  # the duplicate is not "kept"
    assert totals["train"] > totals["test"] > 0
    assert all(counts[split]["malignant"] > 0 for split in ("train", "test"))
    for name in ("benign", "malignant"):
        assert counts["test_public"][name] + counts["test_private"][name] == counts["test"][name]


def test_public_files_carry_nothing_label_bearing(imported: Imported) -> None:
    public = imported.paths.public
    assert sorted(path.name for path in public.iterdir()) == [
        "test.csv",
        "test.npy",
        "train.csv",
        "train.npy",
        "val.csv",
        "val.npy",
    ]
    assert list(read_table(public / "test.csv")[0]) == ["image_id"]
    assert list(read_table(public / "train.csv")[0]) == ["image_id", "label"]
    for split in ("train", "val", "test"):
        assert all(HEX_ID.match(row["image_id"]) for row in read_table(public / f"{split}.csv"))
    secrets = {image.source_id for image in imported.images}
    secrets |= {image.lesion_id for image in imported.images if image.lesion_id}
    secrets |= {image.patient_id for image in imported.images if image.patient_id}
    secrets |= {"Exif", "Example", "torso", "male", ".jpg"}
    for path in public.iterdir():
        content = path.read_bytes()
        leaked = sorted(secret for secret in secrets if secret.encode() in content)
        assert not leaked, f"{path.name} contains {leaked}"


def test_manifest_records_source_options_filters_and_licences(isic_cli: Imported) -> None:
    manifest = read_manifest(isic_cli.paths)
    assert manifest == isic_cli.manifest
    assert manifest["name"] == "isic"
    assert manifest["source"] == str(isic_cli.source.resolve()) and os.path.isabs(manifest["source"])
    assert manifest["format"] == "isic-cli"
    assert manifest["filters"]["dermoscopic_only"] is False
    assert manifest["filters"]["dropped"] == {
        "duplicate": 0,
        "indeterminate": 2,
        "not_dermoscopic": 0,
        "unlabelled": 1,
    }
    assert manifest["seed"] == 0 and manifest["size"] == SIZE
    assert manifest["fractions"] == [0.7, 0.1, 0.2] and manifest["public_fraction"] == 0.5
    assert manifest["class_names"] == ["benign", "malignant"]
    assert manifest["importer_version"]
    assert set(manifest["counts"]) == {"train", "val", "test", "test_public", "test_private"}
    licences = [image.licence for image in kept(isic_cli.images)]
    assert manifest["licence_counts"] == {licence: licences.count(licence) for licence in set(licences)}
    assert manifest["import_stats"]["decoded"] == len(licences)


def test_private_files_map_ids_and_keep_attribution(isic_cli: Imported) -> None:
    id_map = read_table(isic_cli.paths.id_map)
    assert len(id_map) == len(kept(isic_cli.images))
    assert len({row["image_id"] for row in id_map}) == len(id_map)
    attribution = read_table(isic_cli.paths.private / "attribution.csv")
    assert {row["attribution"] for row in attribution} == {"Example Hospital"}
    partitions = {row["partition"] for row in read_table(isic_cli.paths.test_labels)}
    assert partitions <= {"public", "private"}


def test_isic2020_drops_the_second_of_a_duplicate_pair_and_joins_their_groups(isic2020: Imported) -> None:
    first, second = duplicate_pair(isic2020.images)
    found = placements(isic2020.paths)
    assert second not in found and first in found
    assert isic2020.manifest["filters"]["dropped"]["duplicate"] == 1
    patients = {image.source_id: image.patient_id for image in isic2020.images}
    places = {(found[s].split, found[s].partition) for s in found if patients[s] == patients[first]}
    assert places == {(found[first].split, found[first].partition)}


def test_ham10000_labels_follow_dx(ham10000: Imported) -> None:
    labels = {place.label for place in placements(ham10000.paths).values()}
    assert labels == {0, 1}
    assert ham10000.manifest["licence_counts"] == {"unknown": len(ham10000.images)}


# ------------------------------------------------------------------------------------------ options


def test_dermoscopic_only_drops_clinical_images(isic_cli: Imported, tmp_path: Path) -> None:
    paths, manifest = run_import(isic_cli.source, tmp_path, dermoscopic_only=True, workers=1)
    clinical = {image.source_id for image in isic_cli.images if "dermoscopic" not in image.image_type}
    assert manifest["filters"]["dropped"]["not_dermoscopic"] == len(clinical) == 3
    assert set(placements(paths)) == {image.source_id for image in kept(isic_cli.images)} - clinical


def test_dermoscopic_only_is_a_no_op_for_all_dermoscopic_collections(ham10000: Imported, tmp_path: Path) -> None:
    _, manifest = run_import(ham10000.source, tmp_path, dermoscopic_only=True, workers=1)
    assert manifest["filters"]["dermoscopic_only"] is True
    assert manifest["counts"] == ham10000.manifest["counts"]


def test_dermoscopic_only_needs_image_type_in_isic_cli(tmp_path: Path) -> None:
    source = make_isic_cli(tmp_path / "src", isic_cli_images()[:6])
    metadata = source / "metadata.csv"
    rows = read_table(metadata)
    header = [column for column in rows[0] if column != "image_type"]
    write_table(metadata, header, [{key: row[key] for key in header} for row in rows])
    with pytest.raises(ImportFormatError, match="image_type"):
        run_import(source, tmp_path / "data", dermoscopic_only=True)


def test_old_exports_with_benign_malignant_column(tmp_path: Path) -> None:
    images = isic_cli_images()
    source = make_isic_cli(tmp_path / "src", images, label_column="benign_malignant")
    paths, manifest = run_import(source, tmp_path / "data", workers=1)
    assert {s: p.label for s, p in placements(paths).items()} == {i.source_id: i.label for i in kept(images)}


def test_same_seed_same_split_other_seed_other_split(isic_cli: Imported, tmp_path: Path) -> None:
    again, _ = run_import(isic_cli.source, tmp_path / "again", workers=1)
    other, _ = run_import(isic_cli.source, tmp_path / "other", seed=1, workers=1)
    for name in ("public/train.csv", "public/test.csv", "public/test.npy", "private/id_map.csv"):
        assert (again.root / name).read_bytes() == (isic_cli.paths.root / name).read_bytes()
    assert placements(other) != placements(isic_cli.paths)


def test_rerun_reuses_decoded_images_and_redecodes_changed_files(tmp_path: Path) -> None:
    images = ham10000_images()
    source = make_ham10000(tmp_path / "src", images)
    paths, first = run_import(source, tmp_path / "data")
    before = load_images(paths.images("train")).copy()
    _, second = run_import(source, tmp_path / "data")
    assert (first["import_stats"]["decoded"], second["import_stats"]["decoded"]) == (len(images), 0)
    assert second["import_stats"]["cache_hits"] == len(images)
    assert np.array_equal(load_images(paths.images("train")), before)
    changed = next(source.rglob(f"{images[0].source_id}.jpg"))
    write_jpeg(changed, replace(images[0], index=images[0].index + 1))
    _, third = run_import(source, tmp_path / "data", workers=1)
    assert (third["import_stats"]["decoded"], third["import_stats"]["cache_hits"]) == (1, len(images) - 1)


def test_failed_import_keeps_the_previous_data_set(tmp_path: Path) -> None:
    images = ham10000_images()
    source = make_ham10000(tmp_path / "src", images)
    paths, manifest = run_import(source, tmp_path / "data", workers=1)
    broken = next(source.rglob(f"{images[5].source_id}.jpg"))
    broken.write_bytes(broken.read_bytes()[:40])
    with pytest.raises(ImportFormatError, match=r"row 7: cannot decode .*ISIC_0000005\.jpg"):
        run_import(source, tmp_path / "data", seed=3)
    assert check_dataset(paths) == manifest
    assert sorted(path.name for path in (tmp_path / "data").iterdir()) == ["isic"]
    with pytest.raises(ImportFormatError, match=r"row 7: cannot decode"):
        run_import(source, tmp_path / "fresh")  # nothing cached: the failure comes back from the pool
    assert [path.name for path in (tmp_path / "fresh").iterdir()] == ["isic"]
    assert [path.name for path in (tmp_path / "fresh" / "isic").iterdir()] == [".cache"]


# ------------------------------------------------------------------------------------------ errors


def test_missing_column_names_file_and_column(tmp_path: Path) -> None:
    images = isic2020_images()[:6]
    source = make_isic2020(tmp_path / "src", images, [])
    metadata = source / "ISIC_2020_Training_GroundTruth.csv"
    rows = read_table(metadata)
    header = [column for column in rows[0] if column != "target"]
    write_table(metadata, header, [{key: row[key] for key in header} for row in rows])
    with pytest.raises(ImportFormatError, match=r"ISIC_2020_Training_GroundTruth\.csv: missing column\(s\) target"):
        run_import(source, tmp_path / "data")


def test_missing_label_column_names_both_choices(tmp_path: Path) -> None:
    source = make_isic_cli(tmp_path / "src", isic_cli_images()[:4], label_column="diagnosis_2")
    with pytest.raises(ImportFormatError, match="metadata.csv: missing label column, expected diagnosis_1 or"):
        run_import(source, tmp_path / "data")


def test_bad_label_names_file_row_and_column(tmp_path: Path) -> None:
    images = isic_cli_images()[:8]
    images[3] = replace(images[3], label_text="Probably fine")
    source = make_isic_cli(tmp_path / "src", images)
    with pytest.raises(ImportFormatError, match=r"metadata\.csv: row 5, column 'diagnosis_1': unknown label"):
        run_import(source, tmp_path / "data")


def test_missing_image_names_the_row_and_counts_the_rest(tmp_path: Path) -> None:
    images = ham10000_images()
    source = make_ham10000(tmp_path / "src", images)
    for image in (images[2], images[9]):
        next(source.rglob(f"{image.source_id}.jpg")).unlink()
    with pytest.raises(ImportFormatError, match=r"row 4, column 'image_id': no image file ISIC_0000002.*1 more"):
        run_import(source, tmp_path / "data")


def test_unknown_format_and_bad_options_are_refused(isic_cli: Imported, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="unknown format"):
        run_import(isic_cli.source, tmp_path, fmt="isic2019")
    with pytest.raises(ValueError, match="fractions"):
        run_import(isic_cli.source, tmp_path, fractions=(0.8, 0.3, 0.1))
    with pytest.raises(ImportFormatError, match="no ISIC_2020_Training_GroundTruth"):
        run_import(isic_cli.source, tmp_path, fmt="isic2020")


# ------------------------------------------------------------------------------------------ units


def test_deal_groups_is_stratified_and_close_to_the_fractions() -> None:
    rng = np.random.default_rng(0)
    groups = {f"g{index}": (int(index % 5 == 0), int(size)) for index, size in enumerate(rng.integers(1, 30, 600))}
    assignment = deal_groups(groups, ("train", "val", "test"), (0.7, 0.1, 0.2), np.random.default_rng(1))
    for label in (0, 1):
        total = sum(size for g, (lab, size) in groups.items() if lab == label)
        for name, fraction in (("train", 0.7), ("val", 0.1), ("test", 0.2)):
            share = sum(size for g, (lab, size) in groups.items() if lab == label and assignment[g] == name)
            assert abs(share / total - fraction) < 0.02


def test_leak_check_refuses_a_lesion_in_two_splits() -> None:
    row = SourceRow("ISIC_1", 2, 1, lesion_id="IL_1")
    images = [
        PlannedImage("a", row, Path("a.jpg"), "g1", "train"),
        PlannedImage("b", replace(row, source_id="ISIC_2"), Path("b.jpg"), "g2", "test", "public"),
    ]
    with pytest.raises(DatasetError, match="leak: lesion_id 'IL_1'"):
        check_no_leakage(images)


def test_decode_applies_exif_orientation_and_converts_greyscale(tmp_path: Path) -> None:
    picture = Image.new("RGB", (64, 48), (255, 0, 0))
    picture.paste((0, 0, 255), (0, 24, 64, 48))
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees
    picture.save(tmp_path / "rotated.jpg", quality=95, exif=exif)
    pixels = decode_square(tmp_path / "rotated.jpg", DecodeSettings(SIZE)).astype(int)
    assert pixels[2, SIZE // 2, 2] > 200 and pixels[-3, SIZE // 2, 0] > 200
    Image.new("L", (50, 40), 77).save(tmp_path / "grey.jpg")
    assert decode_square(tmp_path / "grey.jpg", DecodeSettings(SIZE)).shape == (SIZE, SIZE, 3)


def test_draft_mode_gives_nearly_the_same_pixels(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 255, (6, 8, 3)), np.ones((100, 100, 1))).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=90)
    draft = decode_square(tmp_path / "big.jpg", DecodeSettings(SIZE)).astype(int)
    full = decode_square(tmp_path / "big.jpg", DecodeSettings(SIZE, use_draft=False)).astype(int)
    difference = np.abs(draft - full)
    assert np.median(difference) <= 1 and difference.mean() < 6  # only edges of the tiles differ


def test_image_search_prefers_jpeg_then_the_shallowest_folder(tmp_path: Path) -> None:
    for relative in (
        "ISIC_1.png",
        "deep/er/ISIC_1.jpg",
        "a/ISIC_2.jpg",
        "a/b/ISIC_2.jpg",
        ".hidden/ISIC_3.jpg",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).touch()
    found = index_images(tmp_path, (".jpg", ".jpeg", ".png"))
    assert found == {"ISIC_1": tmp_path / "deep/er/ISIC_1.jpg", "ISIC_2": tmp_path / "a/ISIC_2.jpg"}
