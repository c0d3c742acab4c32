"""The workforce: pools of annotators, their skills, and the routing of projects to them.

The tables (``pools``, ``pool_members``, ``user_skills``, and ``exam_attempts`` for the exams
passed) are the record. What routing reads is each annotator's ``work_profile`` (``{"pools":
[ids], "skills": {"kind:tag": level}, "exams": [ids]}``), written in the same transaction as any
change to them: the token cache already carries the user's columns to every request, so
checking a project's routing (``policies.meets_routing``) costs no statement on the claim, and
a change reaches a serving process within the token cache's second.
"""

from __future__ import annotations

import csv
import io
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, delete, func, select
from sqlalchemy.orm import Session

from qistas.db.enums import Role
from qistas.db.models import ExamAttempt, Organization, Pool, PoolMember, Project, User, UserSkill
from qistas.domain import audit, users
from qistas.domain.tasktypes import type_names
from qistas.errors import Conflict, Invalid, NotFound
from qistas.policies import (
    ensure_exam_routable,
    ensure_may_manage_skills,
    ensure_pool_manager,
    ensure_pool_routable,
    is_admin,
    may_join_pool,
)

POOL_KINDS = ("team", "vendor", "in_house", "shared")
SKILL_KINDS = ("language", "domain", "task_type")
MIN_LEVEL, MAX_LEVEL = 1, 5
MAX_SKILLS = 100
MAX_ROUTING_ITEMS = 50
MAX_IMPORT_ROWS = 10_000

# A well-formed BCP 47 tag as routing uses them: language (2-3 letters), optional script (4
# letters), optional region (2 letters or 3 digits). Case is normalised: ar-eg -> ar-EG.
_LANGUAGE = re.compile(r"^([A-Za-z]{2,3})(?:-([A-Za-z]{4}))?(?:-([A-Za-z]{2}|[0-9]{3}))?$")
_DOMAIN = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")


def language_tag(raw: str) -> str | None:
    """The tag in its normal case, or None when it is not well formed."""
    found = _LANGUAGE.match(raw.strip())
    if found is None:
        return None
    language, script, region = found.groups()
    return "-".join(part for part in (language.lower(), script and script.title(), region and region.upper())
                    if part)


def skill_key(kind: Any, tag: Any, *, field: str = "skills") -> str:
    """``kind:tag`` with the tag checked and normalised; ``Invalid`` naming the field if not."""
    if kind not in SKILL_KINDS:
        raise Invalid(f"{field}: a skill's kind is one of {', '.join(SKILL_KINDS)}", details={"field": field})
    if not isinstance(tag, str) or not tag.strip():
        raise Invalid(f"{field}: a skill needs a tag", details={"field": field})
    if kind == "language":
        normal = language_tag(tag)
        if normal is None:
            raise Invalid(f"{field}: {tag!r} is not a well-formed language tag (BCP 47, like ar-EG)",
                          details={"field": field})
    elif kind == "domain":
        normal = tag.strip().lower()
        if not _DOMAIN.match(normal):
            raise Invalid(f"{field}: {tag!r} is not a domain name (letters, digits, - and _)",
                          details={"field": field})
    else:
        normal = tag.strip()
        if normal not in type_names():
            raise Invalid(f"{field}: {tag!r} is not a task type", details={"field": field})
    return f"{kind}:{normal}"


def level_of(raw: Any, *, field: str) -> int:
    if not isinstance(raw, int) or isinstance(raw, bool) or not MIN_LEVEL <= raw <= MAX_LEVEL:
        raise Invalid(f"{field}: a level is an integer from {MIN_LEVEL} to {MAX_LEVEL}", details={"field": field},
                      reason="int_range", params={"lo": MIN_LEVEL, "hi": MAX_LEVEL})
    return raw


def parse_skills(raw: Any, *, field: str = "skills") -> dict[str, int]:
    """``[{"kind", "tag", "level"}, ...]`` as ``{"kind:tag": level}``."""
    if not isinstance(raw, list) or len(raw) > MAX_SKILLS:
        raise Invalid(f"{field} is a list of at most {MAX_SKILLS} skills", details={"field": field})
    found: dict[str, int] = {}
    for n, item in enumerate(raw):
        where = f"{field}[{n}]"
        if not isinstance(item, dict) or set(item) - {"kind", "tag", "level"}:
            raise Invalid(f"{where} is {{\"kind\", \"tag\", \"level\"}}", details={"field": where})
        key = skill_key(item.get("kind"), item.get("tag"), field=where)
        if key in found:
            raise Invalid(f"{where}: {key} is listed twice", details={"field": where})
        found[key] = level_of(item.get("level"), field=f"{where}.level")
    return found


