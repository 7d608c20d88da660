"""A turn's replies as plain JSON through the pooled session.

Workaround for botbuilder 4.17 and msrest, kept here: `TurnContext.send_activity` deep-copies the
reply, and the connector client serialises it with msrest's generic model walk and sends it through
msrest's operation and pipeline layers, then deserialises a ResourceResponse: together about a fifth
of a `/help` request's CPU. A reply is a small dict already (`dialogs.context.Reply.activity`, the same
JSON the dedupe claim keeps), so `Replies.send` addresses it exactly as
`TurnContext.apply_conversation_reference` and the adapter would (channelId, serviceUrl, conversation,
from = the bot, recipient = the sender, replyToId = the incoming activity, locale, inputHint) and POSTs
it once to `v3/conversations/{id}/activities/{replyToId}` through the shared aiohttp session, with the
bearer token of the turn's connector client (the one the SDK chose for this service URL), retrying
412/429/5xx as the pooled msrest pipeline does (`bot.outbound_http.RetrySettings`, Retry-After honoured),
and any failed or timed-out connection: more than that pipeline, which sends a POST again only if it
never left, because nothing else would send a lost reply (the turn has answered Teams), and one shown
twice is seen for what it is. The addressing fields are written from the turn's SDK models with their own
attribute maps, so the body is what msrest would have written (tests/bot/test_replies.py compares).

The SDK path is kept where its extra behaviour matters: a turn with `on_send_activities` handlers, a
`expectReplies` delivery (replies are buffered, not posted), and invoke responses (buffered by the
adapter; `Pipeline._send` sends those through the context).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import aiohttp
from botbuilder.core import TurnContext
from botbuilder.schema import Activity, DeliveryModes
from msrest.serialization import Model
from yarl import URL

from bot.outbound import Outbound
from bot.outbound_http import CONNECT_TIMEOUT, REQUEST_TIMEOUT, RetrySettings, parse_retry_after

log = logging.getLogger(__name__)

JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Accept": "application/json"}


class ReplyFailed(Exception):
    """The connector did not take the reply (after the retries)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"HTTP {status}: {detail}" if status else detail)
        self.status = status


def model_json(model: Model | None) -> dict[str, Any] | None:
    """A flat SDK model (ChannelAccount, ConversationAccount) as msrest serialises it: its attribute
    map's keys, None values left out (`ConversationAccount.tenant_id` goes out as `tenantID`, as msrest
    writes it; Teams' own `conversation.tenantId` is not one of its keys and never reaches the model)."""
    if model is None:
        return None
    out: dict[str, Any] = {}
    for name, spec in type(model)._attribute_map.items():
        value = getattr(model, name, None)
        if value is not None:
            out[spec["key"]] = value
    return out


def addressed(body: Mapping[str, Any], incoming: Activity) -> dict[str, Any]:
    """The reply body addressed to the incoming activity, as TurnContext and the adapter address it."""
    out = dict(body)
    out.setdefault("type", "message")
    out["channelId"] = incoming.channel_id
    out["serviceUrl"] = incoming.service_url
    for key, model in (("conversation", incoming.conversation), ("from", incoming.recipient),
                       ("recipient", incoming.from_property)):  # fmt: skip
        value = model_json(model)
        if value is not None:
            out[key] = value
    if incoming.locale:
        out["locale"] = incoming.locale
    if incoming.id and incoming.type != "conversationUpdate":
        out["replyToId"] = incoming.id
    out.setdefault("inputHint", "acceptingInput")
    out.pop("id", None)
    return {key: value for key, value in out.items() if value is not None}


def encode(out: Mapping[str, Any], body: Mapping[str, Any], encoded: str | None) -> bytes:
    """The addressed reply `out` as JSON: the addressing written in front of `encoded` (the JSON of
    `body`) when out is body plus the addressing alone, else out encoded whole."""
    extra = {key: value for key, value in out.items() if key not in body}
    spliced = (encoded is not None and len(encoded) > 2 and encoded[0] == "{" and extra
               and all(key in out and out[key] is value for key, value in body.items()))  # fmt: skip
    if not spliced:
        return json.dumps(out, separators=(",", ":")).encode("utf-8")
    assert encoded is not None
    return (json.dumps(extra, separators=(",", ":"))[:-1] + "," + encoded[1:]).encode("utf-8")


def reply_url(service_url: str, conversation_id: str, reply_to_id: str | None) -> str:
    """Where a reply goes: under the activity it answers, or into the conversation."""
    base = f"{service_url.rstrip('/')}/v3/conversations/{quote(conversation_id, safe='')}/activities"
    return f"{base}/{quote(reply_to_id, safe='')}" if reply_to_id else base


class Replies:
    """Posts a turn's replies (see the module docstring)."""

    def __init__(self, outbound: Outbound, *, timeout: float = REQUEST_TIMEOUT) -> None:
        self._outbound = outbound
        self._timeout = aiohttp.ClientTimeout(total=timeout, connect=min(CONNECT_TIMEOUT, timeout))

    @property
    def retry(self) -> RetrySettings:
        return self._outbound.retry

    async def send(
        self, context: TurnContext, body: Mapping[str, Any], *, encoded: str | None = None
    ) -> None:
        """Send one reply in this turn; raises when it could not be delivered. encoded: the body as JSON
        already (the copy kept with the dedupe claim), so that a large card is not encoded again."""
        client = context.turn_state.get(context.adapter.BOT_CONNECTOR_CLIENT_KEY)
        incoming = context.activity
        if (client is None or context._on_send_activities
                or incoming.delivery_mode == DeliveryModes.expect_replies):  # fmt: skip
            await context.send_activity(Activity().deserialize(dict(body)))
            return
        out = addressed(body, incoming)
        headers = {**JSON_HEADERS, "User-Agent": client.config.user_agent}
        tokens = self._outbound.tokens(client.config.credentials)
        if not tokens.anonymous:
            headers["Authorization"] = f"Bearer {await tokens.token()}"
        url = reply_url(incoming.service_url or "", out["conversation"]["id"], out.get("replyToId"))
        await self._post(url, encode(out, body, encoded), headers)
        context.responded = True

    async def _post(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        settings = self.retry
        options: dict[str, Any] = {"headers": headers, "timeout": self._timeout}
        target = URL(url, encoded=True)  # sent as quoted above (conversation ids carry ';', ':', '@')
        proxy = self._outbound.proxy_for(target)
        if proxy is not None:
            options["proxy"] = proxy
        attempt = 0
        while True:
            last = attempt + 1 >= settings.attempts
            try:
                async with self._outbound.session.post(target, data=data, **options) as response:
                    body = await response.read()
                    status, retry_after = response.status, response.headers.get("Retry-After")
            except (aiohttp.ClientError, TimeoutError) as exc:
                if last:
                    raise ReplyFailed(0, f"no answer from {target.host}: {type(exc).__name__}") from exc
                delay, reason = settings.backoff_delay(attempt), "connection failed"
            else:
                if 200 <= status < 300:
                    return
                if status not in settings.statuses or last:
                    raise ReplyFailed(status, body[:300].decode("utf-8", "replace"))
                wait = parse_retry_after(retry_after)
                if wait is not None and wait > settings.max_retry_after:
                    log.warning("connector asked to wait %.0f s; not retrying", wait)
                    raise ReplyFailed(status, "Retry-After too long")
                delay = settings.backoff_delay(attempt) if wait is None else settings.retry_after_delay(wait)
                reason = f"HTTP {status}"
            log.info("retrying POST %s in %.2f s (%s)", target.origin(), delay, reason)
            await asyncio.sleep(delay)
            attempt += 1
