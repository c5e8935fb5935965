"""The model repository's contract: what export writes and the service reads, without torch.

* :mod:`repository.card` - the model card (``model.json``) as typed, frozen records;
* :mod:`repository.summary` - the per-layer summary schema and its text rendering;
* :mod:`repository.store` - the folder layout, hashes, atomic writes and the reader;
* :mod:`repository.publish` - the writer: a version staged, renamed into place, the card last;
* :mod:`repository.triton` - Triton's ``config.pbtxt``, derived from the card;
* :mod:`repository.catalog` - every architecture's canonical summary as data (``python -m models catalog``).

This package imports pydantic and the standard library only; every other package of the
project may import it, and it imports none of them.
"""

from .card import (
    CARD_FORMAT,
    SAMPLES_DIR,
    VARIANT_FILES,
    AccuracyRecord,
    Agreement,
    Architecture,
    Batching,
    Digests,
    DigitNormalization,
    FoldedPooling,
    InputSpec,
    LayerOutput,
    LayerOutputs,
    ModelCard,
    ParityRecord,
    Precision,
    SampleImage,
    SpeedRecord,
    TensorSpec,
    TrainingMetrics,
    TrainingRecord,
    Variant,
    VariantJudgement,
    VerificationRecord,
    VersionCard,
)
from .catalog import CATALOG_INDEX_FILE, ArchitectureEntry, CatalogFolder, CatalogIndex, PaperRecord, write_catalog
from .store import (
    CARD_FILE,
    NAME_PATTERN,
    TRITON_CONFIG_FILE,
    Repository,
    RepositoryError,
    sha256_file,
    write_json_atomic,
    write_text_atomic,
)
from .summary import LayerRecord, SummaryRecord, render_markdown, render_text

__all__ = [
    "CARD_FILE",
    "CARD_FORMAT",
    "CATALOG_INDEX_FILE",
    "NAME_PATTERN",
    "SAMPLES_DIR",
    "TRITON_CONFIG_FILE",
    "VARIANT_FILES",
    "AccuracyRecord",
    "Agreement",
    "Architecture",
    "ArchitectureEntry",
    "Batching",
    "CatalogFolder",
    "CatalogIndex",
    "Digests",
    "DigitNormalization",
    "FoldedPooling",
    "InputSpec",
    "LayerOutput",
    "LayerOutputs",
    "LayerRecord",
    "ModelCard",
    "PaperRecord",
    "ParityRecord",
    "Precision",
    "Repository",
    "RepositoryError",
    "SampleImage",
    "SpeedRecord",
    "SummaryRecord",
    "TensorSpec",
    "TrainingMetrics",
    "TrainingRecord",
    "Variant",
    "VariantJudgement",
    "VerificationRecord",
    "VersionCard",
    "render_markdown",
    "render_text",
    "sha256_file",
    "write_catalog",
    "write_json_atomic",
    "write_text_atomic",
]
