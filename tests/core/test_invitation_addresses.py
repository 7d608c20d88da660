"""Reading a person's email addresses back from what Entra or Teams gives (core.invitations.service)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.invitations.service import addresses


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (("Nia@NHS.net", None), ("nia@nhs.net",)),
        (("nia_nhs.net#EXT#@force.onmicrosoft.com",), ("nia@nhs.net",)),
        (("first_last_leeds.gov.uk#EXT#@force.onmicrosoft.com",), ("first_last@leeds.gov.uk",)),
        (("nia@nhs.net", "nia_nhs.net#EXT#@force.onmicrosoft.com"), ("nia@nhs.net",)),
        (("", None, "not an address"), ()),
        (("nhs.net#EXT#@force.onmicrosoft.com",), ()),  # no local part to read back
    ],
)
def test_addresses_read_ext_upns_back_and_drop_what_is_not_an_address(
    values: tuple[str | None, ...], expected: tuple[str, ...]
) -> None:
    assert addresses(*values) == expected


@given(local=st.from_regex(r"[a-z][a-z0-9._]{0,20}", fullmatch=True),
       domain=st.from_regex(r"[a-z]{2,10}\.(net|org|gov\.uk)", fullmatch=True))  # fmt: skip
def test_an_invited_address_survives_its_ext_upn(local: str, domain: str) -> None:
    upn = f"{local}_{domain}#EXT#@force.onmicrosoft.com"
    assert addresses(upn) == (f"{local}@{domain}",)
