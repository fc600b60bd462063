"""Options of one import: validated by ImportOptions; pipeline knobs and decode settings as frozen dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image


@dataclass(frozen=True)
class ImportLimits:
    """Pipeline knobs: batch size and in-flight window bound memory; suffixes say which files are images."""

    batch_size: int = 16
    batches_in_flight_per_worker: int = 2
    progress_interval_s: float = 0.5
    image_id_hex_digits: int = 16
    image_suffixes: tuple[str, ...] = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class DecodeSettings:
    """How one image becomes a square array; every field is part of the cache key."""

    size: int
    use_draft: bool = True
    resample: Image.Resampling = Image.Resampling.BILINEAR
    version: str = "1"  # bump whenever decoding changes, so stale cache entries are not reused


@dataclass(frozen=True)
class ImportOptions:
    """Validated options of one import."""

    size: int = 224
    seed: int = 0
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    public_fraction: float = 0.5
    dermoscopic_only: bool = False
    workers: int = 1
    progress: bool = True
    limits: ImportLimits = field(default_factory=ImportLimits)

    def __post_init__(self) -> None:
        if self.size < 8:
            raise ValueError(f"size must be at least 8 pixels, got {self.size}")
        if len(self.fractions) != 3 or min(self.fractions) < 0 or abs(sum(self.fractions) - 1) > 1e-6:
            raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {self.fractions}")
        if not 0 <= self.public_fraction <= 1:
            raise ValueError(f"public_fraction must lie in [0, 1], got {self.public_fraction}")
        if self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")
