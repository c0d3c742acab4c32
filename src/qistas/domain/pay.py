"""Pay and time: what a project pays, how long an answer took by the server's clock, and each
annotator's ledger.

**Setting.** A project's ``pay`` is ``{"currency": "USD", "per_task": 12}`` or
``{"currency": "USD", "per_hour": 1500}``, amounts in the currency's minor units (cents), with
an optional ``floor_per_hour``: the least fair hourly rate, which the effective-rate report
(domain.pay_reports) checks the answers against. ``{}`` pays nothing. A project has one task
type, so a per-task rate is its rate for that type.

**Time.** Measured by the server, never reported by the client: from the lease (the take) to
the submit. The browser renews a lease only while its annotator is at work, so the take, each
renewal and the submit are signs of activity; each stretch between two of them counts at most
``idle_seconds`` (``QISTAS_IDLE_SECONDS``). A renewal adds its stretch to the lease's
``active_ms`` in the UPDATE that extends it; the submit adds the last one. No statement is
added to the loop.

**Ledger.** Append-only. An answer's earning is written on the annotation, in the INSERT that
stores it (``pay_minor``, ``pay_currency``: the rate when it was submitted; a later change of
rate changes no past entry); nothing ever updates it. A correction is a new ``PayEntry``: a
signed amount in a currency, with its reason and an audit event. A statement for a period
adds up both; so does the payout export.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from qistas.db.models import Annotation, Organization, PayEntry, Project, User
from qistas.domain import audit
from qistas.domain.currencies import is_currency, major
from qistas.errors import Invalid

IDLE_SECONDS = 300
MAX_RATE = 10**9  # minor units: a rate above it is a typo, and sums of it stay far within 64 bits
MAX_CORRECTION = 10**12
RATE_KINDS = ("per_task", "per_hour")
_KEYS = ("currency", *RATE_KINDS, "floor_per_hour")
_MS_PER_HOUR = 3_600_000


# --- the setting ---------------------------------------------------------------------------

def _amount(raw: dict[str, Any], key: str, *, field_name: str) -> int | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_RATE:
        raise Invalid(f"{field_name}.{key} must be a whole number of minor units from 0 to {MAX_RATE} "
                      "(e.g. 12 for USD 0.12)", details={"field": f"{field_name}.{key}"})
    return value


def parse_pay(raw: Any, *, field_name: str = "pay") -> dict[str, Any]:
    """The setting as stored: ``{}``, or the currency and one rate (and the floor if given).
    ``Invalid`` names the field: an unknown key, a currency not in ISO 4217, a rate that is
    negative, fractional or not a number, both rates or neither."""
    if raw is None or raw == {}:
        return {}
    if not isinstance(raw, dict):
        raise Invalid(f"{field_name} must be an object such as {{\"currency\": \"USD\", \"per_task\": 12}}",
                      details={"field": field_name})
    for key in raw:
        if key not in _KEYS:
            raise Invalid(f"{field_name}.{key} is not a pay setting (one of {', '.join(_KEYS)})",
                          details={"field": f"{field_name}.{key}"})
    currency = raw.get("currency")
    if not is_currency(currency):
        raise Invalid(f"{field_name}.currency must be an ISO 4217 code in capitals, such as USD, EUR or SAR",
                      details={"field": f"{field_name}.currency"})
    rates = {key: _amount(raw, key, field_name=field_name) for key in RATE_KINDS}
    given = [key for key, value in rates.items() if value is not None]
    if len(given) != 1:
        raise Invalid(f"{field_name} takes exactly one of per_task and per_hour", details={"field": field_name})
    setting: dict[str, Any] = {"currency": currency, given[0]: rates[given[0]]}
    floor = _amount(raw, "floor_per_hour", field_name=field_name)
    if floor is not None:
        setting["floor_per_hour"] = floor
    return setting


def rate_view(pay: dict[str, Any]) -> dict[str, Any]:
    """What an annotator sees of a project's pay: the currency and the rate."""
    return {key: value for key, value in pay.items() if key != "floor_per_hour"}


# --- time and earnings at submit -----------------------------------------------------------

def stretch_ms(since: datetime, now: datetime, *, idle_seconds: int) -> int:
    """The time from one sign of activity to the next, at most the idle limit."""
    elapsed = (now - since) // timedelta(milliseconds=1)
    return max(0, min(elapsed, idle_seconds * 1000))


def active_ms(*, created_at: datetime, seen_at: datetime | None, counted_ms: int, now: datetime,
              idle_seconds: int) -> int:
    """A lease's active time at ``now``: what its renewals counted, and the stretch since the
    last one (or since the take)."""
    return counted_ms + stretch_ms(seen_at or created_at, now, idle_seconds=idle_seconds)


