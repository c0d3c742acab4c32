"""Errors and identifiers in words: the catalogue has every entry the pages and scripts look up."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from qistas.db.enums import AuditStatus, ReviewAction, ReviewStatus, Role, TaskStatus, TokenScope
from qistas.domain import exams, generation, model_endpoints, my_work, predictions, reviews, workforce
from qistas.domain.quality import GOLD_METHOD, PRIOR_METHOD, method_name
from qistas.domain.review_policy import REOPEN
from qistas.domain.tasktypes import all_types, parse_spec, type_names
from qistas.errors import Invalid, NotFound, QistasError
from qistas.quality.selection import CANDIDATES
from qistas.web.i18n import Translator, catalogue
from qistas.web.messages import FSI, PDI, describe, isolate
from tests.test_docs import _error_codes

WEB = Path(__file__).resolve().parents[2] / "src" / "qistas" / "web"
SRC = WEB.parent
# A literal key in a lookup: t("x.y") in templates and scripts, strings["x.y"] / strings.errors["x.y"] in scripts.
LITERAL = re.compile(r"""(?:\bt\(|\bstrings(?:\.errors)?\[)\s*["']([a-z_]+\.[a-z_.]+)["']\s*[,)\]]""")
# A family of keys with a variable end: t("type." ~ p.type) in templates, t("ws.choice_" + o) in
# scripts, t.word("method", task.method).
FAMILY = re.compile(r"""\bt\(\s*["']([a-z_]+\.[a-z_]*)["']\s*[~+]|\bt\.word\(\s*["']([a-z_]+)["']""")


def _sources() -> list[Path]:
    return sorted([*WEB.glob("templates/*.html"), *WEB.glob("static/**/*.js"), *WEB.glob("pages/*.py")])


def _spec_error(raw: dict[str, Any]) -> Invalid:
    with pytest.raises(Invalid) as caught:
        parse_spec(raw)
    return caught.value


def test_every_literal_key_is_in_both_catalogues() -> None:
    used = {key for path in _sources() for key in LITERAL.findall(path.read_text(encoding="utf-8"))}
    assert {"new.title", "ws.empty", "err.row", "login.title"} <= used  # the pattern finds lookups
    for lang in ("en", "ar"):
        assert sorted(used - set(catalogue(lang))) == [], lang


def _sample_specs() -> list[Any]:
    specs = []
    for name in type_names():
        for extra in ({}, {"labels": ["a", "b"]}, {"labels": ["a", "b"], "multi": True}):
            try:
                specs.append(parse_spec({"type": name, **extra}))
            except Invalid:
                continue
    return specs


def _methods() -> set[str]:
    """Every ``method`` a result can carry: the gold-weighted start, each type's aggregator, the classifiers."""
    found = {GOLD_METHOD, PRIOR_METHOD, reviews.METHOD, *(c.lower() for c in CANDIDATES)}
    found |= {method_name(all_types()[spec.type].aggregator(spec)) for spec in _sample_specs()}
    return found


def test_every_identifier_shown_in_a_page_has_words() -> None:
    families = {m[0] or m[1] + "." for path in _sources() for m in FAMILY.findall(path.read_text(encoding="utf-8"))}
    assert families == {"type.", "status.", "role.", "method.", "scope.", "ws.choice_", "review_status.",
                        "audit_status.", "verdict.", "reopen.", "gen_status.", "job_as.", "prefill_mode.", "standing.",
                        "skill_kind.", "pool_kind.", "exam_result."}
    values = {"type.": set(type_names()), "status.": set(TaskStatus), "role.": set(Role), "method.": _methods(),
              "scope.": set(TokenScope), "ws.choice_": {"a", "b", "tie"}, "review_status.": set(ReviewStatus),
              "audit_status.": set(AuditStatus), "verdict.": set(ReviewAction), "reopen.": set(REOPEN),
              "gen_status.": set(generation.STATUSES) | set(model_endpoints.STATUSES),
              "job_as.": set(model_endpoints.MODES), "prefill_mode.": set(predictions.MODES),
              "standing.": set(my_work.STANDINGS), "skill_kind.": set(workforce.SKILL_KINDS),
              "pool_kind.": set(workforce.POOL_KINDS), "exam_result.": set(exams.ATTEMPT_STATUSES)}
    assert {"gold_weighted", "dawidskene", "ranking_aggregator", "rating_consensus", "review"} <= values["method."]
    for lang in ("en", "ar"):
        missing = [prefix + v for prefix, found in values.items() for v in found if prefix + v not in catalogue(lang)]
        assert missing == [], lang
    # The form's field labels too.
    labels = {f.label for t in all_types().values() for f in t.form_fields}
    assert labels <= set(catalogue("ar"))


def test_every_error_code_and_reason_has_words() -> None:
    reasons = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        reasons |= set(re.findall(r"""reason="([a-z_]+)\"""", text))
        reasons |= set(re.findall(r"""PydanticCustomError\(\s*"([a-z_]+)\"""", text))
    assert {"int_range", "labels_not_unique", "scale_order"} <= reasons
    for lang in ("en", "ar"):
        strings = catalogue(lang)
        assert sorted(f"err.{c}" for c in _error_codes() | {"csrf_failed"} if f"err.{c}" not in strings) == []
        assert sorted(f"err.{r}" for r in reasons if f"err.{r}" not in strings) == []


def test_each_catalogue_entry_uses_only_the_values_its_error_has() -> None:
    en, ar = catalogue("en"), catalogue("ar")
    for key in (k for k in en if k.startswith(("err.", "method.", "field."))):
        assert set(re.findall(r"\{(\w+)\}", en[key])) == set(re.findall(r"\{(\w+)\}", ar[key])), key


@pytest.mark.parametrize(("raw", "en", "ar"), [
    ({"type": "classification", "labels": []}, "Give at least one label.", "أدخل تسمية واحدة على الأقل."),
    ({"type": "classification", "labels": ["x", "x"]}, "Each label may appear only once.",
     "لا تتكرر التسمية الواحدة."),
    ({"type": "classification", "labels": ["x" * 201]},
     f"Field “{isolate('Labels')}”: at most {isolate(200)} characters.",
     f"الحقل «{isolate('التسميات')}»: الحد الأقصى لعدد الأحرف {isolate(200)}."),
    ({"type": "rating", "min": 5, "max": 3}, "The highest rating must be above the lowest.",
     "يجب أن يكون أعلى تقييم أكبر من أدناه."),
    ({"type": "boxes", "labels": ["a"], "gold_iou": 2}, f"“{isolate('task.gold_iou')}” must be at most {isolate(1.0)}.",
     f"يجب ألا يزيد «{isolate('task.gold_iou')}» على {isolate(1.0)}."),
    ({"type": "nothing"}, "Choose a task type.", "اختر نوع المهمة."),
    ({"type": "pairwise", "criteria": [str(n) for n in range(51)]},
     f"“{isolate('Criteria')}”: too many entries (at most {isolate(50)}).",
     f"«{isolate('المعايير')}»: العناصر أكثر من اللازم (الحد الأقصى {isolate(50)})."),
    ({"type": "chat", "criteria": [{"name": "helpful"}, {"name": "helpful", "label": "مفيد"}]},
     f"Each criterion needs its own name: “{isolate('helpful')}” is given twice.",
     f"لكل معيار اسم خاص به: الاسم «{isolate('helpful')}» مكرر."),
    ({"type": "text", "colour": "red"}, f"“{isolate('task.colour')}” is not a setting of this task type.",
     f"«{isolate('task.colour')}» ليس من إعدادات هذا النوع من المهام."),
])
def test_spec_errors_in_words(raw: dict[str, Any], en: str, ar: str) -> None:
    exc = _spec_error(raw)
    assert describe(Translator("en"), exc) == en
    assert describe(Translator("ar"), exc) == ar
    # The API keeps its machine-readable message.
    assert exc.message.startswith("task.")


def test_errors_without_a_reason_fall_back_by_field_then_code() -> None:
    en = Translator("en")
    assert describe(en, Invalid("slug must be ...", details={"field": "slug"})) == (
        "The slug may use only lowercase letters, digits and dashes.")
    assert describe(en, Invalid("x", details={"field": "instructions"})) == f"“{isolate('Instructions')}” is not valid."
    assert describe(en, Invalid("x", details={"field": "<b>x</b>"})) == f"“{isolate('<b>x</b>')}” is not valid."
    assert describe(en, NotFound("project not found")) == "Not found: it does not exist, or it is not yours to see."
    assert describe(Translator("ar"), QistasError("boom", code="no_such_code")) == "حدث خطأ."
    # An error whose entry wants a value it lacks leaves the place empty rather than failing.
    assert describe(en, Invalid("x", details={"field": "redundancy.min"}, reason="int_range")) == (
        f"“{isolate('At least')}” must be a whole number from  to .")


def test_values_sit_in_isolates() -> None:
    text = describe(Translator("ar"), _spec_error({"type": "classification", "labels": ["a" * 201]}))
    assert text.count(FSI) == text.count(PDI) == 2