def skills_list(skills: dict[str, int]) -> list[dict[str, Any]]:
    return [{"kind": key.partition(":")[0], "tag": key.partition(":")[2], "level": level}
            for key, level in sorted(skills.items())]


# --- routing --------------------------------------------------------------------------------


def parse_routing(session: Session, *, project: Project, raw: Any) -> dict[str, Any]:
    """A project's routing, checked and normalised: ``{"pools": [ids], "all": [...], "any": [...]}``
    with requirements as ``{"skill": "kind:tag", "min_level": n}``. Empty: anyone the project's
    workforce allows."""
    if not isinstance(raw, dict) or set(raw) - {"pools", "all", "any", "exams"}:
        raise Invalid('routing is {"pools": [ids], "all": [skills], "any": [skills], "exams": [ids]}',
                      details={"field": "routing"})
    pools = raw.get("pools") or []
    if not isinstance(pools, list) or len(pools) > MAX_ROUTING_ITEMS or not all(
            isinstance(p, int) and not isinstance(p, bool) for p in pools):
        raise Invalid(f"routing.pools is a list of at most {MAX_ROUTING_ITEMS} pool ids",
                      details={"field": "routing.pools"})
    for pool_id in pools:
        ensure_pool_routable(project, session.get(Pool, pool_id) if 0 < pool_id < 2**63 else None)
    routing: dict[str, Any] = {}
    if pools:
        routing["pools"] = sorted(set(pools))
    exams = raw.get("exams") or []
    if not isinstance(exams, list) or len(exams) > MAX_ROUTING_ITEMS or not all(
            isinstance(e, int) and not isinstance(e, bool) for e in exams):
        raise Invalid(f"routing.exams is a list of at most {MAX_ROUTING_ITEMS} exams (their projects' ids)",
                      details={"field": "routing.exams"})
    for exam_id in exams:
        if exam_id == project.id:
            raise Invalid("a project cannot require passing itself", details={"field": "routing.exams"})
        ensure_exam_routable(project, session.get(Project, exam_id) if 0 < exam_id < 2**63 else None)
    if exams:
        routing["exams"] = sorted(set(exams))
    for group in ("all", "any"):
        items = raw.get(group) or []
        if not isinstance(items, list) or len(items) > MAX_ROUTING_ITEMS:
            raise Invalid(f"routing.{group} is a list of at most {MAX_ROUTING_ITEMS} skills",
                          details={"field": f"routing.{group}"})
        needs = []
        for n, item in enumerate(items):
            where = f"routing.{group}[{n}]"
            if not isinstance(item, dict) or set(item) - {"kind", "tag", "min_level"}:
                raise Invalid(f'{where} is {{"kind", "tag", "min_level"}}', details={"field": where})
            key = skill_key(item.get("kind"), item.get("tag"), field=where)
            needs.append({"skill": key, "min_level": level_of(item.get("min_level", MIN_LEVEL),
                                                               field=f"{where}.min_level")})
        if needs:
            routing[group] = needs
    return routing


def routing_view(routing: dict[str, Any]) -> dict[str, Any]:
    """The routing as the API shows it (the input's shape)."""
    view: dict[str, Any] = {"pools": list(routing.get("pools") or []), "exams": list(routing.get("exams") or [])}
    for group in ("all", "any"):
        view[group] = [{"kind": need["skill"].partition(":")[0], "tag": need["skill"].partition(":")[2],
                        "min_level": need["min_level"]} for need in routing.get(group) or []]
    return view


# --- work names -----------------------------------------------------------------------------

_ADJECTIVES = ("amber", "azure", "brisk", "calm", "cedar", "coral", "crisp", "dawn", "ember", "fern", "frost",
               "golden", "granite", "hazel", "ivory", "jade", "juniper", "lunar", "maple", "misty", "north",
               "olive", "onyx", "pearl", "quiet", "river", "sable", "silver", "solar", "stone", "swift", "teal")
