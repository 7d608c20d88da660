"""`python -m bot serve | db upgrade [--runtime-role ROLE] | db grants --runtime-role ROLE |
audit verify [--public-key FILE] [--checkpoint FILE [--init]] | audit public-key |
audit export --reason TEXT --recipient WHO --out FILE [filters] | teams-app --host HOST`.

`python -m bot policy check FILE` checks a policy file before it is deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
from pathlib import Path

from bot import cli_audit, cli_db, logs, manifest, serving
from bot.app import SERVER_OPTIONS, create_app
from bot.config import Settings, SettingsError, load
from bot.policy_actions import required_actions
from core import privileges, schema
from core.audit import checkpoint, protection, signing
from core.audit.chain import Checkpoint, VerifyResult
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
    cli_db.add_db(sub)
    audit_parser = sub.add_parser("audit", help="the audit store")
    audit = audit_parser.add_subparsers(dest="audit_command", required=True)
    verify = audit.add_parser("verify", help="check the hash chain, its signatures and the append-only "
                              "triggers; exit 1 naming the first bad event")  # fmt: skip
    verify.add_argument("--public-key", type=Path, help="PEM file of the public key(s) the chain is signed "
                        "with (default: the configured signing key's)")  # fmt: skip
    verify.add_argument("--checkpoint", type=Path, help="file of chain heads kept outside the database; "
                        "checked, then the current head is appended when the chain is good")  # fmt: skip
    verify.add_argument("--init", action="store_true", help="start the --checkpoint file: without it a "
                        "missing or empty checkpoint file is an error")  # fmt: skip
    audit.add_parser("public-key", help="print the public key of the audit signing key (PEM), to publish")
    cli_audit.add_export(audit)
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
        return cli_db.main(settings, args)
    if command == "audit" and args.audit_command == "export":
        return cli_audit.export(settings, args, lambda: signing_key(settings, create=True).signer)
    if command == "audit":
        return public_key(settings) if args.audit_command == "public-key" else verify(settings, args)
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


LOCAL_SIGNING_KEY = Path("var") / "audit-signing-key.pem"
"""Where local mode keeps the signing key it makes at first start (OPSROOM_AUDIT_SIGNING_KEY_FILE unset)."""


def signing_key(settings: Settings, *, create: bool, log_new: bool = True) -> signing.KeyFile:
    """The audit signing key: the configured file, or in local mode the one made at first start.

    A new key is announced on stderr and (log_new) in the log, which is stdout. Raises
    FileNotFoundError when there is none (and create is false), ValueError when it is no key.
    """
    if settings.audit_signing_key_file:
        return signing.load_or_create(Path(settings.audit_signing_key_file), create=False)
    if settings.production:  # Settings.check refuses this already; never make a key in production
        raise FileNotFoundError("OPSROOM_AUDIT_SIGNING_KEY_FILE is not set")
    key = signing.load_or_create(LOCAL_SIGNING_KEY, create=create)
    if key.created:
        print(f"*** NEW AUDIT SIGNING KEY written to {key.path} (key id {key.signer.key_id}): audit "
              "events are signed with it. Keep it, back it up and publish `python -m bot audit public-key`; "
              "set OPSROOM_AUDIT_SIGNING_KEY_FILE for anything but local development ***",
              file=sys.stderr)  # fmt: skip
        if log_new:
            log.warning("new audit signing key %s written to %s", key.signer.key_id, key.path)
    return key


def public_key(settings: Settings) -> int:
    """Print the signing key's public half (PEM): all anyone needs to verify the chain."""
    try:
        key = signing_key(settings, create=True, log_new=False)  # stdout carries the key alone
    except (OSError, ValueError) as exc:
        print(f"opsroom: audit signing key: {exc}", file=sys.stderr)
        return 2
    print(key.signer.public_pem(), end="")
    return 0


