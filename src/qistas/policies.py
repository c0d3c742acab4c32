"""Who may do what: the only home of role and tenant rules.

Two answers to "no": an object outside the actor's reach raises ``NotFound`` (another
tenant's project looks exactly like a missing one), while a visible object that the actor's
role may not touch raises ``Forbidden``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qistas.db.enums import Role, TokenScope
from qistas.errors import Forbidden, NotFound

if TYPE_CHECKING:  # the tables only annotate here; the CLI reads ACCOUNT_ROLES without loading them
    from qistas.db.models import Organization, Pool, Project, User

# The roles a user may be created with: an external annotator comes only with imported answers.
ACCOUNT_ROLES = (Role.ADMIN, Role.OWNER, Role.MEMBER, Role.ANNOTATOR)
STAFF_ROLES = (Role.OWNER, Role.MEMBER)


def is_admin(actor: User) -> bool:
    return actor.role == Role.ADMIN


def require_admin(actor: User) -> None:
    if not is_admin(actor):
        raise Forbidden("only an admin may do this")


def may_work_on(actor: User, project: Project) -> bool:
    """Whether the project's tasks may be served to this annotator: the project's workforce
    (its organization's own annotators, and the shared workforce unless it is "org"), then its
    routing (``meets_routing``)."""
    if actor.role != Role.ANNOTATOR:
        return False
    if actor.org_id is not None:
        if actor.org_id != project.org_id:
            return False
    elif project.workforce != "shared":
        return False
    return not project.routing or meets_routing(actor.work_profile, project.routing)


def meets_routing(profile: dict[str, Any] | None, routing: dict[str, Any]) -> bool:
    """Whether an annotator's work profile (``{"pools": [...], "skills": {"kind:tag": level}}``,
    domain.workforce) satisfies a project's routing (``{"pools": [...], "all": [...], "any": [...]}``):
    a member of one of its pools when it names any, every skill of ``all`` and one of ``any``
    at their minimum level. A language required without a region (``ar``) is met by any of its
    dialects (``ar-EG``)."""
    profile = profile or {}
    pools = routing.get("pools")
    if pools and not set(pools).intersection(profile.get("pools") or ()):
        return False
    skills: dict[str, int] = profile.get("skills") or {}
    if not all(_has_skill(skills, need) for need in routing.get("all") or ()):
        return False
    wanted = routing.get("any") or ()
    return not wanted or any(_has_skill(skills, need) for need in wanted)


def _has_skill(skills: dict[str, int], need: dict[str, Any]) -> bool:
    key, least = need["skill"], need["min_level"]
    if skills.get(key, 0) >= least:
        return True
    if not key.startswith("language:"):
        return False
    prefix = key + "-"
    return any(level >= least for name, level in skills.items() if name.startswith(prefix))


def may_review(actor: User, project: Project) -> bool:
    """Whether the actor may review the project's tasks: a reviewer who may work on it (the
    shared workforce or its organization's own annotators), or a reviewer of its organization's
    staff."""
    if not actor.is_reviewer or project.archived_at is not None:
        return False
    if actor.role in STAFF_ROLES:
        return actor.org_id == project.org_id
    return may_work_on(actor, project)


def ensure_reviewer_access(actor: User, project: Project | None) -> Project:
    """Taking a review: outside the reviewer's reach the project is not found; a visible
    project to someone who is not a reviewer is forbidden."""
    if project is None or not (project_visible(actor, project) or may_review(actor, project)):
        raise NotFound("project not found")
    if not may_review(actor, project):
        raise Forbidden("only reviewers given this project may review its tasks")
    return project


def project_visible(actor: User, project: Project) -> bool:
    if is_admin(actor):
        return True
    if actor.role in STAFF_ROLES:
        return actor.org_id == project.org_id
    return may_work_on(actor, project) and project.archived_at is None  # archived: hidden from annotators


def ensure_project_visible(actor: User, project: Project | None) -> Project:
    if project is None or not project_visible(actor, project):
        raise NotFound("project not found")
    return project


def ensure_customer_access(actor: User, project: Project | None) -> Project:
    """Reading or changing a project's data, results and settings: its org's staff, admins."""
    project = ensure_project_visible(actor, project)
    if actor.role not in (*STAFF_ROLES, Role.ADMIN):
        raise Forbidden("annotators may only take and submit tasks")
    return project


def ensure_fraud_manager(actor: User, project: Project | None) -> Project:
    """Putting a project's annotator on probation, blocking them or excluding their answers:
    the owners of the project's organization and admins; members may read the signals only."""
    project = ensure_customer_access(actor, project)
    if actor.role not in (Role.OWNER, Role.ADMIN):
        raise Forbidden("only the organization's owners may act on an annotator")
    return project


