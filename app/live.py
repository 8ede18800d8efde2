"""Live dragging on Explore: latent sliders and a 2-D pad decoded in the browser while the pointer moves.

A components-v2 component (app/live_decoder/static/live.js) runs the model's decoder as ONNX in onnxruntime-web,
bundled in that folder: nothing is fetched at run time. The ONNX file is derived from the folder's weights once per
model and process (`vae_core.export.derived_decoder`, checked against PyTorch), never read from the folder. The
point comes back to Python when the pointer is released, so the rest of the page and the URL follow.

Two folders are served (app.components): the component's own files, and a folder of content-addressed copies of
the models' derived decoders, gzipped (so only those are served, and a browser may cache them for good). Where any of
this is not possible (a decoder that cannot be exported, the assets missing, an API that changed, a browser that
cannot run WebAssembly) the page keeps its server-side sliders and says why.

The drag loop, in order (the point lives in `st.session_state["z0"]`, `"z1"`, ... and nowhere else on the server):

1. `explorer` sends the point, the slider layout and a server-drawn preview to the component (`data`).
2. live.js draws the preview, loads the decoder, then decodes on every pointer move, in the browser only.
3. On release it reports the point (`setStateValue("z", ...)`); Streamlit reruns the page with it.
4. `_apply_release` (the `on_z_change` callback, before the rerun's script) stores it with `state.set_point`.
5. The rerun writes the point into the address (`links.write_point`) and sends it back in `data`; live.js
   recognises its own report (an echo) and does not jump.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
from pathlib import Path

import numpy as np
import streamlit as st

from app import components, edit_views, links, models, state, widgets
from app.text import plain
from vae_core.checkpoints import CheckpointError, atomic_write_bytes
from vae_core.explore import decode
from vae_core.export import cached_decoder, decoder_cache_dir, derived_decoder
from vae_core.imaging import encode_png
from vae_core.latent import nearest_class, toward_classes

COMPONENT = f"{components.PROJECT}.live_decoder"
MODELS = f"{components.PROJECT}.live_models"  # live.js fetches ../vae_explorer.live_models/<sha256>.onnx.gz
ASSETS = Path(__file__).resolve().parent / "live_decoder"
REQUIRED = ("live.js", "live.css", "ort.wasm.bundle.min.mjs", "ort-wasm-simd-threaded.wasm.gz")
KEY = "explore_live"
FAILED_KEY = "live_failed"  # the browser's reason when it could not decode; the session then stays server-side
MODE_KEY = "live_mode"
IMAGE_PX = 320

_serve_dir: Path | None = None


def serve_dir() -> Path:
    """This process's own folder of decoder copies (`components.private_folder`)."""
    global _serve_dir
    if _serve_dir is None or not _serve_dir.is_dir():
        _serve_dir = components.private_folder("vae-explorer-live-")
    return _serve_dir


def _mount():
    """The component's mount function, registering its folders first; (None, reason) when that fails."""
    missing = [n for n in REQUIRED if not (ASSETS / "static" / n).is_file()]
    if missing:
        return None, (f"the component's files are missing from {ASSETS / 'static'} ({', '.join(missing)}); "
                      f"run `npm ci && npm run build` in {ASSETS}")
    return components.mount("live_decoder", {"live_decoder": ASSETS / "static", "live_models": serve_dir()},
                            js="live.js", css="live.css")


@st.cache_data(max_entries=64, show_spinner=False)
def _published(path: str, stamp: float) -> tuple[str | None, str | None]:
    """(served file name, None) for the decoder derived from a model folder's weights, else (None, the reason)."""
    h = models.handle_at(path, stamp)
    try:
        data = cached_decoder(h.model, path, decoder_cache_dir(), derive=derived_decoder)
    except CheckpointError as exc:
        return None, f"its decoder could not be exported for the browser ({exc})"
    except Exception:  # noqa: BLE001  the exporter or onnxruntime failing: fall back, never break the page
        return None, "its decoder could not be exported for the browser (the exporter failed on this network)"
    name = f"{hashlib.sha256(data).hexdigest()}.onnx.gz"  # gzipped once here: served as it is, not per request
    target = serve_dir() / name
    if not target.exists():
        atomic_write_bytes(target, gzip.compress(data, compresslevel=6, mtime=0))
    return name, None


def model_file(h: models.Handle) -> tuple[str | None, str | None]:
    try:
        return _published(h.path, h.stamp)
    except OSError as exc:
        return None, f"its decoder could not be prepared for the browser ({exc})"


