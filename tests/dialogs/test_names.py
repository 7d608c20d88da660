"""Whose names a reply may show: the policy's answer (member.see), and what cards make of it."""

from __future__ import annotations

from dialogs.names import Names, Who, nameable
from policies import Principal, PrincipalKind, Resource, RoomRole, default_policy

WHO = {
    "lead": Who("lead", None, "PC Ada Officer"),
    "ben": Who("member", None, "PC Ben Officer"),
    "cara": Who("guest_viewer", "socialcare", "Cara Colleague"),
    "hana": Who("guest_contributor", "health", "Hana Health"),
    "sam": Who("guest_viewer", "socialcare", "Sam Guest"),
    "outsider": Who(None, None, "Someone Else"),
}
SAM = Principal("sam", "home", PrincipalKind.GUEST, agency="socialcare")
ADA = Principal("lead", "home", PrincipalKind.OFFICER)
IN_ROOM = Resource(room_key="OP-X", role=RoomRole.GUEST_VIEWER)


def test_a_guest_may_name_the_lead_their_own_agency_and_themselves() -> None:
    names = nameable(default_policy().decide_many, SAM, IN_ROOM, WHO)
    assert names.allowed == {"lead", "cara", "sam"}


def test_an_officer_may_name_everyone_and_someone_gone_may_name_no_one() -> None:
    assert nameable(default_policy().decide_many, ADA, Resource(role=RoomRole.LEAD), WHO).allowed == set(WHO)
    gone = Resource(room_key="OP-X", role=RoomRole.GUEST_VIEWER, access_revoked=True)
    assert nameable(default_policy().decide_many, SAM, gone, WHO).allowed == set()


def test_what_a_card_shows_of_a_person() -> None:
    names = Names(frozenset({"lead", "sam"}), WHO)
    assert names.person("lead", "PC Ada Officer") == "PC Ada Officer"
    assert names.person("ben", "PC Ben Officer", hidden="assigned") == "assigned"
    assert names.person(None, "PC Ben Officer") == "someone"
    assert names.label("PC Ada Officer") and names.label("agency health") and names.label("nobody")
    assert not names.label("PC Ben Officer") and not names.label(None)
    both = names & Names(frozenset({"sam", "ben"}), WHO)
    assert both.allowed == {"sam"} and both.label("Sam Guest") and not both.label("PC Ada Officer")
