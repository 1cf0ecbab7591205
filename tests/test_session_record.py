"""The packed session record: whatever a session holds comes back exactly."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quartapp.sessions.store import VERSION, SessionRecord, encode_body

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
addresses = st.sampled_from([""]) | st.ip_addresses().map(str)
times = st.integers(min_value=0, max_value=2**48 - 2**41)


@st.composite
def records(draw: Any) -> SessionRecord:
    created = draw(times)
    return SessionRecord(
        key_id="k" * 22,
        tag="t" * 6,
        user_id=draw(st.integers(min_value=1, max_value=2**64 - 1)),
        # Up to 254 characters of any script: more than 255 bytes needs the long length.
        email=draw(st.text(min_size=1, max_size=254)),
        created_at=created,
        absolute_deadline=created + draw(st.integers(min_value=1, max_value=2**40 - 1)),
        expires_at=0,
        read_at=0,
        data=draw(st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
        last_active=created + 1000 * draw(st.integers(min_value=0, max_value=2**32 - 1)),
        ip=draw(addresses),
        device=draw(st.text(max_size=60)),
    )


@given(records())
def test_a_record_comes_back_exactly(record: SessionRecord) -> None:
    value = record.to_redis()
    assert value[0] == VERSION
    back = SessionRecord.from_redis(record.key_id, record.tag, value, 0, 0)
    assert back == record
    assert back.ip == (str(ipaddress.ip_address(record.ip)) if record.ip else "")


@given(st.text(max_size=400))
def test_a_long_device_name_is_cut_on_a_character_boundary(device: str) -> None:
    body = encode_body(1, "a@example.com", "", device, None)
    head = bytes([VERSION]) + bytes(15)
    back = SessionRecord.from_redis("k", "t", head + body, 0, 0)
    assert device.startswith(back.device)
    assert len(back.device.encode()) <= 200


@pytest.mark.parametrize(
    "value",
    [b"", b"\x01", b"\x02" + bytes(30), b'{"c":1,"a":2}', bytes([VERSION]) + bytes(20)],
)
def test_a_damaged_or_foreign_record_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError: load() treats it as gone
        SessionRecord.from_redis("k", "t", value, 0, 0)
