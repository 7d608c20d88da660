"""bot.activity_json against msrest on generated Teams-shaped activities: well-typed ones take the fast
path, odd ones get msrest's result or its error (the comparison is tests/bot/activity_support.py)."""

from __future__ import annotations

from typing import Any

from botbuilder.schema import (
    Activity,
    Attachment,
    CardAction,
    ChannelAccount,
    ConversationAccount,
    ConversationReference,
    Entity,
    MessageReaction,
    SemanticAction,
    SuggestedActions,
    TextHighlight,
)
from hypothesis import event, given, settings
from hypothesis import strategies as st
from msrest.serialization import Model

from bot.activity_json import fast_activity
from tests.bot.activity_support import check

# --- generated Teams-shaped activities ------------------------------------------------------------------

JSON_SCALAR = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
)
JSON = st.recursive(
    JSON_SCALAR,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
JSON_OBJECT = st.dictionaries(st.text(max_size=12), JSON, max_size=5)
TEXT = st.text(max_size=40)  # any Unicode but lone surrogates, which intake refuses
IDS = st.one_of(st.uuids().map(str), st.from_regex(r"(29|28|19|a|f):[0-9A-Za-z@.;=_-]{0,30}", fullmatch=True))
DIGITS = st.text(alphabet="0123456789", min_size=1, max_size=9)


def _zones(hours: int, minutes: int, form: str) -> st.SearchStrategy[str]:
    return st.builds(form.format, st.sampled_from("+-"), st.integers(0, hours), st.integers(0, minutes))


TEAMS_ZONES = st.one_of(st.just("Z"), st.just(""), _zones(23, 59, "{}{:02d}:{:02d}"))
ODD_ZONES = st.one_of(
    _zones(30, 99, "{}{:02d}{:02d}"),  # +hhmm
    _zones(30, 99, "{}{:02d}:{:02d}"),  # past 23:59
    _zones(30, 0, "{}{:02d}"),  # +hh
    st.sampled_from(["z", "+", "Z+01:00", " Z", "Z\n", "+\u0660\u0661:\u0660\u0660"]),
)
ODD_EDITS = st.sampled_from(
    [
        str.lower,
        lambda s: s.replace(".", ","),
        lambda s: s.replace("T", " "),
        lambda s: s.replace(":", "", 1),
        lambda s: s[:-1],
        lambda s: "\u0662" + s[1:],  # a digit to regex \d, not to isodate
    ]
)


@st.composite
def timestamps(draw: st.DrawFn, odd: bool) -> str:
    """ISO 8601 as Teams writes it: fractions of 0-9 digits, Z or ±hh:mm or no zone; odd adds the rest."""
    m = draw(st.datetimes())
    text = f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}"
    if draw(st.booleans()):
        text += "." + draw(DIGITS)
    text += draw(st.one_of(TEAMS_ZONES, ODD_ZONES) if odd else TEAMS_ZONES)
    if odd and draw(st.booleans()):
        text = draw(ODD_EDITS)(text)
    return text