_NOUNS = ("atlas", "beacon", "bridge", "canyon", "comet", "delta", "falcon", "harbor", "heron", "island",
          "lantern", "meadow", "mesa", "orchid", "otter", "pine", "prism", "quarry", "raven", "reef",
          "ridge", "sparrow", "summit", "thicket", "tide", "valley", "willow", "zephyr")


def code_name() -> str:
    """A neutral name for annotators: two words and a number, saying nothing of the customer."""
    return f"{secrets.choice(_ADJECTIVES).title()} {secrets.choice(_NOUNS).title()} {secrets.randbelow(900) + 100}"


def work_name(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 100:
        raise Invalid("work_name is 1 to 100 characters", details={"field": "work_name"})
    return raw.strip()


# --- pools and members ----------------------------------------------------------------------


def manages(session: Session, *, pool_id: int, user_id: int) -> bool:
    return bool(session.scalar(select(PoolMember.is_manager).where(PoolMember.pool_id == pool_id,
                                                                   PoolMember.user_id == user_id)))


def managed_pool_ids(session: Session, *, user_id: int) -> set[int]:
    return set(session.scalars(select(PoolMember.pool_id).where(PoolMember.user_id == user_id,
                                                                PoolMember.is_manager.is_(True))))


def create_pool(session: Session, *, org_id: int | None, name: str, kind: str) -> Pool:
    name = name.strip()
    if not name or len(name) > 100:
        raise Invalid("a pool's name is 1 to 100 characters", details={"field": "name"})
    if kind not in POOL_KINDS:
        raise Invalid(f"kind is one of {', '.join(POOL_KINDS)}", details={"field": "kind"})
    if (kind == "in_house") != (org_id is not None) and kind != "team":
        where = "an organization's" if kind == "in_house" else "the instance's (no organization)"
        raise Invalid(f"a {kind} pool is {where}", details={"field": "kind"})
    same_org = Pool.org_id == org_id if org_id is not None else Pool.org_id.is_(None)
    if session.scalar(select(Pool.id).where(same_org, Pool.name == name)) is not None:
        raise Conflict(f"a pool named {name!r} exists", details={"field": "name"})
    pool = Pool(org_id=org_id, name=name, kind=kind)
    session.add(pool)
    session.flush()
    return pool


def list_pools(session: Session, *, actor: User) -> list[Pool]:
    query = select(Pool).order_by(Pool.id)
    if not is_admin(actor):
        visible: ColumnElement[bool] = Pool.id.in_(managed_pool_ids(session, user_id=actor.id))
        if actor.role in (Role.OWNER, Role.MEMBER):
            visible = visible | Pool.org_id.is_(None) | (Pool.org_id == actor.org_id)
        query = query.where(visible)
    return list(session.scalars(query))


@dataclass(frozen=True)
class PoolRow:
    pool: Pool
    org_slug: str | None
    members: int


def all_pools(session: Session) -> list[PoolRow]:
    """Every pool of the instance with its organization's slug and its number of members (the
    operator's command line)."""
    counts = dict(session.execute(select(PoolMember.pool_id, func.count()).group_by(PoolMember.pool_id)).all())
    slugs = dict(session.execute(select(Organization.id, Organization.slug)).all())
    return [PoolRow(pool, slugs.get(pool.org_id) if pool.org_id is not None else None, counts.get(pool.id, 0))
            for pool in session.scalars(select(Pool).order_by(Pool.id))]


@dataclass(frozen=True)
class Member:
    user_id: int
    email: str
    is_manager: bool
    skills: dict[str, int]


def members(session: Session, *, pool: Pool, after: int | None = None, limit: int | None = None,
            email: str | None = None) -> list[Member]:
    """The pool's members in user id order: up to ``limit`` after user ``after``; with ``email``,
    only those whose address holds it, in any case."""
    query = (select(User, PoolMember.is_manager).join(PoolMember, PoolMember.user_id == User.id)
             .where(PoolMember.pool_id == pool.id).order_by(User.id).limit(limit))
    if after is not None:
        query = query.where(User.id > after)
    if email:
        query = query.where(func.lower(User.email).contains(email.lower(), autoescape=True))
    rows = session.execute(query).all()
    return [Member(user.id, user.email, bool(is_manager), dict((user.work_profile or {}).get("skills") or {}))
            for user, is_manager in rows]


def add_member(session: Session, *, pool: Pool, user: User | None, is_manager: bool = False) -> None:
    """Add (or update) a member; someone who may not join the pool is a user not found."""
    if user is None or not may_join_pool(user, pool):
        raise NotFound("user not found")
    found = session.get(PoolMember, (pool.id, user.id))
    if found is None:
        session.add(PoolMember(pool_id=pool.id, user_id=user.id, is_manager=is_manager))
    else:
        found.is_manager = is_manager
    session.flush()
    refresh_profile(session, user=user)


def remove_member(session: Session, *, pool: Pool, user: User | None) -> None:
    if user is None or session.get(PoolMember, (pool.id, user.id)) is None:
        raise NotFound("user not found")
    session.execute(delete(PoolMember).where(PoolMember.pool_id == pool.id, PoolMember.user_id == user.id))
    refresh_profile(session, user=user)


def managed_pool(session: Session, *, actor: User, pool_id: int) -> Pool:
    """The pool, if the actor may manage it (``policies.ensure_pool_manager``)."""
    pool = session.get(Pool, pool_id)
    return ensure_pool_manager(actor, pool, manages=pool is not None and manages(session, pool_id=pool_id,
                                                                                     user_id=actor.id))


def skills_target(session: Session, *, actor: User, user_id: int) -> User:
    """The annotator whose skills the actor may manage (``policies.ensure_may_manage_skills``)."""
    target = session.get(User, user_id)
    member = target is not None and manages_member(session, actor_id=actor.id, user_id=user_id)
    return ensure_may_manage_skills(actor, target, manages_member=member)


def member_by_email(session: Session, *, pool: Pool, email: str) -> User:
    """The account that may join the pool under this email; the field ``email`` named if none."""
    user = _accounts(session, pool=pool, emails=[email.strip().lower()]).get(email.strip().lower())
    if user is None or not may_join_pool(user, pool):
        raise Invalid("no annotator with this email may join this pool", details={"field": "email"},
                      reason="not_found")
    return user


def record(session: Session, *, actor: User | None, pool: Pool, action: str,
           details: dict[str, Any] | None = None, via: str | None = None) -> None:
    """A pool's audit event, in its organization's chain (the instance's for an instance pool)."""
    audit.record(session, actor=actor, action=action, object_type="pool", object_id=pool.id, org_id=pool.org_id,
                 details={**(details or {}), "via": via} if via else details)


def record_skills(session: Session, *, actor: User | None, user: User, skills: int, via: str | None = None) -> None:
    details: dict[str, Any] = {"skills": skills, "via": via} if via else {"skills": skills}
    audit.record(session, actor=actor, action="user.skills", object_type="user", object_id=user.id,
                 org_id=user.org_id, details=details)


def member_counts(session: Session, *, pool_ids: list[int]) -> dict[int, int]:
    if not pool_ids:
        return {}
    return {pool_id: n for pool_id, n in session.execute(
        select(PoolMember.pool_id, func.count()).where(PoolMember.pool_id.in_(pool_ids)).group_by(PoolMember.pool_id))}


def manages_member(session: Session, *, actor_id: int, user_id: int) -> bool:
    """Whether the actor manages a pool the user belongs to."""
    managed = managed_pool_ids(session, user_id=actor_id)
    return bool(managed) and session.scalar(
        select(PoolMember.pool_id).where(PoolMember.user_id == user_id, PoolMember.pool_id.in_(managed)).limit(1)
    ) is not None


def set_skills(session: Session, *, user: User, skills: dict[str, int]) -> None:
    """Replace the annotator's skills (already parsed: ``parse_skills``)."""
    session.execute(delete(UserSkill).where(UserSkill.user_id == user.id))
    session.add_all(UserSkill(user_id=user.id, kind=key.partition(":")[0], tag=key.partition(":")[2], level=level)
                    for key, level in skills.items())
    session.flush()
    refresh_profile(session, user=user)


def skills_of(session: Session, *, user_id: int) -> dict[str, int]:
    rows = session.execute(select(UserSkill.kind, UserSkill.tag, UserSkill.level)
                           .where(UserSkill.user_id == user_id)).all()
    return {f"{kind}:{tag}": level for kind, tag, level in rows}


def refresh_profile(session: Session, *, user: User) -> None:
    """Write the user's ``work_profile`` from the tables, in the caller's transaction."""
    pools = sorted(session.scalars(select(PoolMember.pool_id).where(PoolMember.user_id == user.id)))
    passed = sorted(session.scalars(select(ExamAttempt.project_id).distinct()
                                    .where(ExamAttempt.annotator_id == user.id, ExamAttempt.status == "passed")))
    profile = {"pools": pools, "skills": skills_of(session, user_id=user.id), "exams": passed}
    stored = session.get(User, user.id)
    assert stored is not None
    stored.work_profile = profile
    session.flush()


# --- CSV import -----------------------------------------------------------------------------

IMPORT_COLUMNS = ("email", "skills", "manager")


def parse_skill_cell(cell: str, *, field: str) -> dict[str, int]:
    """``language:ar-EG=4; domain:medical=3`` as ``{"language:ar-EG": 4, ...}``."""
    found: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in cell.split(";"))):
        name, _, level = part.partition("=")
        kind, _, tag = name.partition(":")
        key = skill_key(kind.strip(), tag, field=field)
        if key in found:
            raise Invalid(f"{field}: {key} is listed twice", details={"field": field})
        found[key] = level_of(int(level) if level.strip().isdigit() else level, field=field)
    return found


