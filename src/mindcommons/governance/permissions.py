"""Roles, purposes and the one permission table: which role may do which operation.

``PERMISSIONS`` is the single source of truth. Every library function that changes or
reveals governance state calls ``authorize(actor, operation, site=...)`` first, and the
authorization test walks this table against every role. Operations marked in
``SITE_SCOPED`` act on one site: a user whose account names sites may act only there.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mindcommons.errors import ConfigError, PolicyError


class Role(StrEnum):
    """Who a user is. One role per account (a person with two roles has two accounts)."""

    ADMIN = "admin"  # manages accounts; never approves data use (separation of duties)
    STEWARD = "steward"  # governs a site's data: consent, approvals, datasheets
    RESEARCHER = "researcher"  # declares projects, runs federated analyses
    CLINICIAN = "clinician"
    NAVIGATOR = "navigator"
    PATIENT = "patient"
    AUDITOR = "auditor"  # reads everything needed to check the others, changes nothing


class Purpose(StrEnum):
    """Why data is used; a dataset's consent lists the purposes it allows."""

    ANALYTICS = "analytics"
    EVALUATION = "evaluation"
    TRAINING = "training"
    CARE = "care"


class Op(StrEnum):
    """Every governed operation (library function and CLI action)."""

    USER_CREATE = "user.create"
    USER_LIST = "user.list"
    USER_SET_ROLE = "user.set_role"
    USER_SET_PASSWORD = "user.set_password"  # someone else's password
    USER_LOCK = "user.lock"
    USER_UNLOCK = "user.unlock"
    USER_TOKENS_OTHERS = "user.tokens_others"  # list or revoke another user's tokens
    OWN_PASSWORD = "own.password"
    OWN_TOKEN = "own.token"  # create, list, revoke one's own API tokens
    PROJECT_CREATE = "project.create"
    PROJECT_LIST = "project.list"
    PROJECT_APPROVE = "project.approve"
    PROJECT_REVOKE = "project.revoke"
    DATASET_LIST = "dataset.list"  # the public list of datasets and their make-up
    DATASET_CONSENT = "dataset.consent"
    DATASHEET_WRITE = "datasheet.write"
    DATASHEET_READ = "datasheet.read"
    PROFILE_SITE = "profile.site"  # diversity profile read directly at one site
    PROFILE_FEDERATED = "profile.federated"  # diversity profile through the query job
    GOVERNANCE_LOG = "governance.log"  # read and verify the governance audit log


_ALL = frozenset(Role)
R = Role
PERMISSIONS: dict[Op, frozenset[Role]] = {
    Op.USER_CREATE: frozenset({R.ADMIN}),
    Op.USER_LIST: frozenset({R.ADMIN, R.AUDITOR}),
    Op.USER_SET_ROLE: frozenset({R.ADMIN}),
    Op.USER_SET_PASSWORD: frozenset({R.ADMIN}),
    Op.USER_LOCK: frozenset({R.ADMIN}),
    Op.USER_UNLOCK: frozenset({R.ADMIN}),
    Op.USER_TOKENS_OTHERS: frozenset({R.ADMIN}),
    Op.OWN_PASSWORD: _ALL,
    Op.OWN_TOKEN: _ALL,
    Op.PROJECT_CREATE: frozenset({R.RESEARCHER, R.STEWARD}),
    Op.PROJECT_LIST: frozenset({R.ADMIN, R.STEWARD, R.RESEARCHER, R.AUDITOR}),
    Op.PROJECT_APPROVE: frozenset({R.STEWARD}),
    Op.PROJECT_REVOKE: frozenset({R.STEWARD}),
    Op.DATASET_LIST: _ALL,
    Op.DATASET_CONSENT: frozenset({R.STEWARD}),
    Op.DATASHEET_WRITE: frozenset({R.STEWARD}),
    Op.DATASHEET_READ: _ALL,
    Op.PROFILE_SITE: frozenset({R.STEWARD, R.AUDITOR}),
    Op.PROFILE_FEDERATED: frozenset({R.STEWARD, R.RESEARCHER}),
    Op.GOVERNANCE_LOG: frozenset({R.ADMIN, R.AUDITOR}),
}
SITE_SCOPED = frozenset(
    {Op.PROJECT_APPROVE, Op.PROJECT_REVOKE, Op.DATASET_CONSENT, Op.DATASHEET_WRITE,
     Op.PROFILE_SITE}
)  # fmt: skip


@dataclass(frozen=True)
class Principal:
    """An authenticated user as the library sees it (from a session or an API token)."""

    username: str
    role: Role
    sites: tuple[str, ...] = ()  # empty: every site of this installation
    credential_id: int | None = None

    @property
    def label(self) -> str:
        """How the audit log names this actor."""
        return f"user:{self.username}"

    def may(self, op: Op, site: str | None = None) -> bool:
        if self.role not in PERMISSIONS[op]:
            return False
        if op in SITE_SCOPED and self.sites:
            return site is not None and site in self.sites
        return True


def allowed_roles(op: Op) -> list[str]:
    return sorted(r.value for r in PERMISSIONS[op])


def authorize(actor: Principal, op: Op, *, site: str | None = None) -> None:
    """Return if ``actor`` may do ``op`` (at ``site``); else PolicyError saying who may."""
    if actor.role not in PERMISSIONS[op]:
        raise PolicyError(
            f"denied: {actor.username} ({actor.role.value}) may not {op.value}; "
            f"allowed roles: {', '.join(allowed_roles(op))}"
        )
    if op in SITE_SCOPED and actor.sites and (site is None or site not in actor.sites):
        raise PolicyError(
            f"denied: {actor.username} acts for {', '.join(actor.sites)} only, "
            f"not {site or 'every site'} ({op.value})"
        )


def parse_role(text: str) -> Role:
    try:
        return Role(text.strip().lower())
    except ValueError:
        raise ConfigError(
            f"unknown role '{text}'; use one of {', '.join(r.value for r in Role)}"
        ) from None


def parse_purposes(values: list[str] | tuple[str, ...] | str) -> tuple[Purpose, ...]:
    """Purposes from names (a list, or one comma-separated string); sorted, unique."""
    items = values.split(",") if isinstance(values, str) else list(values)
    out: set[Purpose] = set()
    for item in items:
        name = item.strip().lower()
        if not name:
            continue
        try:
            out.add(Purpose(name))
        except ValueError:
            raise ConfigError(
                f"unknown purpose '{item}'; use one of {', '.join(p.value for p in Purpose)}"
            ) from None
    return tuple(sorted(out))
