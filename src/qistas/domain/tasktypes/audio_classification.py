"""Audio classification: a recording (the spec's ``audio_field``) and one label
(``{"label": x}``) or, with ``multi``, several (``{"labels": [..]}``).

The ``classification`` type with a player: answers, gold, aggregation (the project's
Dawid–Skene-family classifier; per label for multi-label) and reports are classification's.
``text_field`` may name a transcript shown beside the player, ``image_field`` a picture (a
spectrogram, a scene).
"""

from __future__ import annotations

from typing import Any, Literal

from qistas.domain.tasktypes.base import FieldName, FormField, need
from qistas.domain.tasktypes.classification import Classification, ClassificationSpec


class AudioClassificationSpec(ClassificationSpec):
    type: Literal["audio_classification"]  # type: ignore[assignment]  # classification's spec, named for this type
    audio_field: FieldName = "audio"


class AudioClassification(Classification):
    name = "audio_classification"
    spec_model = AudioClassificationSpec  # type: ignore[assignment]  # a ClassificationSpec too
    form_fields = (
        FormField("labels", "lines", "new.labels", hint="new.labels_hint"),
        FormField("multi", "bool", "new.multi", False),
        FormField("audio_field", "text", "new.audio_field"),
        FormField("text_field", "text", "new.text_field"),
    )

    def validate_data(self, spec: ClassificationSpec, data: dict[str, Any]) -> None:
        assert isinstance(spec, AudioClassificationSpec)
        need(data, spec.audio_field, str, "an audio file's name or URL")
        super().validate_data(spec, data)

    def media_fields(self, spec: ClassificationSpec) -> tuple[str, ...]:
        assert isinstance(spec, AudioClassificationSpec)
        return (spec.audio_field, *super().media_fields(spec))  # and an image, when the spec names one


TASK_TYPE = AudioClassification()
