"""Uploads decoded in worker processes, with limits on their memory, their time and how many run at once.

The checks in `vae_core.imaging` refuse what a file's header says would cost too much; this bounds what a file
costs when the header lies or the decoder is slower than measured. `CONCURRENT_DECODES` worker processes
(`python -m vae_core.upload_worker`, started on first use) each decode one upload at a time with their address
space capped (`RLIMIT_AS`); one that runs past its time is killed and replaced, one that runs out of memory
reports it and is replaced. An upload waits for a free worker at most `QUEUE_SECONDS`, then is told to try again.
The workers are shared fairly (`_Pool`): one decode at a time per session, and each session's recent decode time
counted, so that small files from sessions within `SESSION_SECONDS` go first and large files never hold every
worker: a script sending slow files from 20 sessions cannot freeze everyone else's uploads.
A worker answers with a status and raw `.npy` bytes (read with `allow_pickle=False`): what a worker says, having
read a hostile file, cannot run code in the server. Where there is no `/proc` (not Linux) the decode runs in the
calling process under the header checks alone.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import math
import os
import resource
import select
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .imaging import ImageError, load_rgba

DECODE_SECONDS = 2.0  # a decode running longer is stopped
DECODE_MEMORY_BYTES = 400 * 1024 * 1024  # what a decode may add to a worker's address space
CONCURRENT_DECODES = 2  # the development machine has two cores: more at once would only queue in the kernel
QUEUE_SECONDS = 10.0  # how long an upload waits for a free worker before it is told to try again
STARTUP_SECONDS = 1.0  # allowed on top for a worker started for this upload
LIGHT_BYTES = 2 * 1024 * 1024  # a smaller file, from a session within its budget, may use the worker kept for such
SESSION_SECONDS = 4.0  # decode time a session may use (decaying, below) before its uploads wait behind others'
WORKER_NICENESS = 10  # decoding yields the CPU to the server itself (scripted slow files held both cores)
SESSION_HALF_LIFE_S = 60.0  # a session's used time halves in this long: the budget is about 4 s a minute

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
    with contextlib.suppress(OSError):  # below the server: its pages and small files first when the cores are full
        os.nice(WORKER_NICENESS)
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


@dataclass
class _Turn:
    """An upload waiting for a worker."""

    who: str | None  # the session (None: nobody's in particular)
    light: bool  # a small file from a session within its budget: it may use any worker
    late: bool  # its session used its budget: after every other upload
    order: int


class _Pool:
    """Who decodes next. Workers are handed to the waiting uploads in the order (within budget or not, small file
    or not, arrival); an upload whose session has a decode running waits for it, and uploads that are not light
    hold at most all workers but one, so that a small file waits at most for another small file's decode."""

    def __init__(self, slots: int):
        self.slots = slots
        self.idle: list[_Worker | None] = [None] * slots  # a slot's worker is started on first use
        self._turns = itertools.count()
        self._changed = threading.Condition()
        self._waiting: list[_Turn] = []
        self._busy: set[str] = set()  # sessions with a decode running
        self._heavy = 0  # decodes running that are not light
        self._used: dict[str, tuple[float, float]] = {}  # session -> (decode seconds, when), decaying

    def spent(self, who: str | None, now: float | None = None) -> float:
        """The decode seconds `who` used lately (each halving in SESSION_HALF_LIFE_S)."""
        seconds, when = self._used.get(who, (0.0, 0.0))
        now = time.monotonic() if now is None else now
        return seconds * math.exp2(-(now - when) / SESSION_HALF_LIFE_S)

    def _next(self) -> _Turn | None:
        ready = [t for t in self._waiting if (t.who is None or t.who not in self._busy)
                 and (t.light or self._heavy < max(1, self.slots - 1))]
        return min(ready, key=lambda t: (t.late, not t.light, t.order), default=None)

    def take(self, who: str | None, nbytes: int, seconds: float) -> tuple[_Worker | None, _Turn] | None:
        """A slot's worker (None: not started yet) and the turn to give back, or None after `seconds`."""
        with self._changed:
            spent = self.spent(who)
            turn = _Turn(who, nbytes <= LIGHT_BYTES and spent < SESSION_SECONDS, spent >= SESSION_SECONDS,
                         next(self._turns))
            self._waiting.append(turn)
            deadline = time.monotonic() + seconds
            while not (self.idle and self._next() is turn):
                left = deadline - time.monotonic()
                if left <= 0:
                    self._waiting.remove(turn)
                    self._changed.notify_all()
                    return None
                self._changed.wait(left)
            self._waiting.remove(turn)
            if who is not None:
                self._busy.add(who)
            self._heavy += not turn.light
            worker = self.idle.pop()
            self._changed.notify_all()  # another slot may be free for the next upload
            return worker, turn

    def give(self, worker: _Worker | None, turn: _Turn, seconds: float) -> None:
        """Hand the slot back after `seconds` of decoding for `turn`."""
        with self._changed:
            self.idle.append(worker)
            self._heavy -= not turn.light
            if turn.who is not None:
                self._busy.discard(turn.who)
                now = time.monotonic()
                self._used[turn.who] = (self.spent(turn.who, now) + seconds, now)
                if len(self._used) > 10_000:  # sessions long gone: their time has decayed to nothing
                    self._used = {w: u for w, u in self._used.items() if self.spent(w, now) > 0.01}
            self._changed.notify_all()


_pool = _Pool(CONCURRENT_DECODES)


def start_workers() -> None:
    """Start the pool's workers now rather than at the first uploads (each imports the decoder first, about
    0.2 s): the app's launcher calls this, so the first people to upload do not wait for it."""
    if not Path("/proc/self/statm").exists():
        return
    with _pool._changed:
        _pool.idle = [w if w is not None and w.process.poll() is None else _Worker(DECODE_MEMORY_BYTES)
                      for w in _pool.idle]


def decode_upload(data: bytes, size_hint: int | None = None, seconds: float = DECODE_SECONDS,
                  memory_bytes: int = DECODE_MEMORY_BYTES, queue_seconds: float = QUEUE_SECONDS,
                  who: str | None = None) -> np.ndarray:
    """`imaging.load_rgba` in a worker process under the limits above, in `who`'s fair turn (a session id; None
    for nobody's in particular); raises ImageError saying what to do."""
    if not Path("/proc/self/statm").exists():
        return load_rgba(data, size_hint)
    taken = _pool.take(who, len(data), queue_seconds)
    if taken is None:
        raise ImageError("the server is decoding other uploads just now; try again in a moment")
    pooled, turn = taken  # a slot: its worker, or None before the first use
    own = memory_bytes != DECODE_MEMORY_BYTES  # another cap (tests, tools): a worker of its own, in this slot
    fresh = own or pooled is None or pooled.process.poll() is not None
    worker = _Worker(memory_bytes) if fresh else pooled
    answer, began = None, time.monotonic()
    try:  # a fresh worker first imports the decoder (about 0.2 s): that is not the upload's time
        answer = worker.ask(data, size_hint, seconds + (STARTUP_SECONDS if fresh else 0.0))
    finally:
        spent = answer is None or answer[0] == _NO_MEMORY  # killed past its time, or out of memory: replaced
        if own or spent:
            worker.stop()
        _pool.give(pooled if own else None if spent else worker, turn, time.monotonic() - began)
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