def ensure_org_people_access(actor: User, project: Project | None) -> Project:
    """A page of the organization's own work on a project (its generation batches): the
    owners and members of the project's organization; another tenant's project is not found,
    and an admin or an annotator who can see it is forbidden."""
    project = ensure_customer_access(actor, project)
    if actor.role not in STAFF_ROLES or actor.org_id != project.org_id:
        raise Forbidden("only the organization's owners and members may do this")
    return project


def ensure_customer_access_to(actor: User, project: Project | None, *, what: str) -> Project:
    """Like ``ensure_customer_access``, for an object of a project (a batch, an export job):
    outside the actor's reach, it is the object that is "not found"."""
    try:
        return ensure_customer_access(actor, project)
    except NotFound:
        raise NotFound(f"{what} not found") from None


def ensure_media_reader(actor: User, org_id: int | None) -> int:
    """Reading an organization's media with credentials: its owners and members, admins.
    Anyone else (annotators read through the signed URLs of their leases) finds nothing."""
    if org_id is None or not (is_admin(actor) or (actor.role in STAFF_ROLES and actor.org_id == org_id)):
        raise NotFound("media not found")
    return org_id


def ensure_annotator_access(actor: User, project: Project | None) -> Project:
    project = ensure_project_visible(actor, project)
    if not may_work_on(actor, project):
        raise Forbidden("only annotators may take tasks")
    return project


def ensure_may_create_project(actor: User) -> int:
    """The organization a new project belongs to."""
    if actor.role not in STAFF_ROLES or actor.org_id is None:
        raise Forbidden("only an organization's owners and members may create projects")
    return actor.org_id


def ensure_org_reachable(actor: User, org: Organization | None, slug: str) -> Organization:
    """An organization named by its slug: admins reach any; others only their own, and
    another one answers exactly like a slug that does not exist."""
    if org is None or (not is_admin(actor) and org.id != actor.org_id):
        raise NotFound(f"organization {slug!r} not found")
    return org


def ensure_may_create_user(actor: User, *, role: str, org_id: int | None) -> None:
    if is_admin(actor):
        return
    if actor.role != Role.OWNER:
        raise Forbidden("only admins and owners may create users")
    if role == Role.ADMIN:
        raise Forbidden("owners may not create admins")
    if org_id != actor.org_id:
        raise Forbidden("owners may only create users in their own organization")


def ensure_may_manage_tokens(actor: User, target: User | None) -> User:
    """Admins: anyone; owners: their organization's users; everyone: themselves."""
    if target is None:
        raise NotFound("user not found")
    if is_admin(actor) or target.id == actor.id:
        return target
    if actor.role == Role.OWNER and target.org_id == actor.org_id:
        return target
    if actor.org_id is not None and target.org_id == actor.org_id:
        raise Forbidden("only owners may manage other users' tokens")
    raise NotFound("user not found")


def ensure_may_manage_user(actor: User, target: User | None) -> User:
    """Deactivating, reactivating, resetting a password: admins anyone (but no one manages an
    admin except an admin); owners their organization's users. Someone outside the actor's
    reach is "not found"; a colleague the actor's role may not manage is forbidden."""
    if target is None:
        raise NotFound("user not found")
    if is_admin(actor):
        return target
    if actor.org_id is None or target.org_id != actor.org_id:
        raise NotFound("user not found")
    if actor.role != Role.OWNER:
        raise Forbidden("only owners may manage their organization's users")
    return target


def ensure_token_reachable(actor: User, owner: User | None) -> User:
    """A token, through the user it belongs to: outside reach it is the token that is not found."""
    try:
        return ensure_may_manage_tokens(actor, owner)
    except NotFound:
        raise NotFound("token not found") from None


def scope_permits(scope: str, *, method: str, loop: bool) -> bool:
    """Whether an API token of this scope may make the request.

    ``read``: GET (and HEAD) only. ``annotate``: those and the annotation loop's requests
    (take, submit, skip, renew). ``admin``: everything its user may do. The answer never
    depends on the object asked for, so a refusal says nothing about another tenant's objects.
    """
    if scope == TokenScope.ADMIN:
        return True
    if method in ("GET", "HEAD"):
        return scope in (TokenScope.READ, TokenScope.ANNOTATE)
    return scope == TokenScope.ANNOTATE and loop


