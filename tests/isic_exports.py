"""Small fake ISIC exports of all three formats (isic-cli, ISIC 2020, HAM10000), made of real JPEG files.

Each ``FakeImage`` knows the label the importer must produce; the ``make_*`` functions write an export.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, replace
from pathlib import Path

from PIL import Image

SHAPES = ((48, 36), (36, 48), (64, 64), (96, 48), (200, 150), (33, 40))


@dataclass(frozen=True)
class FakeImage:
    """One image of a fake export; ``label`` is what the importer must produce (None: the row is dropped)."""

    source_id: str
    lesion_id: str
    patient_id: str
    label_text: str
    label: int | None
    index: int
    image_type: str = "dermoscopic"
    licence: str = "CC-BY"

    @property
    def colour(self) -> tuple[int, int, int]:
        """A colour that identifies the image (green channel) and shows its label (red channel)."""
        return (210 if self.label else 50, 16 + 6 * self.index, 100)

    @property
    def shape(self) -> tuple[int, int]:
        return SHAPES[self.index % len(SHAPES)]


def write_jpeg(path: Path, image: FakeImage) -> None:
    """A JPEG whose centre square has the image's colour, with black bands outside; EXIF in every third."""
    width, height = image.shape
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    picture = Image.new("RGB", (width, height), (0, 0, 0))
    picture.paste(image.colour, (left, top, left + side, top + side))
    exif = Image.Exif()
    if image.index % 3 == 0:
        exif[0x010E] = f"{image.source_id} {image.label_text} {image.patient_id}"  # ImageDescription
        exif[0x013B] = "Dr. Example, Example Clinic"  # Artist
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path, quality=95, exif=exif)


