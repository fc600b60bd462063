"""Data sets: their on-disk layout, the synthetic generator and the ISIC importer.

- :mod:`grader.data.layout` — where each file of a data set lives, reading and checking it (this module's API).
- :mod:`grader.data.synth` (drawing in :mod:`grader.data.lesions`) — ``generate_synthetic``.
- :mod:`grader.data.isic` — ``import_isic``: an ISIC export split into leak-free train, val and test.

The generator and the importer are imported from their modules, so that reading a data set loads neither.
"""

from grader.data.layout import (
    CLASS_NAMES,
    SPLITS,
    DatasetError,
    DatasetPaths,
    HiddenLabels,
    check_dataset,
    dataset_paths,
    list_datasets,
    load_images,
    read_manifest,
    read_test_ids,
    read_test_labels,
)

__all__ = [
    "CLASS_NAMES",
    "SPLITS",
    "DatasetError",
    "DatasetPaths",
    "HiddenLabels",
    "check_dataset",
    "dataset_paths",
    "list_datasets",
    "load_images",
    "read_manifest",
    "read_test_ids",
    "read_test_labels",
]
