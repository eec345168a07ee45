"""``dfnet.web.settings``: limits checked at construction, the upload budget and byte formatting."""

from __future__ import annotations

import math

import pytest

from dfnet.web.settings import MB, ServerSettings, format_bytes


@pytest.mark.parametrize("field", ["queue_size", "worker_threads", "max_pixels"])
def test_a_zero_limit_is_refused_by_name(field):
    with pytest.raises(ValueError, match=f"{field} must be at least 1, got 0"):
        ServerSettings(**{field: 0})


def test_nan_timeout_is_refused():
    with pytest.raises(ValueError, match="body_timeout_s"):
        ServerSettings(body_timeout_s=math.nan)


def test_upload_budget_is_one_full_body_per_queue_slot():
    assert ServerSettings(queue_size=3, max_upload_bytes=2 * MB).upload_budget_bytes == 6 * MB


@pytest.mark.parametrize(("size", "text"), [(1536, "1.5 KB"), (32 * MB, "32 MB"), (1000, "0.977 KB")])
def test_format_bytes(size, text):
    assert format_bytes(size) == text