def write_table(path: Path, header: list[str], rows: list[dict[str, str]], encoding: str = "utf-8") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding=encoding) as handle:
        writer = csv.DictWriter(handle, header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def read_table(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def patients_and_lesions(prefix: str, first_index: int = 0) -> list[FakeImage]:
    """Six patients with two lesions of two images each, plus lesions without patient and lone images."""
    images: list[FakeImage] = []

    def add(lesion: str, patient: str, malignant: bool) -> None:
        index = first_index + len(images)
        text = "Malignant" if malignant else "Benign"
        images.append(FakeImage(f"{prefix}{index:07d}", lesion, patient, text, int(malignant), index))

    for patient in range(6):
        for lesion in range(2):
            for _ in range(2):
                add(f"IL_{patient}{lesion}", f"IP_{patient}", malignant=(patient + lesion) % 3 == 0)
    for lesion, count in (("IL_A", 2), ("IL_B", 1)):
        for _ in range(count):
            add(lesion, "", malignant=lesion == "IL_B")
    add("", "", malignant=True)
    add("", "", malignant=False)
    return images


def isic_cli_images() -> list[FakeImage]:
    """Regular rows, then Indeterminate, unlabelled and clinical (non-dermoscopic) rows, with licences."""
    images = patients_and_lesions("ISIC_")
    licences = ("CC-BY", "CC-0", "CC-BY-NC")
    images = [replace(image, licence=licences[image.index % 3]) for image in images]
    extra = [
        ("IL_00", "IP_0", "Indeterminate", None, "dermoscopic"),
        ("IL_X", "IP_9", "Indeterminate", None, "dermoscopic"),
        ("IL_Y", "IP_9", "", None, "dermoscopic"),
        ("IL_C1", "IP_7", "Benign", 0, "clinical: close-up"),
        ("IL_C1", "IP_7", "Malignant", 1, "clinical: overview"),
        ("IL_C2", "IP_1", "Benign", 0, "clinical: close-up"),
    ]
    for lesion, patient, text, label, kind in extra:
        index = len(images)
        images.append(FakeImage(f"ISIC_{index:07d}", lesion, patient, text, label, index, kind, "CC-BY"))
    return images


def make_isic_cli(root: Path, images: list[FakeImage], label_column: str = "diagnosis_1") -> Path:
    """An isic-cli download: <isic_id>.jpg files and metadata.csv with columns in no particular order."""
    header = ["attribution", "copyright_license", "isic_id", "age_approx", "anatom_site_general"]
    header += [label_column, "image_type", "lesion_id", "patient_id", "sex"]
    rows = []
    for image in images:
        write_jpeg(root / f"{image.source_id}.jpg", image)
        text = image.label_text.lower() if label_column == "benign_malignant" else image.label_text
        rows.append(
            {
                "attribution": "Example Hospital",
                "copyright_license": image.licence,
                "isic_id": image.source_id,
                "age_approx": "55",
                "anatom_site_general": "posterior torso",
                label_column: text,
                "image_type": image.image_type,
                "lesion_id": image.lesion_id,
                "patient_id": image.patient_id,
                "sex": "female",
            }
        )
    write_table(root / "metadata.csv", header, rows)
    return root


def isic2020_images() -> list[FakeImage]:
    """Regular rows plus a duplicate pair across two patients (the second image must be dropped)."""
    images = patients_and_lesions("ISIC_20", first_index=0)
    images = [replace(image, patient_id=image.patient_id or f"IP_L{image.index}") for image in images]
    index = len(images)
    images.append(FakeImage(f"ISIC_20{index:07d}", "IL_D", "IP_8", "Benign", None, index))
    return images


def make_isic2020(root: Path, images: list[FakeImage], duplicate_pairs: list[tuple[str, str]]) -> Path:
    """ISIC_2020_Training_GroundTruth.csv with images under ISIC_2020_Training_JPEG/train/ and duplicates."""
    header = ["image_name", "patient_id", "lesion_id", "sex", "age_approx", "anatom_site_general_challenge"]
    header += ["diagnosis", "benign_malignant", "target"]
    rows = []
    for image in images:
        write_jpeg(root / "ISIC_2020_Training_JPEG" / "train" / f"{image.source_id}.jpg", image)
        malignant = image.label_text == "Malignant"
        rows.append(
            {
                "image_name": image.source_id,
                "patient_id": image.patient_id,
                "lesion_id": image.lesion_id,
                "sex": "male",
                "age_approx": "45.0",
                "anatom_site_general_challenge": "torso",
                "diagnosis": "melanoma" if malignant else "nevus",
                "benign_malignant": "malignant" if malignant else "benign",
                "target": str(int(malignant)),
            }
        )
    write_table(root / "ISIC_2020_Training_GroundTruth.csv", header, rows)
    pairs = [{"image_name_1": first, "image_name_2": second} for first, second in duplicate_pairs]
    write_table(root / "ISIC_2020_Training_Duplicates.csv", ["image_name_1", "image_name_2"], pairs)
    return root


def ham10000_images() -> list[FakeImage]:
    """HAM10000 rows: lesions of one to three images, no patient ids, the seven dx codes."""
    codes = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")
    images = []
    for lesion in range(14):
        for _ in range(1 + lesion % 3):
            index = len(images)
            dx = codes[lesion % len(codes)]
            label = int(dx in ("mel", "bcc", "akiec"))
            images.append(FakeImage(f"ISIC_00{index:05d}", f"HAM_{lesion:07d}", "", dx, label, index))
    return images


def make_ham10000(root: Path, images: list[FakeImage]) -> Path:
    """HAM10000_metadata.csv (saved with a byte-order mark, as Excel does) and images in two part folders."""
    rows = []
    for image in images:
        part = 1 + image.index % 2
        write_jpeg(root / f"HAM10000_images_part_{part}" / f"{image.source_id}.jpg", image)
        row = {"lesion_id": image.lesion_id, "image_id": image.source_id, "dx": image.label_text}
        rows.append(row | {"dx_type": "histo", "age": "60.0", "sex": "male", "localization": "back"})
    header = ["lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization"]
    write_table(root / "HAM10000_metadata.csv", header, rows, encoding="utf-8-sig")
    return root


def duplicate_pair(images: list[FakeImage]) -> tuple[str, str]:
    """Pair the extra image (patient IP_8) with the first image of patient IP_0."""
    return images[0].source_id, images[-1].source_id
