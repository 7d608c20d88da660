"""Policy files the engine must refuse (naming file and line), and decisions it must fail closed on."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from policies import Decision, Policy, PolicyError, Principal, PrincipalKind, Resource, RoomRole

ROOT = Path(__file__).resolve().parents[2]
OFFICER = Principal("o1", "home", PrincipalKind.OFFICER)
GUEST = Principal("g1", "other", PrincipalKind.GUEST, agency="social-care")

HELP = """\
@id("help-anyone")
@reason("anyone may ask for help")
permit (principal, action == Opsroom::Action::"help", resource);
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "broken.cedar"
    path.write_text(text)
    return path


def refused(tmp_path: Path, text: str) -> PolicyError:
    path = write(tmp_path, text)
    with pytest.raises(PolicyError) as caught:
        Policy.load(path)
    assert str(caught.value).startswith(f"{path}:"), caught.value
    return caught.value


def test_a_syntax_error_names_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '\n@id("b")\n@reason("r")\npermit (principal, action, resource)\n'
                              "when { context.room_closed && };\n")  # fmt: skip
    assert error.line == 8 and str(error).endswith(":8: unexpected token `}`")


def test_semicolons_in_strings_and_comments_do_not_end_a_policy(tmp_path: Path) -> None:
    error = refused(tmp_path, '@id("a;b") // ; a comment\n@reason("x ; y")\npermit (principal, action, resource)\n'
                              'when { context.room_key == "a;b" && };\n')  # fmt: skip
    assert error.line == 4


def test_a_policy_cut_short_names_its_last_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '\n@id("b")\n@reason("r")\nforbid (principal, action, resource)\n\n')
    assert error.line == 7 and "unexpected end of input" in str(error)


def test_an_unknown_function_names_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '@id("b")\n@reason("r")\nforbid (principal, action, resource)\n'
                              "when {\n  frobnicate(1)\n};\n")  # fmt: skip
    assert error.line == 8 and "frobnicate" in str(error)


def test_an_unknown_context_attribute_names_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '\n@id("b")\n@reason("r")\nforbid (principal, action, resource)\n'
                              "when {\n  context.room_closed &&\n  context.nonexistent\n};\n")  # fmt: skip
    assert error.line == 10
    assert '@id("b")' in str(error) and "nonexistent" in str(error)


def test_an_unknown_principal_attribute_names_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '@id("b")\n@reason("r")\nforbid (principal, action, resource)\n'
                              'when { principal.rank == "inspector" };\n')  # fmt: skip
    assert error.line == 7 and "rank" in str(error)


def test_a_type_error_names_the_policy_and_its_line(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '@id("b")\n@reason("r")\nforbid (principal, action, resource)\n'
                              'when { context.room_closed == "yes" };\n')  # fmt: skip
    assert error.line == 4 and '@id("b")' in str(error)


def test_an_undeclared_action_in_a_policy_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '@id("b")\n@reason("r")\npermit (\n  principal,\n'
                              '  action == Opsroom::Action::"room.destroy",\n  resource\n);\n')  # fmt: skip
    assert error.line == 8 and "room.destroy" in str(error)


def test_a_policy_without_id_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '\n@reason("r")\nforbid (principal, action, resource);\n')
    assert error.line == 5 and "without @id" in str(error)


def test_a_policy_without_reason_is_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + '@id("b")\nforbid (principal, action, resource);\n')
    assert error.line == 4 and "@reason" in str(error)


def test_duplicate_ids_are_refused(tmp_path: Path) -> None:
    error = refused(tmp_path, HELP + "\n" + HELP)
    assert error.line == 5 and 'duplicate @id("help-anyone"), first used on line 1' in str(error)


def test_a_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read the policy"):
        Policy.load(tmp_path / "absent.cedar")


def test_actions_no_policy_names_are_refused(tmp_path: Path) -> None:
    everyone = '@id("no-anonymous")\n@reason("who?")\nforbid (principal, action, resource)\nwhen { principal.kind == "anonymous" };\n'
    events = '@id("events")\n@reason("events")\npermit (principal, action in Opsroom::Action::"event", resource);\n'
    policy = Policy(HELP + everyone + events, source_name="p.cedar")
    policy.check_actions(["help", "event.installed", "event.uninstalled"])
    with pytest.raises(PolicyError, match=re.escape('p.cedar: no policy mentions the action "room.reopen"')):
        policy.check_actions(["help", "room.reopen"])
    with pytest.raises(PolicyError, match=re.escape('action "room.destroy" is not declared in the schema')):
        policy.check_actions(["room.destroy"])
    with pytest.raises(PolicyError, match='"event" is a group'):
        policy.check_actions(["event"])


