"""Uploads decoded in a worker process: the same pixels and messages, the limits on time, memory and how many
decode at once, and each session's fair share of the workers (vae_core.upload_worker)."""

from __future__ import annotations

import io
import resource
import threading
import time
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
    pool = upload_worker._pool
    held = [pool.take(f"holder{i}", 10, 5) for i in range(upload_worker.CONCURRENT_DECODES)]
    try:
        with pytest.raises(ImageError, match="try again in a moment"):
            decode_upload(b"\x89PNG", 64, queue_seconds=0.1)
    finally:
        for worker, turn in held:
            pool.give(worker, turn, 0.0)


def test_workers_started_ahead_are_the_ones_that_decode_the_first_uploads():
    upload_worker.start_workers()
    workers = list(upload_worker._pool.idle)
    assert all(w is not None and w.process.poll() is None for w in workers)
    started = {w.process.pid for w in workers}
    assert len(started) == upload_worker.CONCURRENT_DECODES
    data = _encoded(np.zeros((40, 40, 3), np.uint8), "PNG")
    for _ in range(upload_worker.CONCURRENT_DECODES):
        decode_upload(data, 64)
    assert {w.process.pid for w in upload_worker._pool.idle} == started  # none started anew
    upload_worker.start_workers()  # again: the running ones are kept
    assert {w.process.pid for w in upload_worker._pool.idle} == started


def slow_gif(blocks: int) -> bytes:
    """A tiny GIF behind `blocks` empty graphic-control extensions: about 1.2 s per million to decode here, and
    8 bytes each (the issue's 20 MB files held 2.6 million)."""
    buf = io.BytesIO()
    Image.new("P", (16, 16), 0).save(buf, "GIF")
    gif = buf.getvalue()
    image = gif.index(b"\x2c")
    return gif[:image] + b"\x21\xf9\x04\x00\x00\x00\x00\x00" * blocks + gif[image:]


def _decode_in_thread(data: bytes, who: str, ended: dict, **options) -> threading.Thread:
    def run():
        try:
            decode_upload(data, 64, who=who, **options)
        except ImageError:
            pass
        ended[who] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_large_files_never_hold_every_worker():
    """Two sessions decoding large slow files (6 MB, about 1 s each) leave a worker for a third one's drawing,
    which waits for no large file: on main the drawing waited for one of them."""
    upload_worker.start_workers()
    slow, ended = slow_gif(800_000), {}
    threads = [_decode_in_thread(slow, f"slow{i}", ended) for i in range(upload_worker.CONCURRENT_DECODES)]
    time.sleep(0.2)
    began = time.monotonic()
    decode_upload(_encoded(np.zeros((40, 40, 3), np.uint8), "PNG"), 64, who="drawing")
    waited = time.monotonic() - began
    for thread in threads:
        thread.join()
    assert waited < 0.3 and all(ended[f"slow{i}"] > began + waited for i in range(len(threads))), waited


def test_one_decode_at_a_time_per_session(monkeypatch):
    """A session's second file waits for its first; another session's file arriving meanwhile goes before it.
    Judged by the order in which the decodes got a worker (when they end also depends on whether their worker
    process had finished starting: a fresh one first imports the decoder)."""
    upload_worker.start_workers()
    medium, turns = slow_gif(250_000), []  # 2 MB, about 0.15-0.3 s: light
    take = upload_worker._pool.take

    def recorded_take(who, nbytes, seconds):
        taken = take(who, nbytes, seconds)
        turns.append(who)
        return taken

    monkeypatch.setattr(upload_worker._pool, "take", recorded_take)
    threads = [_decode_in_thread(medium, "a", {})]
    time.sleep(0.02)
    threads.append(_decode_in_thread(medium, "a", {}))  # waits for the first: one decode at a time per session
    time.sleep(0.05)
    threads.append(_decode_in_thread(medium, "b", {}))
    for thread in threads:
        thread.join()
    assert turns == ["a", "b", "a"], turns


def test_small_files_go_ahead_of_a_session_that_used_its_budget():
    pool = upload_worker._Pool(1)
    held = pool.take("someone", 10, 1.0)
    pool.give(*held, upload_worker.SESSION_SECONDS + 1)  # "someone" has used their budget
    assert pool.spent("someone") > upload_worker.SESSION_SECONDS
    held = pool.take("another", 10, 1.0)  # the only worker, busy
    order = []

    def wait(who, nbytes):
        worker, turn = pool.take(who, nbytes, 5.0)
        order.append(who)
        pool.give(worker, turn, 0.0)

    late = threading.Thread(target=wait, args=("someone", 10))
    late.start()
    time.sleep(0.05)  # the late session asked first
    big = threading.Thread(target=wait, args=("photo", upload_worker.LIGHT_BYTES + 1))
    big.start()
    time.sleep(0.05)
    small = threading.Thread(target=wait, args=("drawing", 2000))
    small.start()
    time.sleep(0.05)
    pool.give(*held, 0.0)
    for thread in (late, big, small):
        thread.join()
    assert order == ["drawing", "photo", "someone"]
