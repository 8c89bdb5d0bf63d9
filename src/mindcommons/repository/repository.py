"""SiteRepository: one site's records in SQLite or PostgreSQL, behind a small API."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from sqlalchemy import Engine, create_engine, event, func, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session

from mindcommons.errors import ConfigError, InputError, PrerequisiteError
from mindcommons.records import DatasetRecord, Record
from mindcommons.repository import migrate, rekey
from mindcommons.repository.crypto import KEY_FILE, KEY_FILE_ENV, Keyring, keyring_path_from_env
from mindcommons.repository.evalitems import eval_items
from mindcommons.repository.models import COUNTED_TABLES, Dataset, Participant
from mindcommons.repository.rekey import Rotation
from mindcommons.repository.review import ReviewEntry, deid_records, review_queue
from mindcommons.repository.store import BatchResult, DocKey, store
from mindcommons.settings import Settings, validate_site_name
from mindcommons.tasks.base import EvalItem


def _enable_sqlite_foreign_keys(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _create_engine(url: str) -> Engine:
    try:
        parsed = make_url(url)
        engine = create_engine(parsed)
    except ArgumentError as err:
        raise ConfigError(f"database URL '{url}' is not valid: {err}") from err
    except ModuleNotFoundError as err:
        raise PrerequisiteError(
            f"the database driver '{err.name}' is not installed; for PostgreSQL run "
            "pip install 'mindcommons[postgres]'"
        ) from err
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _enable_sqlite_foreign_keys)
    return engine


def _keyring_for(url: str, keyring: Keyring | None, keyring_path: Path | None) -> Keyring:
    """The keyring given, else the file given, else $MINDCOMMONS_TEXT_KEY_FILE, else the
    ``text.keys`` next to a SQLite database file; a PostgreSQL URL needs one of the first 3."""
    if keyring is not None:
        return keyring
    path = keyring_path or keyring_path_from_env()
    if path is None:
        parsed = make_url(url)
        database = parsed.database or ""
        if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
            raise ConfigError(
                f"document text is encrypted with a key kept outside the database; for "
                f"{parsed.render_as_string(hide_password=True)} give keyring_path= or set "
                f"{KEY_FILE_ENV} to the keyring file"
            )
        path = Path(database).resolve().parent / KEY_FILE
    return Keyring.load(path)


class SiteRepository:
    """A site's repository. Open with ``SiteRepository.open(url)`` or ``for_site``.

    Document text is stored encrypted under ``keyring`` (see ``repository/crypto.py``).
    """

    def __init__(self, engine: Engine, keyring: Keyring) -> None:
        self.engine = engine
        self.keyring = keyring

    @classmethod
    def open(
        cls,
        url: str,
        *,
        keyring: Keyring | None = None,
        keyring_path: Path | None = None,
    ) -> SiteRepository:
        """Connect to ``url``, migrate the schema to the newest revision, load the keyring.

        The keyring is ``keyring``, else the file ``keyring_path`` (created on first use),
        else ``$MINDCOMMONS_TEXT_KEY_FILE``, else ``text.keys`` in the folder of a SQLite
        database file; other URLs without one raise ``ConfigError``. Rows still in plaintext
        are encrypted (one transaction), then one row per key is decrypted as a check: a
        wrong keyring raises ``PrerequisiteError`` naming the key file.
        """
        ring = _keyring_for(url, keyring, keyring_path)
        engine = _create_engine(url)
        shown = engine.url.render_as_string(hide_password=True)
        try:
            migrate.upgrade(engine)
            with Session(engine) as session, session.begin():
                rekey.encrypt_plaintext(session, ring)
            with Session(engine) as session:
                rekey.check_readable(session, ring)
        except OperationalError as err:
            engine.dispose()
            reason = str(err.orig).strip().splitlines()[0] if err.orig else str(err)
            hint = ""
            if engine.dialect.name == "postgresql":
                hint = " (is PostgreSQL running and does the database exist? scripts/pg.sh start)"
            raise PrerequisiteError(f"cannot open repository {shown}: {reason}{hint}") from err
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, ring)

    @classmethod
    def for_site(cls, settings: Settings, site: str) -> SiteRepository:
        """The repository of ``site`` under ``settings`` (one SQLite file per site by default).

        Its keyring is ``$MINDCOMMONS_TEXT_KEY_FILE`` or ``<site_dir>/text.keys``.
        """
        url = settings.site_db_url(site)
        site_dir = settings.site_dir(site)
        if make_url(url).get_backend_name() == "sqlite":
            site_dir.mkdir(parents=True, exist_ok=True)
        path = keyring_path_from_env() or site_dir / KEY_FILE
        return cls.open(url, keyring_path=path)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def store_batch(
        self,
        site: str,
        dataset: DatasetRecord,
        records: Sequence[Record],
        *,
        source: str,
        deid_records: Mapping[DocKey, Mapping[str, Any]] | None = None,
        review: Sequence[DocKey] = (),
    ) -> BatchResult:
        """Store ``records`` of ``dataset`` at ``site`` in one transaction, all or nothing.

        Records already stored with identical content count as ``unchanged``; a record
        whose natural key is stored with different content raises ``InputError`` and
        nothing is written. ``deid_records`` maps (participant_id, document_id) to the
        de-identification record kept with a newly stored document (counts, versions,
        mode; never text); the documents named in ``review`` get a pending review item
        unless they already have one.
        """
        validate_site_name(site)
        try:
            with Session(self.engine) as session, session.begin():
                return store(
                    session,
                    site,
                    dataset,
                    records,
                    source=source,
                    keyring=self.keyring,
                    deid_records=deid_records,
                    review=review,
                )
        except InputError:
            raise
        except IntegrityError as err:
            raise InputError(
                "the batch clashes with rows written at the same time by another process; "
                f"nothing was stored, try again ({_first_line(err)})",
                record=f"batch from {source}",
            ) from err
        except (SQLAlchemyError, OverflowError) as err:
            raise InputError(
                f"the database refused the batch: {_first_line(err)}; nothing was stored",
                record=f"batch from {source}",
            ) from err

    def counts(self) -> dict[str, int]:
        """Rows per table: site, dataset, participant, document, measure, signal, outcome."""
        with Session(self.engine) as session:
            return {
                name: int(session.scalar(select(func.count()).select_from(model)) or 0)
                for name, model in COUNTED_TABLES.items()
            }

    def participant_ids(self, dataset: str | None = None) -> set[str]:
        """Participant ids stored (in one dataset, or in all)."""
        stmt = select(Participant.participant_id)
        if dataset is not None:
            stmt = stmt.join(Dataset, Participant.dataset_id == Dataset.id).where(
                Dataset.name == dataset
            )
        with Session(self.engine) as session:
            return set(session.scalars(stmt))

    def review_queue(self, status: str | None = "pending") -> list[ReviewEntry]:
        """Documents sampled for a human de-identification check (``None``: any status)."""
        with Session(self.engine) as session:
            return review_queue(session, status)

    def deid_records(self) -> dict[DocKey, dict[str, Any]]:
        """(participant_id, document_id) -> de-identification record, for documents with one."""
        with Session(self.engine) as session:
            return deid_records(session)

    def eval_items(
        self,
        instrument: str = "PHQ-9",
        kinds: Sequence[str] = ("clinical_note", "therapy_transcript"),
        limit: int | None = None,
        seed: int = 0,
        max_days: int = 30,
    ) -> list[EvalItem]:
        """Documents of ``kinds`` paired with the same participant's ``instrument`` measure.

        The measure nearest in date (ties: the earlier) within ``max_days`` is used;
        documents without one are skipped. Order: by document id, then shuffled with
        ``seed``; then the first ``limit``.
        """
        with Session(self.engine) as session:
            return eval_items(
                session,
                keyring=self.keyring,
                instrument=instrument,
                kinds=kinds,
                limit=limit,
                seed=seed,
                max_days=max_days,
            )

    def document_texts(self) -> dict[DocKey, str]:
        """(participant_id, document_id) -> decrypted text of every stored document."""
        with Session(self.engine) as session:
            return rekey.document_texts(session, self.keyring)

    def key_usage(self) -> dict[str, int]:
        """Key id -> number of documents encrypted with it."""
        with Session(self.engine) as session:
            return rekey.key_ids_in_use(session)

    def rotate_text_key(self) -> Rotation:
        """A new current key; every document re-encrypted in one transaction (all or nothing).

        The new key is saved to the keyring file before the transaction, and the old keys
        are dropped from it only after the commit (keys still used by rows another process
        wrote meanwhile are kept). On failure nothing changes in the database, the keyring
        gets its previous current key back and every document stays readable.
        """
        ring = self.keyring
        old_current = ring.current
        new_id = ring.add_key()
        ring.save()
        try:
            with Session(self.engine) as session, session.begin():
                count = rekey.reencrypt_all(session, ring)
        except BaseException:
            ring.current = old_current
            with Session(self.engine) as session:
                if new_id not in rekey.key_ids_in_use(session):
                    del ring.keys[new_id]
            ring.save()
            raise
        with Session(self.engine) as session:
            in_use = rekey.key_ids_in_use(session)
        kept = tuple(sorted(k for k in in_use if k != new_id))
        dropped = tuple(sorted(k for k in ring.keys if k != new_id and k not in in_use))
        for key_id in dropped:
            del ring.keys[key_id]
        ring.save()
        return Rotation(new_id, count, dropped, kept)


def _first_line(err: Exception) -> str:
    orig = getattr(err, "orig", None)
    text = str(orig if orig is not None else err).strip()
    return text.splitlines()[0] if text else type(err).__name__
