"""Projects declare purposes; a site's steward approves (or revokes) a project there.

A project is a name, the purposes it declares (analytics, evaluation, training, care),
a description and its owner. An approval is per (project, site) and covers some or all
of the project's purposes; approvals and revocations are recorded in the *site's* own
audit log. The built-in project ``local`` stands for the site's own use of its own data
(every job that names no project): it is approved for every purpose at every site until
that site's steward revokes or narrows it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import select

from mindcommons.errors import ConfigError, PolicyError
from mindcommons.governance.auditentry import EventKind
from mindcommons.governance.auditlog import record_event
from mindcommons.governance.permissions import (
    Op,
    Principal,
    Purpose,
    authorize,
    parse_purposes,
)
from mindcommons.governance.store import (
    Approval,
    Project,
    governance_session,
    store_exists,
    utcnow,
)
from mindcommons.governance.users import audit
from mindcommons.settings import Settings, validate_site_name

LOCAL_PROJECT = "local"
PROJECT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
ALL_PURPOSES = tuple(sorted(Purpose))


@dataclass(frozen=True)
class ProjectInfo:
    name: str
    purposes: tuple[str, ...]
    description: str
    owner: str
    approvals: dict[str, tuple[str, ...]]  # site -> approved purposes (current approvals)


@dataclass(frozen=True)
class ApprovalInfo:
    project: str
    site: str
    purposes: tuple[str, ...]
    status: str  # "approved" | "revoked" | "default" (local, never decided)
    decided_by: str
    decided_at: str


def check_project_name(name: str) -> str:
    if not PROJECT_RE.match(name):
        raise ConfigError(
            f"project name '{name}' is not valid: letters, digits, '.', '_', '-' "
            "(at most 100 characters, starting with a letter or digit)"
        )
    return name


def create_project(
    settings: Settings,
    actor: Principal,
    name: str,
    purposes: list[str] | tuple[str, ...] | str,
    description: str = "",
) -> ProjectInfo:
    """Declare a project and its purposes (researchers; stewards registering one)."""
    authorize(actor, Op.PROJECT_CREATE)
    check_project_name(name)
    if name == LOCAL_PROJECT:
        raise ConfigError(f"'{LOCAL_PROJECT}' is the built-in project of each site's own use")
    chosen = parse_purposes(purposes)
    if not chosen:
        raise ConfigError("a project declares at least one purpose (--purpose analytics, ...)")
    with governance_session(settings) as session:
        if session.scalar(select(Project.id).where(Project.name == name)) is not None:
            raise ConfigError(f"project '{name}' exists already")
        session.add(
            Project(
                name=name,
                purposes=[p.value for p in chosen],
                description=description[:2000],
                owner=actor.username,
                created_at=utcnow(),
            )
        )
    audit(
        settings,
        EventKind.USER_CHANGE,
        actor.label,
        f"project:{name}",
        action="project_create",
        purposes=[p.value for p in chosen],
    )
    return ProjectInfo(name, tuple(p.value for p in chosen), description, actor.username, {})


def list_projects(settings: Settings, actor: Principal) -> list[ProjectInfo]:
    """Every declared project with the sites that approve it now (plus ``local``)."""
    authorize(actor, Op.PROJECT_LIST)
    with governance_session(settings) as session:
        approvals: dict[str, dict[str, tuple[str, ...]]] = {}
        for row in session.scalars(select(Approval).where(Approval.status == "approved")):
            approvals.setdefault(row.project, {})[row.site] = tuple(row.purposes)
        out = [
            ProjectInfo(
                p.name, tuple(p.purposes), p.description, p.owner, approvals.get(p.name, {})
            )
            for p in session.scalars(select(Project).order_by(Project.name))
        ]
    local = ProjectInfo(
        LOCAL_PROJECT,
        ALL_PURPOSES,
        "each site's own use of its own data",
        "(built-in)",
        approvals.get(LOCAL_PROJECT, {}),
    )
    return [local, *out]


def _declared_purposes(settings: Settings, project: str) -> tuple[str, ...]:
    if project == LOCAL_PROJECT:
        return ALL_PURPOSES
    with governance_session(settings) as session:
        row = session.scalar(select(Project).where(Project.name == project))
        if row is None:
            raise ConfigError(
                f"no project '{project}' here; declare it first "
                f"('mindcommons projects create {project} --purpose ...')"
            )
        return tuple(row.purposes)


def approve_project(
    settings: Settings,
    actor: Principal,
    project: str,
    site: str,
    purposes: list[str] | tuple[str, ...] | str | None = None,
    note: str = "",
) -> ApprovalInfo:
    """The site's steward approves ``project`` at ``site`` for ``purposes`` (default: all
    it declares; never more). Recorded in the site's audit log."""
    authorize(actor, Op.PROJECT_APPROVE, site=validate_site_name(site))
    check_project_name(project)
    site_dir = settings.site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    declared = _declared_purposes(settings, project)
    chosen = tuple(p.value for p in parse_purposes(purposes)) if purposes else declared
    extra = sorted(set(chosen) - set(declared))
    if extra:
        raise PolicyError(
            f"denied: project '{project}' declares {', '.join(declared)}; it cannot be "
            f"approved for {', '.join(extra)}"
        )
    if not chosen:
        raise ConfigError("approve at least one purpose")
    info = _decide(settings, actor, project, site, chosen, "approved", note)
    record_event(
        site_dir,
        EventKind.APPROVAL,
        actor=actor.label,
        subject=f"project:{project}",
        details={"purposes": list(chosen), "note_chars": len(note)},
    )
    return info


