"""``mindcommons users ...``: accounts, sign-in, API tokens, lockout (governance.users).

Every action but ``login`` and the bootstrap acts as the signed-in user: ``--token``,
else ``$MINDCOMMONS_TOKEN``, else the session ``users login`` saved. Passwords are
prompted (hidden) or, with ``--password-stdin``, read one per line from standard input.
"""

from __future__ import annotations

import sys
from collections import deque
from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.governance import users as gov
from mindcommons.governance.permissions import Principal
from mindcommons.settings import Settings, load_settings

users_app = typer.Typer(
    help="People and sign-in: users with roles, passwords, sessions, API tokens, lockout.",
    no_args_is_help=True,
)
token_app = typer.Typer(help="API tokens of the signed-in user.", no_args_is_help=True)
log_app = typer.Typer(help="The governance audit log (logins, accounts).", no_args_is_help=True)
users_app.add_typer(token_app, name="token")
users_app.add_typer(log_app, name="log")
app.add_typer(users_app, name="users")

TokenOption = Annotated[
    str | None,
    typer.Option("--token", help="Act with this session or API token (default: "
                 "$MINDCOMMONS_TOKEN, then the saved session)."),
]  # fmt: skip
StdinOption = Annotated[
    bool, typer.Option("--password-stdin", help="Read password(s) from stdin, one per line.")
]
SitesOption = Annotated[
    list[str] | None,
    typer.Option("--site", help="Sites this user acts for (repeat; default: every site)."),
]


class _Passwords:
    """Passwords from stdin lines (scripts) or hidden prompts (people)."""

    def __init__(self, from_stdin: bool) -> None:
        self.lines: deque[str] = deque()
        if from_stdin:
            self.lines.extend(line.rstrip("\r\n") for line in sys.stdin.read().splitlines())
        self.from_stdin = from_stdin

    def get(self, prompt: str, *, confirm: bool = False) -> str:
        if self.from_stdin:
            if not self.lines:
                raise typer.BadParameter(f"--password-stdin: no line left for '{prompt}'")
            return self.lines.popleft()
        value: str = typer.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
        return value


def _actor(settings: Settings, token: str | None) -> Principal:
    return gov.current_principal(settings, token)


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="Login name (lower-case).")],
    role: Annotated[
        str,
        typer.Option(
            "--role", help="admin, steward, researcher, clinician, navigator, patient or auditor."
        ),
    ],
    site: SitesOption = None,
    password_stdin: StdinOption = False,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Create a user. With no users yet, this creates the first admin (the bootstrap)."""
    settings = load_settings(home)
    actor = None if gov.user_count(settings) == 0 else _actor(settings, token)
    password = _Passwords(password_stdin).get(f"password for {username}", confirm=True)
    info = gov.create_user(settings, actor, username, role, password, sites=site or [])
    scope = ", ".join(info.sites) or "every site"
    typer.echo(f"created {info.username} ({info.role}; {scope})")


@users_app.command("login")
def login(
    username: str,
    password_stdin: StdinOption = False,
    print_token: Annotated[
        bool, typer.Option("--print-token", help="Print the session token instead of saving it.")
    ] = False,
    home: HomeOption = None,
) -> None:
    """Sign in; the session is saved for later commands (or printed with --print-token)."""
    settings = load_settings(home)
    token = gov.login(settings, username, _Passwords(password_stdin).get("password"))
    if print_token:
        typer.echo(token)
        return
    path = gov.save_session(settings, token)
    typer.echo(f"signed in as {username} (session saved in {path})")


@users_app.command("logout")
def logout(token: TokenOption = None, home: HomeOption = None) -> None:
    """End the session (the saved one, or --token)."""
    settings = load_settings(home)
    path = gov.session_file(settings)
    chosen = token or (path.read_text(encoding="utf-8").strip() if path.exists() else "")
    if not chosen:
        typer.echo("nobody is signed in")
        return
    gov.logout(settings, chosen)
    if not token and path.exists():
        path.unlink()
    typer.echo("signed out")


@users_app.command("whoami")
def whoami(token: TokenOption = None, home: HomeOption = None) -> None:
    """Show the signed-in user and role."""
    actor = _actor(load_settings(home), token)
    typer.echo(f"{actor.username} ({actor.role.value}; {', '.join(actor.sites) or 'every site'})")


@users_app.command("passwd")
def passwd(
    username: Annotated[str | None, typer.Argument(help="Another user (admins only).")] = None,
    password_stdin: StdinOption = False,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Change your password (current one first), or as an admin another user's."""
    settings = load_settings(home)
    actor = _actor(settings, token)
    pw = _Passwords(password_stdin)
    own = username in (None, actor.username)
    old = pw.get("current password") if own else None
    new = pw.get("new password", confirm=True)
    gov.change_password(settings, actor, new, old_password=old, username=username)
    typer.echo(f"password changed for {username or actor.username}; their sessions ended")


