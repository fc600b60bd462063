"""One contained run's plumbing: the log capture that keeps head and tail in bounded memory."""

from __future__ import annotations

from grader.sandbox import LogCapture


def test_log_capture_keeps_head_and_tail_in_bounded_memory():
    capture = LogCapture(head_bytes=10, tail_bytes=20)
    capture.feed(b"HEAD-12345")
    for _ in range(10_000):
        capture.feed(b"middle-middle-")
    capture.feed(b"...THE-END")
    text = capture.text()
    assert text.startswith("HEAD-12345") and text.endswith("THE-END")
    assert "bytes of output skipped" in text
    assert len(text) < 200 and capture.tail_size < 100
