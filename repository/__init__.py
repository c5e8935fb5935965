"""The model repository's contract: what export writes and the service reads, without torch.

* :mod:`repository.card` - the model card (``model.json``) as typed, frozen records;
* :mod:`repository.summary` - the per-layer summary schema and its text rendering;
* :mod:`repository.store` - the folder layout, hashes, atomic writes and the reader;
* :mod:`repository.publish` - the writer: a version staged, renamed into place, the card last;
* :mod:`repository.triton` - Triton's ``config.pbtxt``, derived from the card.

This package imports pydantic and the standard library only; every other package of the
project may import it, and it imports none of them.
"""

from .card import (
    CARD_FORMAT,
    VARIANT_FILES,
    AccuracyRecord,
    Agreement,
    Architecture,
    Batching,
    Digests,
    FoldedPooling,
    InputSpec,
    LayerOutput,
    LayerOutputs,
    ModelCard,
    ParityRecord,
    Precision,
    SpeedRecord,
    TensorSpec,
    TrainingMetrics,
    TrainingRecord,
    Variant,
    VariantJudgement,
    VerificationRecord,
    VersionCard,
)
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
    "NAME_PATTERN",
    "TRITON_CONFIG_FILE",
    "VARIANT_FILES",
    "AccuracyRecord",
    "Agreement",
    "Architecture",
    "Batching",
    "Digests",
    "FoldedPooling",
    "InputSpec",
    "LayerOutput",
    "LayerOutputs",
    "LayerRecord",
    "ModelCard",
    "ParityRecord",
    "Precision",
    "Repository",
    "RepositoryError",
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
    "write_json_atomic",
    "write_text_atomic",
]