def test_the_shipped_policy_speaks_about_every_action_of_the_schema() -> None:
    policy = Policy.load()
    policy.check_actions(policy.actions)
    assert "room.see" in policy.actions and "event.installation_update" in policy.actions


# -- deciding ------------------------------------------------------------------------------

OVERFLOW = """\
@id("overflowing-forbid")
@reason("never shown")
forbid (principal, action == Opsroom::Action::"help", resource)
when { context.room_closed && 9223372036854775807 + 1 > 0 };
"""


def test_an_erroring_forbid_denies_instead_of_failing_open() -> None:
    # Passes strict validation; overflows only when evaluated. Cedar alone would skip it and allow.
    policy = Policy(HELP + OVERFLOW)
    assert policy.decide(OFFICER, "help", Resource()).allowed
    decision = policy.decide(OFFICER, "help", Resource(room_closed=True))
    assert decision == Decision(False, "evaluation-error", "the policy could not be evaluated")
    assert policy.decide_many(OFFICER, [("help", Resource(room_closed=True)), ("help", Resource())]) == [
        decision, Decision(True, "help-anyone", "anyone may ask for help")]  # fmt: skip


def test_an_erroring_permit_denies_even_when_another_permit_allows() -> None:
    broken = OVERFLOW.replace("forbid", "permit").replace("overflowing-forbid", "overflowing-permit")
    decision = Policy(HELP + broken).decide(OFFICER, "help", Resource(room_closed=True))
    assert decision.rule == "evaluation-error" and not decision.allowed


def test_a_type_error_at_evaluation_denies_when_validation_is_off() -> None:
    untyped = ('@id("untyped")\n@reason("never shown")\nforbid (principal, action, resource)\n'
               'when { context.room_key like "*" && principal.agency.foo };\n')  # fmt: skip
    with pytest.raises(PolicyError, match="untyped"):
        Policy(HELP + untyped)
    policy = Policy(HELP + untyped, validate=False)
    assert policy.decide(OFFICER, "help", Resource()).rule == "evaluation-error"


def test_a_forbid_beats_a_permit_wherever_it_stands() -> None:
    forbid = '@id("closed")\n@reason("closed")\nforbid (principal, action, resource) when { context.room_closed };\n'
    for text in (HELP + forbid, forbid + HELP):
        policy = Policy(text)
        assert policy.decide(OFFICER, "help", Resource(room_closed=True)) == Decision(
            False, "closed", "closed"
        )
        assert policy.decide(OFFICER, "help", Resource()).rule == "help-anyone"


def test_the_first_permit_in_the_file_decides() -> None:
    second = '@id("officers-too")\n@reason("officers")\npermit (principal, action, resource)\nwhen { principal.kind == "officer" };\n'
    assert Policy(HELP + second).decide(OFFICER, "help").rule == "help-anyone"
    assert Policy(second + HELP).decide(OFFICER, "help").rule == "officers-too"


def test_nothing_permitted_is_denied_by_default() -> None:
    assert Policy(HELP).decide(OFFICER, "room.open") == Decision(False, "default-deny", "no rule allows this")


def test_the_principals_agency_reaches_the_policy_and_is_not_mixed_up() -> None:
    health = ('@id("health-only")\n@reason("health")\npermit (principal, action == Opsroom::Action::"task.list", '
              'resource)\nwhen { principal.agency == "health" && context.role == "guest_viewer" };\n')  # fmt: skip
    policy = Policy(HELP + health)
    viewer = Resource(role=RoomRole.GUEST_VIEWER)
    for _ in range(2):  # the second round comes from the per-principal cache
        assert policy.decide(
            Principal("h", "t", PrincipalKind.GUEST, agency="health"), "task.list", viewer
        ).allowed
        assert not policy.decide(GUEST, "task.list", viewer).allowed


def test_policies_import_neither_the_bot_nor_its_frameworks() -> None:
    forbidden = {"bot", "dialogs", "botbuilder", "botframework", "aiohttp"}
    files = sorted((ROOT / "policies").glob("*.py"))
    assert ROOT / "policies" / "engine.py" in files
    for path in files:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])  # fmt: skip
            assert not {n.split(".")[0] for n in names} & forbidden, (path, names)
