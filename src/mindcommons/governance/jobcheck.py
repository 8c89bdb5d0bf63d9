"""The site guard's governance check: project approved here, purpose consented everywhere.

``check_job`` is called by ``federation.site.run_site_job`` after the allowlist and
before any handler runs. Every job has a project (none named: the site's own ``local``)
and a purpose fixed by its job type (``JOB_PURPOSES``, installed at the site: the
coordinator cannot relabel a training job as analytics). The job runs only if

1. the project is approved at this site for that purpose, and
2. every dataset at the site (jobs read the whole site) lists that purpose in its
   consent; a dataset without a consent record is readable only by ``local``.

Otherwise ``PolicyError`` carries a reason that reaches the coordinator's user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mindcommons.errors import PolicyError
from mindcommons.governance.permissions import Purpose
from mindcommons.settings import Settings

# Job type -> purpose. A job type missing here is refused until its purpose is declared
# (``register_job_purpose``), so a new kind of job can never run ungoverned.
JOB_PURPOSES: dict[str, Purpose] = {
    "count": Purpose.ANALYTICS,
    "query": Purpose.ANALYTICS,
    "evaluate": Purpose.EVALUATION,
    "suite": Purpose.EVALUATION,
    "measure": Purpose.TRAINING,
    "train": Purpose.TRAINING,
    "lora": Purpose.TRAINING,
}


def register_job_purpose(kind: str, purpose: Purpose | str) -> None:
    """Declare the purpose of a job type (its module calls this next to registering it)."""
    JOB_PURPOSES[kind] = Purpose(purpose)


def job_purpose(kind: str, site: str) -> Purpose:
    try:
        return JOB_PURPOSES[kind]
    except KeyError:
        raise PolicyError(
            f"refused: job type '{kind}' declares no purpose at {site} "
            "(mindcommons.governance.jobcheck.JOB_PURPOSES)"
        ) from None


@dataclass(frozen=True)
class JobClearance:
    project: str
    purpose: str
    datasets: int


def job_project(job: dict[str, Any]) -> str:
    from mindcommons.governance.projects import LOCAL_PROJECT, PROJECT_RE

    project = str(job.get("project") or LOCAL_PROJECT)
    if not PROJECT_RE.match(project):
        raise PolicyError("refused: project names use letters, digits, '.', '_', '-'")
    return project


def dataset_consents(settings: Settings, site: str) -> list[tuple[str, tuple[str, ...]]]:
    """(dataset name, allowed purposes) of every dataset at ``site``, read directly.

    A light read for the guard (no migration, no keyring): a site whose database or
    schema does not exist yet holds no dataset; a database that cannot be reached raises
    PrerequisiteError (the job is not run).
    """
    from sqlalchemy import create_engine, inspect, select
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import SQLAlchemyError

    from mindcommons.errors import PrerequisiteError
    from mindcommons.repository.models import Dataset, Site

    url = settings.site_db_url(site)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and not (
        parsed.database and Path(parsed.database).exists()
    ):
        return []
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn:
            if not inspect(conn).has_table("dataset"):
                return []
            rows = conn.execute(
                select(Dataset.name, Dataset.allowed_purposes)
                .join(Site, Dataset.site_id == Site.id)
                .where(Site.name == site)
                .order_by(Dataset.name)
            ).all()
    except SQLAlchemyError as err:
        raise PrerequisiteError(
            f"cannot read the consent of {site}'s datasets ({type(err).__name__})"
        ) from err
    finally:
        engine.dispose()
    return [(str(name), tuple(sorted(purposes or []))) for name, purposes in rows]


def check_job(settings: Settings, site: str, job: dict[str, Any]) -> JobClearance:
    """Clear ``job`` at ``site`` or raise PolicyError with the reason (see module doc)."""
    from mindcommons.governance.projects import LOCAL_PROJECT, approval_at

    kind = str(job.get("job", ""))
    purpose = job_purpose(kind, site)
    project = job_project(job)
    decision = approval_at(settings, project, site)
    if decision is None or decision.status == "revoked":
        state = "revoked" if decision is not None else "not approved"
        raise PolicyError(
            f"refused: project '{project}' is {state} at {site} (its steward decides: "
            f"mindcommons projects approve {project} --site {site})"
        )
    if purpose.value not in decision.purposes:
        approved = ", ".join(decision.purposes) or "nothing"
        raise PolicyError(
            f"refused: project '{project}' is approved at {site} for {approved}, "
            f"not {purpose.value} (job type '{kind}')"
        )
    datasets = dataset_consents(settings, site)
    for name, allowed in datasets:
        if not allowed:
            if project != LOCAL_PROJECT:
                raise PolicyError(
                    f"refused: dataset '{name}' at {site} has no consent record; only the "
                    f"site's own project '{LOCAL_PROJECT}' may use it"
                )
        elif purpose.value not in allowed:
            raise PolicyError(
                f"refused: the consent of dataset '{name}' at {site} allows "
                f"{', '.join(allowed)}, not {purpose.value}"
            )
    return JobClearance(project, purpose.value, len(datasets))
