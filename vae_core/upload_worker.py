"""Uploads decoded in worker processes, with limits on their memory, their time and how many run at once.

The checks in `vae_core.imaging` refuse what a file's header says would cost too much; this bounds what a file
costs when the header lies or the decoder is slower than measured. `CONCURRENT_DECODES` worker processes
(`python -m vae_core.upload_worker`, started on first use) each decode one upload at a time with their address
space capped (`RLIMIT_AS`); one that runs past its time is killed and replaced, one that runs out of memory
reports it and is replaced. An upload waits for a free worker at most `QUEUE_SECONDS`, then is told to try again.
A worker answers with a status and raw `.npy` bytes (read with `allow_pickle=False`): what a worker says, having
read a hostile file, cannot run code in the server. Where there is no `/proc` (not Linux) the decode runs in the
calling process under the header checks alone.
"""

from __future__ import annotations

import io
import os
import queue
import resource
import select
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .imaging import ImageError, load_rgba

DECODE_SECONDS = 2.0  # a decode running longer is stopped
DECODE_MEMORY_BYTES = 400 * 1024 * 1024  # what a decode may add to a worker's address space
CONCURRENT_DECODES = 2  # the development machine has two cores: more at once would only queue in the kernel
QUEUE_SECONDS = 10.0  # how long an upload waits for a free worker before it is told to try again
STARTUP_SECONDS = 1.0  # allowed on top for a worker started for this upload

_REQUEST = struct.Struct("<iQ")  # size hint (0: none), file length; then the file's bytes
_ANSWER = struct.Struct("<BQ")  # status, payload length; then the payload
_OK, _REFUSED, _NO_MEMORY = 0, 1, 2
_ROOT = Path(__file__).resolve().parent.parent


def _address_space() -> int:
    """This process's mapped address space in bytes (what RLIMIT_AS counts)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def serve(memory_bytes: int) -> None:
    """The worker's loop: requests on stdin, answers on stdout, until stdin closes or memory runs out."""
    limit = _address_space() + memory_bytes
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    requests, answers = sys.stdin.buffer, sys.stdout.buffer
    while len(head := requests.read(_REQUEST.size)) == _REQUEST.size:
        size_hint, length = _REQUEST.unpack(head)
        data = requests.read(length)
        try:
            buf = io.BytesIO()
            np.save(buf, load_rgba(data, size_hint or None), allow_pickle=False)
            status, payload = _OK, buf.getvalue()
        except ImageError as exc:
            status, payload = _REFUSED, str(exc).encode()
        except MemoryError:
            status, payload = _NO_MEMORY, b""
        answers.write(_ANSWER.pack(status, len(payload)) + payload)
        answers.flush()
        if status == _NO_MEMORY:  # what was left half-allocated is not worth keeping: a fresh worker takes over
            return


class _Worker:
    def __init__(self, memory_bytes: int):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(_ROOT), *sys.path])}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vae_core.upload_worker", str(memory_bytes)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, cwd=_ROOT)

    def ask(self, data: bytes, size_hint: int | None, seconds: float) -> tuple[int, bytes] | None:
        """(status, payload), or None when no answer came within `seconds` (or the worker died)."""
        deadline = time.monotonic() + seconds
        try:
            self.process.stdin.write(_REQUEST.pack(size_hint or 0, len(data)) + data)
            self.process.stdin.flush()
            head = self._read(_ANSWER.size, deadline)
            if head is None:
                return None
            status, length = _ANSWER.unpack(head)
            payload = self._read(length, deadline)
            return None if payload is None else (status, payload)
        except OSError:  # the worker is gone
            return None

    def _read(self, n: int, deadline: float) -> bytes | None:
        out, fd = bytearray(), self.process.stdout.fileno()
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, n - len(out))
            if not chunk:
                return None
            out += chunk
        return bytes(out)

    def stop(self) -> None:
        self.process.kill()
        self.process.wait()


_idle: queue.Queue[_Worker | None] = queue.Queue()
for _ in range(CONCURRENT_DECODES):
    _idle.put(None)  # a slot; its worker is started on first use


def start_workers() -> None:
    """Start the pool's workers now rather than at the first uploads (each imports the decoder first, about
    0.2 s): the app's launcher calls this, so the first people to upload do not wait for it."""
    if not Path("/proc/self/statm").exists():
        return
    slots = []
    try:
        while True:
            slots.append(_idle.get_nowait())
    except queue.Empty:
        pass
    for worker in slots:
        started = worker is not None and worker.process.poll() is None
        _idle.put(worker if started else _Worker(DECODE_MEMORY_BYTES))


def decode_upload(data: bytes, size_hint: int | None = None, seconds: float = DECODE_SECONDS,
                  memory_bytes: int = DECODE_MEMORY_BYTES, queue_seconds: float = QUEUE_SECONDS) -> np.ndarray:
    """`imaging.load_rgba` in a worker process under the limits above; raises ImageError saying what to do."""
    if not Path("/proc/self/statm").exists():
        return load_rgba(data, size_hint)
    try:
        pooled = _idle.get(timeout=queue_seconds)  # a slot: its worker, or None before the first use
    except queue.Empty:
        raise ImageError("the server is decoding other uploads just now; try again in a moment") from None
    own = memory_bytes != DECODE_MEMORY_BYTES  # another cap (tests, tools): a worker of its own, in this slot
    fresh = own or pooled is None or pooled.process.poll() is not None
    worker = _Worker(memory_bytes) if fresh else pooled
    answer = None
    try:  # a fresh worker first imports the decoder (about 0.2 s): that is not the upload's time
        answer = worker.ask(data, size_hint, seconds + (STARTUP_SECONDS if fresh else 0.0))
    finally:
        spent = answer is None or answer[0] == _NO_MEMORY  # killed past its time, or out of memory: replaced
        if own or spent:
            worker.stop()
        _idle.put(pooled if own else None if spent else worker)
    if answer is None:
        raise ImageError(f"the image took longer than {seconds:g} s to decode; save it as an ordinary PNG or "
                         "JPEG (not progressive), or resize it, and upload it again")
    status, payload = answer
    if status == _OK:
        return np.load(io.BytesIO(payload), allow_pickle=False)
    if status == _REFUSED:
        raise ImageError(payload.decode(errors="replace"))
    raise ImageError(f"the image needs more than {memory_bytes / 2**20:.0f} MB to decode; resize it, or save it "
                     "as an 8-bit RGB image, and upload it again")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