@users_app.command("list")
def list_(token: TokenOption = None, home: HomeOption = None) -> None:
    """Every user with role, sites and lock state (admins, auditors)."""
    settings = load_settings(home)
    for u in gov.list_users(settings, _actor(settings, token)):
        state = "LOCKED" if u.locked else "active"
        sites = ",".join(u.sites) or "*"
        typer.echo(f"{u.username:<24} {u.role:<11} {sites:<20} {state} "
                   f"(failed logins {u.failed_logins})")  # fmt: skip


@users_app.command("role")
def role(
    username: str,
    new_role: Annotated[str, typer.Argument(help="The new role.")],
    site: SitesOption = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Change a user's role (and, with --site, the sites they act for)."""
    settings = load_settings(home)
    info = gov.set_role(settings, _actor(settings, token), username, new_role, sites=site)
    typer.echo(f"{info.username} is now {info.role} ({', '.join(info.sites) or 'every site'})")


@users_app.command("lock")
def lock(username: str, token: TokenOption = None, home: HomeOption = None) -> None:
    """Lock an account until unlocked; its sessions and tokens stop working."""
    settings = load_settings(home)
    gov.lock_user(settings, _actor(settings, token), username)
    typer.echo(f"locked {username}")


@users_app.command("unlock")
def unlock(username: str, token: TokenOption = None, home: HomeOption = None) -> None:
    """Unlock an account and reset its failed-login count."""
    settings = load_settings(home)
    gov.unlock_user(settings, _actor(settings, token), username)
    typer.echo(f"unlocked {username}")


@token_app.command("create")
def token_create(
    name: Annotated[str, typer.Option("--name", help="A label for the token.")] = "api",
    days: Annotated[int | None, typer.Option("--days", help="Lifetime in days.")] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Create an API token for yourself; it is printed once (only its hash is kept)."""
    settings = load_settings(home)
    typer.echo(gov.create_token(settings, _actor(settings, token), name, days))


@token_app.command("list")
def token_list(
    user: Annotated[str | None, typer.Option("--user", help="Another user (admins).")] = None,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Your sessions and API tokens (never the secrets)."""
    settings = load_settings(home)
    for t in gov.list_tokens(settings, _actor(settings, token), user):
        state = "active" if t.active else "ended"
        typer.echo(f"{t.id:>5} {t.kind:<8} {t.name:<16} expires {t.expires_at} {state}")


@token_app.command("revoke")
def token_revoke(token_id: int, token: TokenOption = None, home: HomeOption = None) -> None:
    """Revoke one of your tokens or sessions (admins: anyone's)."""
    settings = load_settings(home)
    gov.revoke_token(settings, _actor(settings, token), token_id)
    typer.echo(f"revoked token {token_id}")


@log_app.command("verify")
def log_verify(token: TokenOption = None, home: HomeOption = None) -> None:
    """Check the governance log's hash chain (admins, auditors); exit 1 on any problem."""
    settings = load_settings(home)
    result = gov.governance_log(settings, _actor(settings, token)).verify()
    if result.ok:
        typer.echo(f"governance log: intact ({result.checked} entries)")
        return
    for problem in result.problems:
        typer.echo(f"  - {problem}", err=True)
    raise typer.Exit(code=1)


@log_app.command("show")
def log_show(
    last: Annotated[int, typer.Option("--last", min=0, help="Only the last N (0: all).")] = 20,
    token: TokenOption = None,
    home: HomeOption = None,
) -> None:
    """Print the latest governance events (logins, failures, lockouts, account changes)."""
    import json

    settings = load_settings(home)
    log = gov.governance_log(settings, _actor(settings, token))
    for e in deque(log.entries(), maxlen=last or None):
        details = json.dumps(e.details, ensure_ascii=False, sort_keys=True)
        typer.echo(f"{e.seq:>6}  {e.time}  {e.actor}  {e.kind}  {e.subject}  {details}")