def earned(pay: dict[str, Any], *, active: int) -> tuple[int | None, str | None]:
    """What an answer earns under the setting: (minor units, currency), or (None, None) unpaid.
    Per hour: the active time's share, rounded half up to a whole minor unit."""
    if not pay:
        return None, None
    if "per_task" in pay:
        return int(pay["per_task"]), str(pay["currency"])
    return (int(pay["per_hour"]) * active + _MS_PER_HOUR // 2) // _MS_PER_HOUR, str(pay["currency"])


# --- the ledger ----------------------------------------------------------------------------

def in_period(column: Any, since: datetime | None, until: datetime | None) -> list[Any]:
    """[since, until): either end may be open."""
    where = []
    if since is not None:
        where.append(column >= since)
    if until is not None:
        where.append(column < until)
    return where


def correct(session: Session, *, user: User, actor: User | None, amount_minor: int, currency: str, reason: str,
            project: Project | None, now: datetime) -> PayEntry:
    """Append a correction (positive: owed more; negative: a deduction) and its audit event."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor == 0 \
            or abs(amount_minor) > MAX_CORRECTION:
        raise Invalid(f"amount_minor must be a whole, non-zero number of minor units, at most {MAX_CORRECTION} "
                      "either way", details={"field": "amount_minor"})
    if not is_currency(currency):
        raise Invalid("currency must be an ISO 4217 code in capitals, such as USD, EUR or SAR",
                      details={"field": "currency"})
    if not reason.strip():
        raise Invalid("a correction needs a reason", details={"field": "reason"})
    entry = PayEntry(user_id=user.id, project_id=project.id if project else None, currency=currency,
                     amount_minor=amount_minor, reason=reason.strip(), created_by=actor.id if actor else None,
                     created_at=now)
    session.add(entry)
    session.flush()
    audit.record(session, actor=actor, action="pay.correct", object_type="user", object_id=user.id,
                 org_id=user.org_id, details={"entry": entry.id, "amount_minor": amount_minor, "currency": currency,
                                              "project": entry.project_id})
    return entry


@dataclass
class CurrencyTotal:
    currency: str
    answers: int = 0
    earned_minor: int = 0
    rejected_answers: int = 0  # answers a reviewer sent back: paid unless corrected
    rejected_minor: int = 0
    corrections_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.earned_minor + self.corrections_minor


@dataclass(frozen=True)
class ProjectLine:
    project_id: int
    work_name: str
    currency: str | None  # None: the project paid nothing then
    answers: int
    active_ms: int
    earned_minor: int


@dataclass
class Earnings:
    """An annotator's statement for a period: every answer and its time, totals per currency,
    per project (named by its work name) and the corrections."""

    user_id: int
    since: datetime | None
    until: datetime | None
    answers: int = 0
    active_ms: int = 0
    totals: list[CurrencyTotal] = field(default_factory=list)
    projects: list[ProjectLine] = field(default_factory=list)
    corrections: list[PayEntry] = field(default_factory=list)


def earnings_of(session: Session, *, user_id: int, since: datetime | None, until: datetime | None) -> Earnings:
    """The annotator's statement for [since, until): three reads, whatever the number of answers."""
    rejected = Annotation.rejected_at.is_not(None)
    rows = session.execute(
        select(Annotation.project_id, Annotation.pay_currency, func.count(),
               func.coalesce(func.sum(Annotation.active_ms), 0), func.coalesce(func.sum(Annotation.pay_minor), 0),
               func.count(Annotation.rejected_at),
               func.coalesce(func.sum(case((rejected, Annotation.pay_minor), else_=0)), 0))
        .where(Annotation.annotator_id == user_id, *in_period(Annotation.created_at, since, until))
        .group_by(Annotation.project_id, Annotation.pay_currency)
        .order_by(Annotation.project_id, Annotation.pay_currency)
    ).all()
    names: dict[int, str] = {}
    if rows:
        found = session.execute(select(Project.id, Project.work_name).where(Project.id.in_({row[0] for row in rows})))
        names = {project_id: work_name for project_id, work_name in found}
    statement = Earnings(user_id=user_id, since=since, until=until)
    totals: dict[str, CurrencyTotal] = {}
    for project_id, currency, answers, active, amount, n_rejected, rejected_amount in rows:
        statement.answers += answers
        statement.active_ms += int(active)
        statement.projects.append(ProjectLine(project_id, names.get(project_id, ""), currency, answers, int(active),
                                              int(amount)))
        if currency is None:
            continue
        total = totals.setdefault(currency, CurrencyTotal(currency))
        total.answers += answers
        total.earned_minor += int(amount)
        total.rejected_answers += n_rejected
        total.rejected_minor += int(rejected_amount)
    statement.corrections = list(session.scalars(
        select(PayEntry).where(PayEntry.user_id == user_id, *in_period(PayEntry.created_at, since, until))
        .order_by(PayEntry.id)))
    for entry in statement.corrections:
        totals.setdefault(entry.currency, CurrencyTotal(entry.currency)).corrections_minor += entry.amount_minor
    statement.totals = [totals[code] for code in sorted(totals)]
    return statement


@dataclass
class PayoutRow:
    user_id: int
    email: str
    org: str | None
    currency: str
    answers: int = 0
    active_ms: int = 0
    earned_minor: int = 0
    corrections_minor: int = 0

    @property
    def total_minor(self) -> int:
        return self.earned_minor + self.corrections_minor


def payouts(session: Session, *, org_id: int | None, since: datetime | None, until: datetime | None
            ) -> list[PayoutRow]:
    """What each annotator is owed for [since, until), per currency: their paid answers and the
    corrections. ``org_id``: that organization's annotators only; None: everyone's (admins)."""
    people = [] if org_id is None else [User.org_id == org_id]
    answers = session.execute(
        select(Annotation.annotator_id, Annotation.pay_currency, func.count(),
               func.coalesce(func.sum(Annotation.active_ms), 0), func.sum(Annotation.pay_minor))
        .join(User, User.id == Annotation.annotator_id)
        .where(Annotation.pay_currency.is_not(None), *people, *in_period(Annotation.created_at, since, until))
        .group_by(Annotation.annotator_id, Annotation.pay_currency)
    ).all()
    corrections = session.execute(
        select(PayEntry.user_id, PayEntry.currency, func.sum(PayEntry.amount_minor))
        .join(User, User.id == PayEntry.user_id)
        .where(*people, *in_period(PayEntry.created_at, since, until))
        .group_by(PayEntry.user_id, PayEntry.currency)
    ).all()
    found: dict[tuple[int, str], PayoutRow] = {}
    who = _people(session, {row.user_id for row in corrections} | {row.annotator_id for row in answers})

    def line(user_id: int, currency: Any) -> PayoutRow:
        return found.setdefault((user_id, str(currency)), PayoutRow(user_id, *who[user_id], str(currency)))

    for user_id, currency, count, active, amount in answers:
        row = line(user_id, currency)
        row.answers, row.active_ms, row.earned_minor = count, int(active or 0), int(amount or 0)
    for user_id, currency, amount in corrections:
        line(user_id, currency).corrections_minor = int(amount or 0)
    return sorted(found.values(), key=lambda r: (r.org or "", r.email, r.currency))


# Annotators looked up per statement: a payout lists a whole workforce, and a statement takes at
# most 65,535 parameters on PostgreSQL (32,766 on older SQLite builds).
PEOPLE_PER_READ = 10_000


def _people(session: Session, user_ids: Iterable[int]) -> dict[int, tuple[str, str | None]]:
    ids = sorted(user_ids)
    found: dict[int, tuple[str, str | None]] = {}
    for start in range(0, len(ids), PEOPLE_PER_READ):
        rows = session.execute(select(User.id, User.email, Organization.slug)
                               .outerjoin(Organization, Organization.id == User.org_id)
                               .where(User.id.in_(ids[start:start + PEOPLE_PER_READ])))
        found.update((user_id, (email, slug)) for user_id, email, slug in rows)
    return found


PAYOUT_COLUMNS = ("user_id", "email", "org", "currency", "answers", "active_hours", "earned_minor",
                  "corrections_minor", "total_minor", "total")


def payout_csv(rows: Iterable[PayoutRow]) -> str:
    """The payout export: one line per annotator and currency; ``total`` in the major unit."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAYOUT_COLUMNS)
    for row in rows:
        writer.writerow([row.user_id, row.email, row.org or "", row.currency, row.answers,
                         f"{row.active_ms / _MS_PER_HOUR:.3f}", row.earned_minor, row.corrections_minor,
                         row.total_minor, major(row.total_minor, row.currency)])
    return out.getvalue()


def by_currency(rows: Iterable[PayoutRow]) -> dict[str, int]:
    """Totals of a payout per currency (what the export's lines add up to)."""
    sums: dict[str, int] = defaultdict(int)
    for row in rows:
        sums[row.currency] += row.total_minor
    return dict(sums)