def verify(settings: Settings, args: argparse.Namespace) -> int:
    """Verify the audit chain, its signatures and its protection; 0 when good, 1 naming what is bad.

    Also prints the database rights of the role connected; a role that could change or drop the audit
    tables or run DDL is a WARNING, and fails verify only with OPSROOM_ENV=production (cli_db.report_rights
    says why).
    """
    if args.init and args.checkpoint is None:
        print("opsroom: --init starts a --checkpoint file: give --checkpoint FILE", file=sys.stderr)
        return 2
    try:
        keys = (signing.Keyring.load(args.public_key) if args.public_key
                else signing_key(settings, create=False).signer.keyring())  # fmt: skip
    except FileNotFoundError as exc:
        print(f"opsroom: no public key to check the signatures with ({exc}): give --public-key FILE "
              "(`python -m bot audit public-key` prints it) or set OPSROOM_AUDIT_SIGNING_KEY_FILE",
              file=sys.stderr)  # fmt: skip
        return 2
    except (OSError, ValueError) as exc:
        print(f"opsroom: {exc}", file=sys.stderr)
        return 2
    points: list[Checkpoint] = []
    if args.checkpoint is not None:
        try:
            points = checkpoint.read(args.checkpoint)
        except (OSError, ValueError) as exc:
            print(f"checkpoint file BROKEN: {exc}")
            return 1
        if not points and not args.init:
            state = "empty" if args.checkpoint.exists() else "missing"
            print(f"checkpoint file {args.checkpoint} is {state}: the chain cannot be checked against the "
                  "heads recorded in it (a removed or emptied file would hide a truncated or rewritten "
                  "chain); give --init to start a new one")  # fmt: skip
            return 1
    db = Database(settings.database_url)
    try:
        current, head = schema.current_revision(db), schema.head_revision()
        if current != head:
            print(f"opsroom: database at revision {current}, code expects {head}; "
                  "run `python -m bot db upgrade`", file=sys.stderr)  # fmt: skip
            return 2
        result = parallel_verify(db, points, keys=keys)
        guards = db.transaction(protection.check, readonly=True)
        rights = db.transaction(privileges.rights, readonly=True)
    finally:
        db.close()
    _print_result(result, keys)
    for guard in guards:
        state = "append-only" if guard.ok else "append-only protection MISSING"
        print(f"{state}: {guard.finding}")
    rights_ok = cli_db.report_rights(rights, fail=settings.production)
    if result.ok and args.checkpoint is not None:
        checkpoint.append(args.checkpoint, Checkpoint(result.head_seq, result.head_hash, result.signed_seq))
    return 0 if result.ok and all(g.ok for g in guards) and rights_ok else 1


def _print_result(result: VerifyResult, keys: signing.Keyring) -> None:
    if not result.ok:
        print(f"audit chain BROKEN at seq {result.bad_seq}: {result.reason} "
              f"({result.count} events verified before it)")  # fmt: skip
        return
    print(f"audit chain OK: {result.count} events, head seq {result.head_seq} hash {result.head_hash}")
    began, ids = result.signing_began_after, ", ".join(keys)
    after = f" after seq {began}" if began else ""
    newest = "none signed yet" if result.signed_seq is None else f"newest signed head seq {result.signed_seq}"
    print(f"signatures OK: every event{after} is covered by a valid signature ({newest}; key {ids})")
    if began and result.head_seq:
        before = min(began, result.head_seq)
        print(f"{before} events before signing began (seq <= {began}) are covered by the hash chain only")


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
    try:
        key = signing_key(settings, create=True)
    except (OSError, ValueError) as exc:
        db.close()
        print(f"opsroom: audit signing key: {exc}", file=sys.stderr)
        return 2
    signing.attach(db.engine, key.signer)  # before the first request: every audit append is signed
    app.on_cleanup.append(lambda _app: _close(db))  # after the app's own cleanup: the database closes last
    log.info("opsroom listening on http://%s:%s/api/messages", settings.host, settings.port)
    _collect_less()
    # Not web.run_app: on SIGTERM readiness must fail and the work in flight drain first (bot/serving.py).
    asyncio.run(serving.serve(app, host=settings.host, port=settings.port, drain=settings.shutdown_drain,
                              access_log=None, **SERVER_OPTIONS))  # fmt: skip
    log.info("opsroom stopped")
    return 0


GC_THRESHOLD = (20_000, 50, 100)
"""gc thresholds while serving: a request allocates thousands of objects (a list card's dicts, ORM
rows), so at CPython's 700 the collector ran several times per request; most of what survives one is
gone by the next. Measured at 50 clients: /task list and /room status about 10% less CPU per request."""


def _collect_less() -> None:
    """Freeze what start-up made (modules, models, policies: never garbage) so that full collections no
    longer walk it, and collect the young generation less often (GC_THRESHOLD)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


async def _close(db: Database) -> None:
    db.close()


if __name__ == "__main__":
    sys.exit(main())
