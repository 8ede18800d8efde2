"""`make app`'s launcher (app/serve.py): the server as `streamlit run` starts it, with the first page prepared once
the server is up."""

from __future__ import annotations

import time
import urllib.request

from vae_core.checkpoints import MODELS_ENV

from .app_fixtures import make_model, running_app

PREPARED = "first page prepared at launch"
FAILED = "preparing the first page at launch failed"


def _log_after(log, text: str, timeout_s: float = 60) -> str:
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        content = log.read_text()
        if text in content or FAILED in content:
            return content
        time.sleep(0.1)
    return log.read_text()


def test_the_launcher_prepares_the_default_model_before_anyone_connects(tmp_path):
    make_model(tmp_path, "grey64", projection=0)
    log = tmp_path / "streamlit.log"
    with running_app(log, {MODELS_ENV: str(tmp_path)}) as (base, _):
        content = _log_after(log, PREPARED)
        assert PREPARED in content and FAILED not in content, content[-2000:]
        assert "missing ScriptRunContext" not in content  # the warm-up's cached calls are quiet
        assert b"<title>" in urllib.request.urlopen(f"{base}/", timeout=10).read()  # still serving
