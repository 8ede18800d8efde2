"""Uploads decoded in a worker process: the same pixels and messages, and the limits on time, memory and how many
decode at once (vae_core.upload_worker)."""

from __future__ import annotations

import io
import resource
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vae_core import upload_worker
from vae_core.imaging import ImageError, load_rgba
from vae_core.upload_worker import decode_upload

pytestmark = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="workers need Linux (/proc, RLIMIT_AS)")


def _encoded(pixels: np.ndarray, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, fmt, **options)
    return buf.getvalue()


@pytest.fixture(scope="module")
def slow_jpeg() -> bytes:
    """A 3000 x 3000 progressive JPEG of noise: about half a second to decode here."""
    return _encoded((np.random.default_rng(1).random((3000, 3000, 3)) * 255).astype(np.uint8), "JPEG",
                    progressive=True, quality=95)


def test_the_worker_decodes_what_the_server_would_and_passes_its_messages_on():
    data = _encoded((np.random.default_rng(0).random((300, 200, 3)) * 255).astype(np.uint8), "PNG")
    np.testing.assert_array_equal(decode_upload(data, 64), load_rgba(data, 64))
    with pytest.raises(ImageError) as refused:
        decode_upload(b"GIF89a but not really", 64)
    with pytest.raises(ImageError) as direct:
        load_rgba(b"GIF89a but not really", 64)
    assert str(refused.value) == str(direct.value)


def test_a_decode_past_its_time_is_stopped_and_the_next_upload_still_works(slow_jpeg):
    with pytest.raises(ImageError, match="took longer than 0.05 s to decode"):
        decode_upload(slow_jpeg, 64, seconds=0.05)
    assert decode_upload(slow_jpeg, 64).shape[-1] == 4


def test_a_decode_past_its_memory_is_refused_without_the_server_paying_for_it(slow_jpeg):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(ImageError, match="needs more than 20 MB to decode"):
        decode_upload(slow_jpeg, None, memory_bytes=20 * 2**20)  # full size: 9 million pixels
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # kB: the worker paid


def test_a_large_ordinary_photo_fits_the_default_limits():
    flat = np.full((4000, 6000, 3), (200, 120, 40), np.uint8)  # 24 million pixels, within the header checks
    assert decode_upload(_encoded(flat, "PNG"), 64).shape[-1] == 4


def test_when_every_worker_is_busy_an_upload_is_told_to_try_again():
    held = [upload_worker._idle.get(timeout=5) for _ in range(upload_worker.CONCURRENT_DECODES)]
    try:
        with pytest.raises(ImageError, match="try again in a moment"):
            decode_upload(b"\x89PNG", 64, queue_seconds=0.1)
    finally:
        for worker in held:
            upload_worker._idle.put(worker)


def test_workers_started_ahead_are_the_ones_that_decode_the_first_uploads():
    upload_worker.start_workers()
    workers = list(upload_worker._idle.queue)
    assert all(w is not None and w.process.poll() is None for w in workers)
    started = {w.process.pid for w in workers}
    assert len(started) == upload_worker.CONCURRENT_DECODES
    data = _encoded(np.zeros((40, 40, 3), np.uint8), "PNG")
    for _ in range(upload_worker.CONCURRENT_DECODES):
        decode_upload(data, 64)
    assert {w.process.pid for w in list(upload_worker._idle.queue)} == started  # none started anew
    upload_worker.start_workers()  # again: the running ones are kept
    assert {w.process.pid for w in list(upload_worker._idle.queue)} == started
