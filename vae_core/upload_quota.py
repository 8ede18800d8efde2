"""How many upload bytes one visitor and the whole server may hold at once.

A web server keeps every uploaded file in memory until it is deleted or its session ends; `imaging.MAX_FILE_BYTES`
bounds one file, not how many a script sends. `UploadQuota.reserve` is asked before a file's bytes are read: it
counts what the session and the server already hold, plus the uploads still arriving, and answers with a refusal
in words when the file would take either past its cap. Small files (a drawing, a screenshot) have a reserve of
their own above the server's cap, so visitors who fill the server with large files do not lock everyone else out.
Where the bytes live is the caller's business: `holdings(who)` says what is held now.

`UploadPace` bounds how fast large uploads' bytes are taken in, all together, as a classroom's network would: a
script on the same machine sent 20 sessions' 20 MB files at 400 MB/s, and receiving them took both cores from
everyone else's small drawings (p95 0.8 s). Small files are never paced.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

MB = 1024 * 1024
SESSION_UPLOAD_BYTES = 64 * MB  # one visitor: three files at the 20 MB limit, or a dozen phone photos
SERVER_UPLOAD_BYTES = 224 * MB  # everyone together: the server stays under 1.5 GB beside 30 scripted sessions (tests/test_load)
SMALL_FILE_BYTES = 1 * MB  # a file this small counts against SMALL_FILE_RESERVE once the server's cap is reached
SMALL_FILE_RESERVE = 32 * MB
SESSION_FILES = 100  # files one session may hold (refused ones included): each costs a record however small
LARGE_UPLOAD_BYTES_PER_S = 64 * MB  # all large uploads together (half a gigabit network): 30 phone photos in 2.5 s
PACE_BURST_BYTES = 4 * MB  # taken at once before the pace holds


class UploadQuota:
    """Caps on the bytes held in uploads, per session and for the server; safe to call from any thread.

    holdings(who) -> (bytes held by `who`, files held by `who`, bytes held by everyone).
    """

    def __init__(self, holdings: Callable[[str], tuple[int, int, int]], session_bytes: int = SESSION_UPLOAD_BYTES,
                 server_bytes: int = SERVER_UPLOAD_BYTES, small_bytes: int = SMALL_FILE_BYTES,
                 small_reserve: int = SMALL_FILE_RESERVE, session_files: int = SESSION_FILES):
        self.holdings = holdings
        self.session_bytes, self.server_bytes, self.session_files = session_bytes, server_bytes, session_files
        self.small_bytes, self.small_reserve = small_bytes, small_reserve
        self._lock = threading.Lock()
        self._arriving: dict[str, int] = {}  # who -> bytes of their uploads reserved but not yet held
        self.refusals: dict[tuple[str, str], str] = {}  # (who, file id) -> why the file was not kept

    def reserve(self, who: str, nbytes: int) -> str | None:
        """Reserve `nbytes` for an upload of `who` (release them once the upload is held or dropped), or say in
        words why not (nothing is reserved then)."""
        with self._lock:
            held, files, everyone = self.holdings(who)
            mine = held + self._arriving.get(who, 0)
            total = everyone + sum(self._arriving.values())
            if files >= self.session_files:
                return (f"not kept: this page already holds {files} uploads (at most {self.session_files}); "
                        "reload the page to start afresh")
            if mine + nbytes > self.session_bytes:
                return (f"not kept: your uploads on this page already hold {mine / MB:.0f} MB (at most "
                        f"{self.session_bytes // MB} MB each); remove a file you no longer need (its x) and "
                        "upload this one again")
            cap = self.server_bytes + (self.small_reserve if nbytes <= self.small_bytes else 0)
            if total + nbytes > cap:
                return (f"not kept: the server holds {total / MB:.0f} MB of everyone's uploads just now (at most "
                        f"{self.server_bytes // MB} MB); try again in a minute, or upload a smaller image")
            self._arriving[who] = self._arriving.get(who, 0) + nbytes
            return None

    def release(self, who: str, nbytes: int) -> None:
        """The reserved upload arrived (it is held now) or failed."""
        with self._lock:
            left = self._arriving.get(who, 0) - nbytes
            if left > 0:
                self._arriving[who] = left
            else:
                self._arriving.pop(who, None)

    def refuse(self, who: str, file_id: str, message: str) -> None:
        """Remember why a file of `who` was not kept, for the page that shows it."""
        with self._lock:
            self.refusals[(who, file_id)] = message

    def refusal(self, who: str, file_id: str) -> str | None:
        with self._lock:
            return self.refusals.get((who, file_id))

    def forget(self, who: str, file_ids=None) -> None:
        """Drop what is remembered of these files of `who` (None: of all their files)."""
        with self._lock:
            for key in [k for k in self.refusals if k[0] == who and (file_ids is None or k[1] in file_ids)]:
                del self.refusals[key]


class UploadPace:
    """The pace at which large uploads' bytes are taken in, all sessions together: `wait(nbytes)` is how long to
    hold `nbytes` that just arrived so that, counted with all before them, no more than `bytes_per_s` are taken a
    second (after a first `burst`). Each share is booked when it arrives, so uploads in turn take the pace in
    turn. Safe to call from any thread."""

    def __init__(self, bytes_per_s: float = LARGE_UPLOAD_BYTES_PER_S, burst: float = PACE_BURST_BYTES,
                 clock: Callable[[], float] = time.monotonic):
        self.bytes_per_s, self.burst, self.clock = bytes_per_s, burst, clock
        self._lock = threading.Lock()
        self._booked_until = -float("inf")  # when the bytes booked so far will all have been taken at the pace

    def wait(self, nbytes: int) -> float:
        with self._lock:
            now = self.clock()
            self._booked_until = max(self._booked_until, now - self.burst / self.bytes_per_s) + nbytes / self.bytes_per_s
            return max(0.0, self._booked_until - now)