def import_members(session: Session, *, pool: Pool, text: str, may_name_managers: bool) -> dict[str, int]:
    """Add the annotators of a CSV (``email,skills,manager``) to the pool, creating the accounts
    that do not exist (no password: they sign in with a link). Every row is checked before
    anything is written; the first bad row is named (``row n``, the header being row 1)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or "email" not in reader.fieldnames or set(reader.fieldnames) - set(IMPORT_COLUMNS):
        raise Invalid(f"the CSV's header is {','.join(IMPORT_COLUMNS)} (email required)", details={"field": "header"})
    rows: list[tuple[str, dict[str, int], bool]] = []
    seen: set[str] = set()
    for n, row in enumerate(reader, start=2):
        where = f"row {n}"
        if n - 1 > MAX_IMPORT_ROWS:
            raise Invalid(f"at most {MAX_IMPORT_ROWS} rows", details={"field": where})
        email = (row.get("email") or "").strip().lower()
        if not users.EMAIL.match(email):
            raise Invalid(f"{where}: not an email address", details={"field": where, "row": n})
        if email in seen:
            raise Invalid(f"{where}: {email} is listed twice", details={"field": where, "row": n})
        seen.add(email)
        try:
            skills = parse_skill_cell(row.get("skills") or "", field=where)
        except Invalid as exc:
            raise Invalid(exc.message, details={"field": where, "row": n}) from None
        manager = (row.get("manager") or "").strip().lower()
        if manager not in ("", "yes", "no", "true", "false", "1", "0"):
            raise Invalid(f"{where}: manager is yes or no", details={"field": where, "row": n})
        is_manager = manager in ("yes", "true", "1")
        if is_manager and not may_name_managers:
            raise Invalid(f"{where}: only admins and owners name a pool's managers", details={"field": where, "row": n})
        rows.append((email, skills, is_manager))
    found = _accounts(session, pool=pool, emails=[email for email, _, _ in rows])
    created = 0
    for n, (email, skills, is_manager) in enumerate(rows, start=2):
        user = found.get(email)
        if user is None:
            user = users.create_user(session, email=email, role=Role.ANNOTATOR, org_id=pool.org_id)
            created += 1
        elif not may_join_pool(user, pool):
            raise Invalid(f"row {n}: {email} may not join this pool", details={"field": f"row {n}", "row": n})
        add_member(session, pool=pool, user=user, is_manager=is_manager)
        set_skills(session, user=user, skills={**skills_of(session, user_id=user.id), **skills})
    return {"rows": len(rows), "created": created}


def _accounts(session: Session, *, pool: Pool, emails: Iterable[str]) -> dict[str, User]:
    same_org = User.org_id == pool.org_id if pool.org_id is not None else User.org_id.is_(None)
    wanted = list(emails)
    found: dict[str, User] = {}
    for start in range(0, len(wanted), 500):
        for user in session.scalars(select(User).where(same_org, User.email.in_(wanted[start:start + 500]))):
            found[user.email] = user
    return found