def shapes(odd: bool) -> st.SearchStrategy[dict[str, Any]]:
    """Teams-shaped activities; odd also puts wrong-typed values in any field (msrest coerces or refuses)."""

    def v(good: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(good, JSON) if odd else good

    def obj(
        model: type[Model], required: dict[str, Any], **optional: Any
    ) -> st.SearchStrategy[dict[str, Any]]:
        # Unknown keys too (msrest keeps them in additional_properties), some in the wrong case; when
        # not odd, none of the model's own keys (a random value there would be an odd one).
        known = st.fixed_dictionaries(
            {k: v(s) for k, s in required.items()}, optional={k: v(s) for k, s in optional.items()}
        )
        keys = st.text(max_size=10) | st.sampled_from(["ID", "Id", "tenantID", "TenantId", "Type", "From"])
        if not odd:
            declared = {desc["key"] for desc in model._attribute_map.values()}
            keys = keys.filter(lambda key: key not in declared)
        return st.builds(
            lambda extra, data: {**extra, **data}, st.dictionaries(keys, JSON, max_size=3), known
        )

    def listed(item: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return v(st.lists(item | st.none() if odd else item, max_size=3))

    stamp = timestamps(odd)
    role = st.sampled_from(["user", "bot"])
    account = obj(ChannelAccount, {}, id=IDS, name=TEXT, aadObjectId=IDS, role=role, properties=JSON_OBJECT,
                  userRole=st.sampled_from(["user", "guest"]))  # fmt: skip
    kinds = st.sampled_from(["channel", "personal", "groupChat"])
    conversation = obj(ConversationAccount, {"id": IDS}, isGroup=st.booleans(), conversationType=kinds,
                       tenantId=IDS, tenantID=IDS, name=TEXT, aadObjectId=IDS, role=TEXT,
                       properties=JSON)  # fmt: skip
    entity = st.one_of(
        obj(Entity, {"type": st.just("mention"), "mentioned": account, "text": TEXT}),
        obj(Entity, {"type": st.just("clientInfo")}, locale=TEXT, country=TEXT, timezone=TEXT),
        obj(Entity, {}, type=TEXT),
    )
    content_types = st.sampled_from(["text/html", "application/vnd.microsoft.card.adaptive"])
    attachment = obj(Attachment, {}, contentType=content_types, content=JSON, contentUrl=TEXT, name=TEXT,
                     thumbnailUrl=TEXT)  # fmt: skip
    buttons = st.sampled_from(["imBack", "messageBack"])
    card_action = obj(CardAction, {"type": buttons}, title=TEXT, value=JSON, text=TEXT, displayText=TEXT,
                      image=TEXT, channelData=JSON, imageAltText=TEXT)  # fmt: skip
    reference = obj(ConversationReference, {}, activityId=TEXT, user=account, bot=account,
                    conversation=conversation, channelId=TEXT, locale=TEXT, serviceUrl=TEXT)  # fmt: skip
    states = st.sampled_from(["start", "continue", "done"])
    # A {dict} of entities is a type the fast path leaves to msrest: only among the odd.
    entities = {"entities": st.dictionaries(TEXT, entity, max_size=2)} if odd else {}
    semantic = obj(SemanticAction, {}, id=TEXT, state=states, **entities)
    reaction = obj(MessageReaction, {"type": TEXT})
    highlight = obj(TextHighlight, {"text": TEXT}, occurrence=st.integers())
    types = st.sampled_from(["message", "conversationUpdate", "invoke", "messageReaction", "event"])
    return obj(
        Activity, {"type": types, "conversation": conversation},
        id=IDS, timestamp=stamp, localTimestamp=stamp, localTimezone=TEXT, serviceUrl=TEXT,
        channelId=st.just("msteams"), **{"from": account}, recipient=account,
        textFormat=st.sampled_from(["plain", "markdown", "xml"]), attachmentLayout=TEXT,
        membersAdded=listed(account), membersRemoved=listed(account),
        reactionsAdded=listed(reaction), reactionsRemoved=listed(reaction),
        topicName=TEXT, historyDisclosed=st.booleans(), locale=TEXT, text=TEXT, speak=TEXT,
        inputHint=TEXT, summary=TEXT,
        suggestedActions=obj(SuggestedActions, {}, to=listed(TEXT), actions=listed(card_action)),
        attachments=listed(attachment), entities=listed(entity), channelData=JSON_OBJECT,
        action=TEXT, replyToId=IDS, label=TEXT, valueType=TEXT, value=JSON, name=TEXT,
        relatesTo=reference, code=TEXT, expiration=stamp, importance=TEXT, deliveryMode=TEXT,
        listenFor=listed(TEXT), textHighlights=listed(highlight),
        semanticAction=semantic, callerId=TEXT,
    )  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(shapes(odd=False))
def test_generated_teams_activities_take_the_fast_path(data: dict[str, Any]) -> None:
    stamps = [data.get(k) for k in ("timestamp", "localTimestamp", "expiration")]
    # Years 1 and 9999 go to msrest (whose UTC-year check may refuse them); the rest is fast.
    check(data, fast=not any(s and s[:4] in ("0001", "9999") for s in stamps))


@settings(max_examples=300, deadline=None)
@given(shapes(odd=True))
def test_generated_odd_activities_match_msrest(data: dict[str, Any]) -> None:
    event("fast path" if fast_activity(data) is not None else "msrest's path")
    event("msrest refused" if check(data) is None else "an activity")