def revoke_project(
    settings: Settings, actor: Principal, project: str, site: str, note: str = ""
) -> ApprovalInfo:
    """Withdraw ``project``'s approval at ``site``; its next job there is refused."""
    authorize(actor, Op.PROJECT_REVOKE, site=validate_site_name(site))
    check_project_name(project)
    site_dir = settings.site_dir(site)
    if not site_dir.is_dir():
        raise ConfigError(f"no site '{site}' at {site_dir}: check --site and --home")
    info = _decide(settings, actor, project, site, (), "revoked", note)
    record_event(
        site_dir,
        EventKind.REVOCATION,
        actor=actor.label,
        subject=f"project:{project}",
        details={"note_chars": len(note)},
    )
    return info


def _decide(
    settings: Settings,
    actor: Principal,
    project: str,
    site: str,
    purposes: tuple[str, ...],
    status: str,
    note: str,
) -> ApprovalInfo:
    now = utcnow()
    with governance_session(settings) as session:
        row = session.scalar(
            select(Approval).where(Approval.project == project, Approval.site == site)
        )
        if row is None:
            row = Approval(project=project, site=site)
            session.add(row)
        row.purposes = list(purposes)
        row.status = status
        row.decided_by = actor.username
        row.decided_at = now
        row.note = note[:2000]
    return ApprovalInfo(project, site, purposes, status, actor.username, now.isoformat() + "Z")


def approval_at(settings: Settings, project: str, site: str) -> ApprovalInfo | None:
    """The current decision on ``project`` at ``site`` (no authorization: the site guard
    calls this). ``local`` without a decision is approved for every purpose."""
    row_info: ApprovalInfo | None = None
    if store_exists(settings):
        with governance_session(settings) as session:
            row = session.scalar(
                select(Approval).where(Approval.project == project, Approval.site == site)
            )
            if row is not None:
                row_info = ApprovalInfo(
                    row.project,
                    row.site,
                    tuple(row.purposes),
                    row.status,
                    row.decided_by,
                    row.decided_at.isoformat() + "Z",
                )
    if row_info is None and project == LOCAL_PROJECT:
        return ApprovalInfo(LOCAL_PROJECT, site, ALL_PURPOSES, "default", "(built-in)", "")
    return row_info


def site_approvals(settings: Settings, actor: Principal, site: str) -> list[ApprovalInfo]:
    """Every decision recorded for ``site`` (plus the default of ``local``)."""
    authorize(actor, Op.PROJECT_LIST)
    validate_site_name(site)
    with governance_session(settings) as session:
        rows = [
            ApprovalInfo(
                r.project,
                r.site,
                tuple(r.purposes),
                r.status,
                r.decided_by,
                r.decided_at.isoformat() + "Z",
            )
            for r in session.scalars(
                select(Approval).where(Approval.site == site).order_by(Approval.project)
            )
        ]
    if not any(r.project == LOCAL_PROJECT for r in rows):
        rows.insert(0, ApprovalInfo(LOCAL_PROJECT, site, ALL_PURPOSES, "default", "(built-in)", ""))
    return rows
