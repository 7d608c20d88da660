"""`python -m bot serve | db upgrade | audit verify [--checkpoint FILE] | teams-app --host HOST`.

`python -m bot policy check FILE` checks a policy file before it is deployed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from aiohttp import web

from bot import logs, manifest
from bot.app import SERVER_OPTIONS, create_app
from bot.config import Settings, SettingsError, load
from bot.policy_actions import required_actions
from core import schema
from core.audit import checkpoint
from core.audit.chain import Checkpoint
from core.audit.verify import verify as parallel_verify
from core.db import Database
from core.rooms.templates import TemplateError
from dialogs.commands import build_router
from policies import Policy, PolicyError

log = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Opsroom Teams bot")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="start the bot (the default)")
    db = sub.add_parser("db", help="database schema").add_subparsers(dest="db_command", required=True)
    db.add_parser("upgrade", help="apply migrations up to head")
    audit_parser = sub.add_parser("audit", help="the audit store")
    audit = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check the hash chain; exit 1 naming the first bad event")
    verify.add_argument("--checkpoint", type=Path, help="file of chain heads kept outside the database; "
                        "checked, then the current head is appended when the chain is good")  # fmt: skip
    app = sub.add_parser("teams-app", help="build the Teams app package (manifest.json and icons, zipped)")
    app.add_argument("--host", required=True, help="the bot's public host name (its messaging endpoint's)")
    app.add_argument("--out", type=Path, default=Path("var/opsroom-teams-app.zip"), help="the zip to write")
    app.add_argument("--developer", default="Opsroom", help="publisher name shown in Teams (the force)")
    app.add_argument("--website", default="", help="https URL of the publisher (default: https://HOST/)")
    app.add_argument("--privacy", default="", help="https URL of the privacy notice (default: the website)")
    app.add_argument("--terms", default="", help="https URL of the terms of use (default: the website)")
    policy_parser = sub.add_parser("policy", help="the Cedar policy")
    policy = policy_parser.add_subparsers(dest="policy_command", required=True)
    check = policy.add_parser("check", help="check a policy file against the schema and the bot's actions")
    check.add_argument("file", type=Path, help="the .cedar file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = _parser().parse_args(argv)
    if args.command == "policy":
        return policy_check(args.file)
    try:
        settings = load()
    except SettingsError as exc:
        print(f"opsroom: {exc}", file=sys.stderr)
        return 2
    logs.configure(settings.log_level)
    command = args.command or "serve"
    if command == "db":
        return upgrade(settings)
    if command == "audit":
        return verify(settings, args.checkpoint)
    if command == "teams-app":
        return teams_app(settings, args)
    return serve(settings)


def teams_app(settings: Settings, args: argparse.Namespace) -> int:
    """Write the Teams app package for this bot's app id."""
    if settings.local_mode:
        needs = "set MicrosoftAppId first (the bot's Entra app id): the package names it"
        print(f"opsroom: {needs}", file=sys.stderr)
        return 2
    details = manifest.AppDetails(app_id=settings.app_id, host=args.host, developer=args.developer,
                                  website=args.website, privacy=args.privacy, terms=args.terms)  # fmt: skip
    try:
        data = manifest.package(details, build_router().commands())
    except manifest.ManifestError as exc:
        print(f"opsroom: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    print(f"wrote {args.out}: upload it in Teams (Apps > Manage your apps > Upload an app)")
    return 0


def policy_check(file: Path) -> int:
    """Check a policy file as the bot would load it; 0 when usable, 1 with the file and line when not."""
    try:
        policy = Policy.load(file)
        policy.check_actions(required_actions())
    except PolicyError as exc:
        print(f"policy BROKEN: {exc}")
        return 1
    print(f"policy OK: {len(policy)} policies")
    return 0


def upgrade(settings: Settings) -> int:
    """Apply migrations."""
    db = Database(settings.database_url)
    try:
        schema.upgrade(db)
        print(f"database at revision {schema.current_revision(db)} ({db!r})")
    finally:
        db.close()
    return 0


def verify(settings: Settings, checkpoint_file: Path | None) -> int:
    """Verify the audit chain; 0 when good, 1 naming the first bad sequence number."""
    db = Database(settings.database_url)
    try:
        points = checkpoint.read(checkpoint_file) if checkpoint_file else []
        result = parallel_verify(db, points)
    finally:
        db.close()
    if not result.ok:
        print(f"audit chain BROKEN at seq {result.bad_seq}: {result.reason} "
              f"({result.count} events verified before it)")  # fmt: skip
        return 1
    if checkpoint_file is not None:
        checkpoint.append(checkpoint_file, Checkpoint(result.head_seq, result.head_hash))
    print(f"audit chain OK: {result.count} events, head seq {result.head_seq} hash {result.head_hash}")
    return 0


def serve(settings: Settings) -> int:
    """Run the web server until interrupted."""
    db = Database(settings.database_url)
    current, head = schema.current_revision(db), schema.head_revision()
    if current != head:
        db.close()
        print(f"opsroom: database at revision {current}, code expects {head}; "
              "run `python -m bot db upgrade` (or `make run`)", file=sys.stderr)  # fmt: skip
        return 2
    if settings.local_mode:
        print("*** LOCAL MODE: no MicrosoftAppId, inbound requests are NOT authenticated ***",
              file=sys.stderr)  # fmt: skip
    try:
        app = create_app(settings, db=db)
    except TemplateError as exc:
        db.close()
        print(f"opsroom: bad room template: {exc}", file=sys.stderr)
        return 2
    except PolicyError as exc:
        db.close()
        print(f"opsroom: bad policy: {exc}", file=sys.stderr)
        return 2
    app.on_cleanup.append(lambda _app: _close(db))
    log.info("opsroom listening on http://%s:%s/api/messages", settings.host, settings.port)
    web.run_app(app, host=settings.host, port=settings.port, print=None, access_log=None, **SERVER_OPTIONS)
    return 0


async def _close(db: Database) -> None:
    db.close()


if __name__ == "__main__":
    sys.exit(main())
