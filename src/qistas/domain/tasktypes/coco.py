"""The COCO object-detection file (https://cocodataset.org/#format-data) that the image types
export: the boxes, polygons and keypoints types each give their categories and, per task, the
annotations of its result; images come first, then annotations (two passes over the tasks,
so an export of any size streams)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from qistas.domain.exportrecords import chunks, provenance, to_json
from qistas.domain.tasktypes.base import Records

Annotations = Callable[[dict[str, Any]], list[dict[str, Any]]]


def file_name(record: dict[str, Any], image_field: str) -> Any:
    """The image's name as the customer gave it (a media file's name or URL, kept in
    ``metadata.media``), else the task's field."""
    given = ((record.get("metadata") or {}).get("media") or {}).get(image_field)
    return given if isinstance(given, str) else record["data"].get(image_field)


def coco(records: Records, *, image_field: str, categories: list[dict[str, Any]],
         annotations: Annotations) -> Iterator[bytes]:
    """One COCO object; ``annotations(record)`` gives one task's annotations without their
    ``id`` and ``image_id``, which are added here (ids count from 1)."""
    head = {"info": {"description": "Exported by Qistas", "version": "1.0"}, "licenses": [], "categories": categories}
    yield (to_json(head)[:-1] + ', "images": [').encode()
    first = True
    for chunk in chunks(records()):
        parts = []
        for record in chunk:
            data = record["data"]
            image = {"id": record["task_id"], "file_name": file_name(record, image_field),
                     "width": data.get("width"), "height": data.get("height"), "qistas": provenance(record)}
            parts.append(("" if first else ",") + to_json(image))
            first = False
        yield "".join(parts).encode()
    yield b'], "annotations": ['
    next_id = 1
    for chunk in chunks(records()):
        parts = []
        for record in chunk:
            for found in annotations(record):
                item = {"id": next_id, "image_id": record["task_id"], **found}
                parts.append(("" if next_id == 1 else ",") + to_json(item))
                next_id += 1
        yield "".join(parts).encode()
    yield b"]}\n"


def categories_of(labels: list[str]) -> list[dict[str, Any]]:
    return [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(labels)]
