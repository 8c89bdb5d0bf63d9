"""``mindcommons deid [--json] FILE|-``: print a document with its identifiers replaced."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from mindcommons.cli.app import HomeOption, app
from mindcommons.deid import deidentify
from mindcommons.deid.secret import load_secret
from mindcommons.errors import InputError
from mindcommons.settings import load_settings


@app.command("deid")
def deid(
    file: Annotated[str, typer.Argument(help="A UTF-8 text file, or - for standard input.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print {text, spans} with offsets into the input.")
    ] = False,
    language: Annotated[str, typer.Option("--language", help="en, es or pt.")] = "en",
    redact: Annotated[bool, typer.Option("--redact", help="Replace with [TYPE].")] = False,
    sensitivity: Annotated[
        str,
        typer.Option(
            "--sensitivity",
            help="high (default: every candidate, recall first) or balanced (drops the "
            "weakest candidates; see docs/deid.md).",
        ),
    ] = "high",
    patient: Annotated[
        str, typer.Option("--patient", help="Patient key: surrogates are consistent per key.")
    ] = "",
    secret_file: Annotated[
        Path | None, typer.Option("--secret-file", help="File holding the site secret.")
    ] = None,
    home: HomeOption = None,
) -> None:
    """De-identify one document (surrogates by default; --redact for [TYPE])."""
    if file == "-":
        text = sys.stdin.read()
    else:
        path = Path(file)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(str(err), file=file, expected="a readable UTF-8 text file") from err
    secret = b"" if redact else load_secret(load_settings(home).resolved_home(), secret_file)
    result = deidentify(
        text, language=language, patient_key=patient, secret=secret,
        mode="redact" if redact else "pseudonymise",
        sensitivity=sensitivity,  # type: ignore[arg-type]  # checked by detect()
    )  # fmt: skip
    if as_json:
        spans = [s.to_json() for s in result.spans]
        typer.echo(json.dumps({"text": result.text, "spans": spans}, ensure_ascii=False))
    else:
        typer.echo(result.text, nl=False)