def _apply_release(limits: np.ndarray) -> None:
    """The component reported a released point: it becomes the Explore point."""
    reported = st.session_state.get(KEY)
    value = reported.get("z") if isinstance(reported, dict) else None
    point = state.as_point(value.get("z"), len(limits)) if isinstance(value, dict) else None
    if point is not None:  # anything else the component (or a client posing as it) sends is dropped
        state.set_point(point, limits, st.session_state.get("explore_posterior"))


def _apply_failure() -> None:
    reason = (st.session_state.get(KEY) or {}).get("failed")
    if reason:
        st.session_state[FAILED_KEY] = str(reason)


def edit_tracks(h: models.Handle, z: np.ndarray) -> list[dict]:
    """Each stored edit as a slider's track for live.js: the point `z` edited to each value of the factor (the
    browser decodes the points between them while the slider moves), its names (text, cut), and the value whose
    edited point is nearest `z` (where the slider starts)."""
    nets, _, _ = models.edits(h)
    dataset, _ = models.dataset_for(h)
    tracks = []
    for factor, net in nets.items():
        names, points = edit_views.along(dataset, factor, net, z)
        tracks.append({"factor": str(factor)[:60], "names": [n[:40] for n in names], "points": np.round(points, 4).tolist(),
                       "at": int(np.argmin(np.linalg.norm(points - z, axis=1))),
                       "note": edit_views.turn_note(edit_views.figures(h, factor)).strip()})
    if not tracks and (vectors := models.class_vectors(h)) is not None:  # labelled data: the class vectors
        points = toward_classes(z, vectors.centres)
        tracks.append({"factor": "class (attribute vector)", "names": [n[:40] for n in vectors.names],
                       "points": np.round(points, 4).tolist(), "at": int(nearest_class(z, vectors.centres)[0])})
    return tracks


def explorer(h: models.Handle, order: list[int], active: np.ndarray, kl: np.ndarray | None,
             limits: np.ndarray, post: dict | None, names: list | None = None) -> bool:
    """The live sliders and pad when they can run; False (after a note saying why) when the page should draw its
    server-side sliders instead. `names`: each latent's name (models.latent_names), for the labels."""
    if not h.kind_info.decodes_from_z:
        st.caption(f"The sliders decode on the server: a {h.kind} decoder is not a function of z alone (it also "
                   "takes the condition), so it does not run in the browser.")
        return False
    mount, reason = _mount()
    name, why = model_file(h) if mount is not None else (None, None)
    reason = reason or why or st.session_state.get(FAILED_KEY)
    if reason:
        if st.session_state.get(FAILED_KEY) == reason:  # sent by the browser: text, not markdown
            reason = f"this browser could not decode ({plain(reason, 300)})"
        st.info(f"Live dragging is off: {reason}. The sliders below decode on the server when released.",
                icon=":material/info:")
        return False
    if not st.toggle("Decode in the browser while dragging", value=True, key=MODE_KEY,
                     help="Off: the server decodes when a slider is released."):
        return False
    z = state.current_point(h)
    # the URL follows the point, as with the server sliders (one message to the browser, not one per dimension)
    links.write_point(z)
    data = {
        "model": name, "order": [int(d) for d in order], "active": [bool(a) for a in active],
        "labels": [widgets.dim_label(d, kl, bool(active[d]), names, markdown=False) for d in range(h.latent_dim)],
        "limits": [float(v) for v in limits], "step": state.STEP, "z": [float(v) for v in z],
        "size": h.image_size, "channels": h.channels, "px": IMAGE_PX,
        # the server's picture of this point (a few KB), shown at once while the browser's decoder loads
        "preview": "data:image/png;base64," + base64.b64encode(encode_png(decode(h.model, z[None])[0])).decode(),
        "posterior": None if not post else {"mu": [float(v) for v in post["mu"]],
                                            "sigma": [float(v) for v in post["sigma"]]},
    }
    if tracks := edit_tracks(h, z):
        data["edits"] = tracks
        data["edits_title"] = ("Edit a factor (learned from the data's twins: the others stay)"
                               if models.edits(h)[0] else "Move toward a class (its attribute vector)")
    if post and post.get("image") is not None:  # drawn by the component beside the decoded image
        data["input"] = {"src": "data:image/png;base64," + base64.b64encode(widgets.png(post["image"], 128)).decode(),
                         "caption": f"input: {post['source']}"[:120]}  # set as text by the component, not HTML
    mount(key=KEY, data=data, default={"z": None, "failed": None},
          on_z_change=lambda: _apply_release(limits), on_failed_change=_apply_failure)
    return True
