"""Audio transcription: a recording (the spec's ``audio_field``) and ``{"text": "..."}``.

The ``text`` type with a player instead of a prompt: answers, gold matching (texts equal with
whitespace collapsed), aggregation (ROVER with reliability-weighted votes, Arabic-aware word
comparison) and the reliability score are the text type's. A task may bring a draft to
correct (``data.draft``, an ASR output). Exported as ``asr`` lines: the recording's name,
its duration and the consensus transcript.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

from qistas.domain.exportrecords import chunks, media_name, provenance, to_json
from qistas.domain.tasktypes.base import ExportFormat, FieldName, FormField, Records, need
from qistas.domain.tasktypes.text import Text, TextSpec


class AudioTranscriptionSpec(TextSpec):
    type: Literal["audio_transcription"]  # type: ignore[assignment]  # the text spec, named for this type
    audio_field: FieldName = "audio"


def asr(records: Records, spec: AudioTranscriptionSpec) -> Iterator[bytes]:
    """``{"audio", "duration", "text"}`` per task, with its provenance: the manifest ASR trainers read."""
    for chunk in chunks(records()):
        lines = [to_json({"audio": media_name(r, spec.audio_field), "duration": r["data"].get("duration"),
                          "text": r["response"]["text"], **provenance(r)}) + "\n" for r in chunk]
        yield "".join(lines).encode()


class AudioTranscription(Text):
    name = "audio_transcription"
    spec_model = AudioTranscriptionSpec  # type: ignore[assignment]  # a TextSpec too
    form_fields = (FormField("audio_field", "text", "new.audio_field"),)
    export_formats = {"asr": ExportFormat("application/x-ndjson", "jsonl", asr)}

    def validate_data(self, spec: TextSpec, data: dict[str, Any]) -> None:
        assert isinstance(spec, AudioTranscriptionSpec)
        need(data, spec.audio_field, str, "an audio file's name or URL")

    def media_fields(self, spec: TextSpec) -> tuple[str, ...]:
        assert isinstance(spec, AudioTranscriptionSpec)
        return (spec.audio_field,)


TASK_TYPE = AudioTranscription()