def ensure_scope_permits(scope: str, *, method: str, loop: bool) -> None:
    if not scope_permits(scope, method=method, loop=loop):
        raise Forbidden(f"this token's scope ({scope}) does not allow this request", code="token_scope")


def ensure_audit_reader(actor: User) -> None:
    """The audit log: owners read their organization's, admins any (and the instance's own)."""
    if not is_admin(actor) and actor.role != Role.OWNER:
        raise Forbidden("only an organization's owners may read its audit log")


def ensure_endpoint_manager(actor: User, org_id: int | None) -> None:
    """An organization's model endpoints: its owners and the admins manage them; a member is
    forbidden; another tenant's endpoint is not found."""
    if is_admin(actor):
        return
    if org_id is None or actor.org_id != org_id or actor.role not in STAFF_ROLES:
        raise NotFound("model endpoint not found")
    if actor.role != Role.OWNER:
        raise Forbidden("only an organization's owners and admins may manage model endpoints")


def ensure_may_allow_private(actor: User) -> None:
    """Letting an endpoint reach private addresses opens the SSRF guard: admins only."""
    if not is_admin(actor):
        raise Forbidden("only an admin may let a model endpoint reach a private address")


def ensure_endpoint_usable(endpoint_org_id: int, project: Project) -> None:
    """A project sends its tasks only to its own organization's endpoints."""
    if endpoint_org_id != project.org_id:
        raise NotFound("model endpoint not found")


def ensure_may_create_pool(actor: User, *, org_id: int | None) -> None:
    """An organization's pools: its owners and the admins; the instance's (vendors, the shared
    workforce): admins only."""
    if is_admin(actor):
        return
    if org_id is None or actor.role != Role.OWNER or actor.org_id != org_id:
        raise Forbidden("only admins, and owners for their own organization, may create pools")


def pool_visible(actor: User, pool: Pool, *, manages: bool) -> bool:
    """Admins see every pool, an organization's staff its pools and the instance's (to route
    their projects to them), a manager the pools they manage."""
    if is_admin(actor) or manages:
        return True
    if actor.role in STAFF_ROLES:
        return pool.org_id is None or pool.org_id == actor.org_id
    return False


def ensure_pool_visible(actor: User, pool: Pool | None, *, manages: bool) -> Pool:
    if pool is None or not pool_visible(actor, pool, manages=manages):
        raise NotFound("pool not found")
    return pool


def ensure_pool_manager(actor: User, pool: Pool | None, *, manages: bool) -> Pool:
    """Changing a pool, its members or their skills, reading its members: admins, the
    organization's owners for its pools, the pool's managers for their pool only."""
    pool = ensure_pool_visible(actor, pool, manages=manages)
    if is_admin(actor) or manages:
        return pool
    if actor.role == Role.OWNER and pool.org_id is not None and pool.org_id == actor.org_id:
        return pool
    raise Forbidden("only admins, the organization's owners and the pool's managers may manage this pool")


def ensure_may_name_managers(actor: User) -> None:
    """A pool's managers are named by admins and owners (of a pool they manage), not by managers."""
    if not is_admin(actor) and actor.role != Role.OWNER:
        raise Forbidden("only admins and owners name a pool's managers")


def ensure_pool_routable(project: Project, pool: Pool | None) -> Pool:
    """A project is routed to its own organization's pools and the instance's, never another's."""
    if pool is None or (pool.org_id is not None and pool.org_id != project.org_id):
        raise NotFound("pool not found")
    return pool


def may_join_pool(user: User, pool: Pool) -> bool:
    """An annotator joins pools of their own organization, or (of none) the instance's."""
    return user.role == Role.ANNOTATOR and user.org_id == pool.org_id


def ensure_may_manage_skills(actor: User, target: User | None, *, manages_member: bool) -> User:
    """An annotator's skills: admins, owners of their organization, the managers of a pool they
    belong to. Anyone else is told the user does not exist."""
    if target is None or target.role != Role.ANNOTATOR:
        raise NotFound("user not found")
    if is_admin(actor) or manages_member:
        return target
    if actor.org_id is not None and actor.org_id == target.org_id and actor.role in STAFF_ROLES:
        if actor.role != Role.OWNER:
            raise Forbidden("only owners may manage their annotators' skills")
        return target
    raise NotFound("user not found")
