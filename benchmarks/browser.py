"""The app's browser benchmark: `make bench-browser` (python benchmarks/browser.py) prints the classroom table.

Starts the app as `make app` does, over the shipped models, and drives it in headless Chromium (Playwright,
/usr/bin/chromium), timing what a person waits for:

- first page usable after launch: from starting the server to Explore's decoded picture on screen, the browser
  opening the address as soon as the server answers;
- the same page opened by a person a few seconds after launch (LATER_S, while the server prepares it): from
  opening the address to the picture, in a browser of its own (nothing cached from the first);
- page navigation within a session: a click on a page link to that page's script finishing (each page twice, in
  a cycle, after a first visit to each), p50 and p95;
- Reconstruct's first visit per model;
- an upload placed on the latent map, "Colour by" changed on the map (to the new figure drawn, where that is
  later than the script's end; "Colour by" runs no script: the browser redraws alone);
- Randomise / Dataset example / Reset on Explore, once the page's decoder has loaded in the browser; and one
  Randomise as soon as the page is up, while the browser still compiles that decoder (WebAssembly);
- a server-side slider step (live dragging off) to the new picture.

A wait starts at the person's input (the pointer, key or file event in the page) and ends when the page's script
has run and finished after it (Streamlit's `data-test-script-state`,
watched in the page so a short rerun is not missed), or when the picture changed. Not a test: figures depend on
the machine, so they are printed, with the machine's load beside them.

Beside each wait, the CPU seconds it cost on each side (the median per action): the server (its process and the
upload workers it started) and the browser (Chromium's processes, which here draw in software, on the same
cores). In a classroom the browser's part runs on each student's own machine; the server's part is what the
class shares.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from app import serve  # the server's command line, as `make app` runs it

CHROMIUM = "/usr/bin/chromium"
PAGES = ["Traversals", "Interpolate", "Latent map", "Disentanglement", "Reconstruct", "Explore"]
LATER_S = 3  # how long after launch the person of the second row opens the address
FIRST_LATER = f"first page, opened {LATER_S} s after launch"
FIRST_CLICK = "Randomise while the decoder loads"
DECODER_READY = "() => window.__liveDecoder?.sessionMs != null"  # set by live.js once its decoder can run
GOALS = {
    "first page usable after launch": "<= 3 s",
    FIRST_LATER: "",
    "page navigation p50": "",
    "page navigation p95": "<= 1 s",
    "Reconstruct, first visit per model": "<= 1 s",
    "upload placed on the map": "<= 300 ms",
    "Randomise / Dataset example / Reset": "<= 200 ms",
    FIRST_CLICK: "",
    "changing 'Colour by' on the map": "<= 300 ms",
    "server-side slider step to new image": "<= 150 ms",
}

WATCH = """() => {
  window.__runs = [];
  window.__input = 0;  // when the person last pressed, clicked, typed or chose a file (the wait starts there)
  for (const type of ['pointerdown', 'keydown', 'change'])
    document.addEventListener(type, () => { window.__input = performance.now(); }, true);
  const app = document.querySelector("[data-testid='stApp']");
  // every change, also two within one task (a short rerun: running then notRunning), read from the records: the
  // attribute itself holds only the last
  new MutationObserver((records) => {
    const now = performance.now();
    const states = [...records.slice(1).map((r) => r.oldValue), app.getAttribute('data-test-script-state')];
    for (const state of states) window.__runs.push([state, now]);
  }).observe(app, {attributes: true, attributeFilter: ['data-test-script-state'], attributeOldValue: true});
  // A rerun shorter than a frame can leave that attribute untouched (React renders its last state only): its
  // changes to the page are the sign it ran.
  window.__changed = 0;
  new MutationObserver((records) => {
    if (records.some((r) => r.attributeName !== 'data-test-script-state')) window.__changed = performance.now();
  }).observe(app, {attributes: true, childList: true, subtree: true, characterData: true});
}"""
# installed before each page loads: when the server's last message came (a rerun that changes nothing on the
# page, as a live picture drawn in a canvas, shows only there)
MESSAGES = """(() => {
  const Base = window.WebSocket;
  window.__message = 0;
  window.WebSocket = class extends Base {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => { window.__message = performance.now(); });
    }
  };
})()"""
# resolves with the time the script finished after `since`, once it has run and finished since then; for a run
# the script's state never showed, the time of the page's last change or the server's last message, once both
# have been still for 500 ms
FINISHED = """([since, quiet]) => new Promise(resolve => {
  const began = performance.now();
  const check = () => {
    const now = performance.now();
    if (now - began > 15000) return resolve(null);
    const runs = window.__runs.filter(r => r[1] >= since);
    const last = Math.max(window.__changed, window.__message || 0);
    if (!runs.length && last > since && now - last > Math.max(quiet, 500)) return resolve(last);
    const started = runs.findIndex(r => r[0] === 'running');
    const ended = runs.slice(started + 1).find(r => r[0] === 'notRunning');
    if (started >= 0 && ended && performance.now() - ended[1] > quiet) {
      const later = runs.slice(runs.indexOf(ended) + 1);
      if (!later.some(r => r[0] === 'running')) return resolve(runs.filter(r => r[0] === 'notRunning').pop()[1]);
    }
    setTimeout(check, 10);
  };
  check();
})"""

# the latent map's component counts its draws (app/plotly_map/map.js): MAP_DRAWS gives the count so far (and
# records the frame after each draw from then on), MAP_DRAWN resolves with the time of the frame after the first
# draw past `before`. The time is recorded when the draw happens: read when the script has also finished and stayed
# still (FINISHED's quiet time), "now" would add that wait to a map drawn before the script ended.
MAP_DRAWS = """() => {
  if (!window.__drawTimes) {
    window.__drawTimes = [];
    new MutationObserver((records) => {
      for (const r of records) {
        if (!r.target.matches?.("[data-testid='map-chart']")) continue;
        const n = Number(r.target.dataset.drawn || 0);
        requestAnimationFrame(() => window.__drawTimes.push([n, performance.now()]));
      }
    }).observe(document.body, {attributes: true, attributeFilter: ['data-drawn'], subtree: true});
  }
  window.__drawTimes.length = 0;  // only the draws after this call (another page's map counted from 0 too)
  return Number(document.querySelector("[data-testid='map-chart']")?.dataset.drawn || 0);
}"""
MAP_DRAWN = """(before) => new Promise(resolve => {
  const began = performance.now();
  const check = () => {
    const n = Number(document.querySelector("[data-testid='map-chart']")?.dataset.drawn || 0);
    const seen = (window.__drawTimes || []).find(([count]) => count > before);
    if (seen) return resolve(seen[1]);
    if (n > before && !window.__drawTimes) return requestAnimationFrame(() => resolve(performance.now()));
    if (performance.now() - began > 30000) return resolve(null);
    setTimeout(check, 10);
  };
  check();
})"""


def _start(port: int, log, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(serve.command(port), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **(env or {})})


def _healthy(base: str, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/_stcore/health", timeout=1).read() == b"ok":
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"the app did not answer at {base}")


def _cpu_seconds(server: int) -> tuple[float, float]:
    """CPU seconds (user and system) used so far by the server's process tree, and by the other processes this
    one started (Chromium and its driver): read from /proc, so Linux only."""
    parent, cpu = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # a process that ended meanwhile
            continue
        pid = int(stat.parent.name)
        parent[pid], cpu[pid] = int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def root(pid: int) -> int | None:  # the server or this process, whichever the process descends from
        while pid > 1:
            if pid in (server, os.getpid()):
                return pid
            pid = parent.get(pid, 0)
        return None

    sides = {server: 0.0, os.getpid(): 0.0}
    for pid, seconds in cpu.items():
        if pid != os.getpid() and (r := root(pid)) is not None:
            sides[r] += seconds
    return sides[server], sides[os.getpid()]


class Clock:
    """Times what a person waits for, and what each side's CPU spent on it."""

    def __init__(self, server: subprocess.Popen):
        self.server = server.pid
        self.cpu: dict[str, list[tuple[float, float]]] = {}
        self.unanswered: dict[str, int] = {}  # inputs after which the page ran no script within 15 s

    def timed(self, figure: str, pg, action, quiet: float = 150, map_drawn: bool = False,
              script: bool = True) -> float | None:
        """Seconds from the person's input in `action` (its last pointer, key or file event; the driver's own
        locating and scrolling before it are not counted) to the script it caused having finished (and staying
        finished `quiet` ms); with `map_drawn`, to the latent map's new figure on screen if that is later
        (without `script`: an action the browser answers alone, timed to the figure). None when no script ran."""
        before = _cpu_seconds(self.server)
        since = pg.evaluate("() => performance.now()")
        drawn = pg.evaluate(MAP_DRAWS) if map_drawn else None
        action()
        done = pg.evaluate(FINISHED, [since, quiet]) if script else since
        if done is None:  # counted and printed, not timed: the table's figures are of inputs that were answered
            self.unanswered[figure] = self.unanswered.get(figure, 0) + 1
            return None
        if drawn is not None:
            shown = pg.evaluate(MAP_DRAWN, drawn)
            if shown is None:
                raise SystemExit(f"{figure}: the latent map did not draw within 30 s")
            done = max(done, shown)
        start = pg.evaluate("() => window.__input")
        after = _cpu_seconds(self.server)
        self.cpu.setdefault(figure, []).append((after[0] - before[0], after[1] - before[1]))
        return (done - max(since, start)) / 1000


FIRST_PICTURE = "[data-testid='stBidiComponentIsolated'], [data-testid='stImage'] img"


def _first_page_later(browser, port: int, log) -> float:
    """Seconds from opening the address, LATER_S after a fresh server answered, to Explore's picture."""
    server = _start(port, log)
    try:
        _healthy(f"http://127.0.0.1:{port}")
        time.sleep(LATER_S)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        began = time.perf_counter()
        context.new_page().goto(f"http://127.0.0.1:{port}/")
        context.pages[0].wait_for_selector(FIRST_PICTURE, timeout=120_000)
        seconds = time.perf_counter() - began
        context.close()
        return seconds
    finally:
        server.terminate()
        server.wait(20)


def _open(pg, base: str, query: str) -> None:
    pg.goto(f"{base}/?{query}")
    pg.wait_for_selector("h1", timeout=120_000)
    pg.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
    pg.evaluate(WATCH)


def _nav(pg, title: str) -> None:
    pg.locator("[data-testid='stSidebarNav'] a", has_text=title).first.click()


def _png(size: int = 256) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (size, size), "white")
    ImageDraw.Draw(image).ellipse((70, 90, 190, 150), fill="black")
    buf = io.BytesIO()
    image.save(buf, "PNG")
    return buf.getvalue()


def _map_actions(clock, pg, out: dict, colourings: tuple[str, ...], rounds: int) -> None:
    """On the open latent map: "Colour by" changed to each of `colourings` (chosen in the browser,
    app/map_chart.py), then `rounds` uploads placed on it."""
    for option in colourings:
        out["changing 'Colour by' on the map"].append(clock.timed(
            "changing 'Colour by' on the map", pg,
            lambda o=option: pg.select_option("[data-testid='map-colour']", o), map_drawn=True, script=False))
    upload = pg.locator("[data-testid='stFileUploaderDropzoneInput']").first
    for n in range(rounds):
        files = [{"name": f"drawing-{n}.png", "mimeType": "image/png", "buffer": _png(200 + 8 * n)}]
        out["upload placed on the map"].append(
            clock.timed("upload placed on the map", pg, lambda f=files: upload.set_input_files(f), map_drawn=True))


def measure(port: int, rounds: int = 2) -> tuple[dict, dict, dict, dict[str, int]]:
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    out: dict[str, list[float]] = {k: [] for k in GOALS}
    by_page: dict[str, list[float]] = {}  # navigation to each page
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "app.log", "w") as log, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        out[FIRST_LATER].append(_first_page_later(browser, port, log))
        browser_cpu = _cpu_seconds(-1)[1]
        began = time.perf_counter()
        server = _start(port, log)
        try:
            _healthy(base)
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.add_init_script(MESSAGES)
            pg.goto(f"{base}/")
            pg.wait_for_selector(FIRST_PICTURE, timeout=120_000)
            out["first page usable after launch"].append(time.perf_counter() - began)
            first_cpu = _cpu_seconds(server.pid)
            pg.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=120_000)
            pg.evaluate(WATCH)
            clock = Clock(server)
            clock.cpu["first page usable after launch"] = [(first_cpu[0], first_cpu[1] - browser_cpu)]
            for title in PAGES:  # first visits (a model's first Reconstruct among them)
                first = "Reconstruct, first visit per model" if title == "Reconstruct" else "first visits"
                seconds = clock.timed(first, pg, lambda t=title: _nav(pg, t), map_drawn=title == "Latent map")
                if title == "Reconstruct":
                    out[first].append(seconds)
            for _ in range(rounds):
                for title in PAGES:
                    seconds = clock.timed("page navigation p50", pg, lambda t=title: _nav(pg, t),
                                          map_drawn=title == "Latent map")
                    out["page navigation p50"].append(seconds)
                    by_page.setdefault(title, []).append(seconds)
            out["page navigation p95"] = out["page navigation p50"]
            for model in ("dsprites-vae", "faces-beta-vae", "digits-vae"):  # not yet opened in this server
                _open(pg, base, f"model={model}")
                out["Reconstruct, first visit per model"].append(
                    clock.timed("Reconstruct, first visit per model", pg, lambda: _nav(pg, "Reconstruct")))
            _open(pg, base, "model=dsprites-beta-vae")
            pg.wait_for_selector(FIRST_PICTURE)
            randomise = "Randomise (prior sample)"
            out[FIRST_CLICK].append(clock.timed(FIRST_CLICK, pg, lambda: pg.get_by_role("button", name=randomise).click()))
            pg.wait_for_function(DECODER_READY, timeout=60_000)
            for label in (randomise, "Dataset example", "Reset to the prior mean") * rounds:
                out["Randomise / Dataset example / Reset"].append(clock.timed(
                    "Randomise / Dataset example / Reset", pg, lambda lb=label: pg.get_by_role("button", name=lb).click()))
            pg.get_by_text("Decode in the browser while dragging").click()  # the server sliders
            pg.wait_for_selector("[data-testid='stSlider']", timeout=60_000)
            pg.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']")
            thumb = pg.locator("[data-testid='stSlider'] input[type='range']").first
            for key in ("ArrowRight", "ArrowLeft") * (2 * rounds):
                out["server-side slider step to new image"].append(clock.timed(
                    "server-side slider step to new image", pg, lambda k=key: (thumb.focus(), thumb.press(k)), quiet=100))
            _open(pg, f"{base}/latent_map", "model=dsprites-beta-vae")
            pg.wait_for_selector("[data-testid='map-chart'][data-drawn]", timeout=60_000)
            _map_actions(clock, pg, out, ("scale", "posX", "shape", "posY") * rounds, rounds)
            errors = pg.locator("[data-testid='stException']").count()
            if errors:
                raise SystemExit(f"a traceback on the page: {pg.inner_text('body')[-1500:]}")
        finally:
            server.terminate()
            server.wait(20)
            browser.close()
    answered = {name: [v for v in values if v is not None] for name, values in out.items()}
    return answered, clock.cpu, {t: [v for v in values if v is not None] for t, values in by_page.items()}, \
        clock.unanswered


SCALE_GOALS = {
    "Latent map, first visit (server prepares the figure)": "",
    "Latent map drawn, from the navigation": "<= 2 s",
    "changing 'Colour by' on the map": "<= 300 ms",
    "upload placed on the map": "<= 300 ms",
    "a point's picture on hover": "",
}


def measure_scale(port: int, folder: Path, rounds: int = 2) -> dict[str, list[float]]:
    """The latent map of a model trained on one's own images, as `python -m vae_core.bench --scale FOLDER` left
    it (FOLDER/model, its data FOLDER/images named to the app, its decoded images kept in FOLDER/cache)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    base = f"http://127.0.0.1:{port}"
    out: dict[str, list[float]] = {k: [] for k in SCALE_GOALS}
    env = {"VAE_EXPLORER_MODELS": str(folder / "model"), "VAE_EXPLORER_DATA": str(folder / "images"),
           "XDG_CACHE_HOME": str(folder / "cache")}
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "app.log", "w") as log, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM)
        server = _start(port, log, env)
        try:
            _healthy(base)
            pg = browser.new_page(viewport={"width": 1400, "height": 1000})
            pg.add_init_script(MESSAGES)
            _open(pg, base, "model=model")
            clock = Clock(server)
            figure = "Latent map, first visit (server prepares the figure)"
            out[figure].append(clock.timed(figure, pg, lambda: _nav(pg, "Latent map"), map_drawn=True))
            for _ in range(rounds):
                clock.timed("away", pg, lambda: _nav(pg, "Explore"))
                figure = "Latent map drawn, from the navigation"
                out[figure].append(clock.timed(figure, pg, lambda: _nav(pg, "Latent map"), map_drawn=True))
            _map_actions(clock, pg, out, ("label", "none") * rounds, rounds)
            hover = pg.locator("[data-testid='map-hover']")
            pg.locator("[data-testid='map-pictures']").check()  # where the pictured points are: their pictures
            pg.wait_for_function(f"() => +document.querySelector(\"{MAP}\").dataset.pictures > 0")
            pictured = pg.evaluate(f"() => document.querySelector(\"{MAP}\").layout.images.map((i) => [i.x, i.y])")
            pg.locator("[data-testid='map-pictures']").uncheck()
            pg.wait_for_function(f"() => +document.querySelector(\"{MAP}\").dataset.pictures === 0")
            for i in range(3 * rounds):
                at = pg.evaluate(PLACE_AT, pictured[(7 * i) % len(pictured)])
                began = time.perf_counter()
                pg.mouse.move(*at)
                with contextlib.suppress(PlaywrightTimeout):  # a point without a picture: nothing shown or timed
                    hover.wait_for(state="visible", timeout=5000)
                    out["a point's picture on hover"].append(time.perf_counter() - began)
                pg.mouse.move(5, 5)
                hover.wait_for(state="hidden", timeout=5000)
            if pg.locator("[data-testid='stException']").count():
                raise SystemExit(f"a traceback on the page: {pg.inner_text('body')[-1500:]}")
            out["points on the map"] = [pg.evaluate(
                "() => document.querySelector(\"[data-testid='map-chart']\").data[0].x.length")]
        finally:
            server.terminate()
            server.wait(20)
            browser.close()
    return out


MAP = "[data-testid='map-chart']"
# where a place [x, y] of the map is on the screen (Plotly's axes map data to pixels)
PLACE_AT = """([x, y]) => { const d = document.querySelector("[data-testid='map-chart']"), f = d._fullLayout;
  const r = d.getBoundingClientRect();
  return [r.left + f._size.l + f.xaxis.l2p(x), r.top + f._size.t + f.yaxis.l2p(y)]; }"""


def _print_scale(figures: dict[str, list[float]]) -> None:
    width = max(map(len, SCALE_GOALS))
    print(f"{'figure':<{width}}  {'measured':>12}  {'goal':>9}")
    for name, goal in SCALE_GOALS.items():
        values = [v for v in figures[name] if v is not None]
        text = "" if not values else (f"{values[0]:.2f} s" if len(values) == 1 else
                                      f"{min(values):.2f}-{max(values):.2f} s")
        print(f"{name:<{width}}  {text:>12}  {goal:>9}")
    print(f"({figures['points on the map'][0]:,} points; headless Chromium, {os.cpu_count()} cores)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/browser.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8611)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--scale", type=Path, metavar="FOLDER",
                        help="only the latent map of one's own 60,000 images, made by "
                             "`python -m vae_core.bench --scale FOLDER`")
    args = parser.parse_args(argv)
    if not os.path.exists(CHROMIUM):
        raise SystemExit(f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
    if args.scale is not None:
        _print_scale(measure_scale(args.port, args.scale.resolve(), args.rounds))
        return 0
    load = os.getloadavg()[0]
    figures, cpu, by_page, unanswered = measure(args.port, args.rounds)
    width = max(map(len, GOALS))
    print(f"{'figure':<{width}}  {'measured':>12}  {'goal':>9}  {'server CPU':>10}  {'browser CPU':>11}")
    for name, goal in GOALS.items():
        values = figures[name]
        if name == "page navigation p95":
            value = statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]
            text = f"{value:.2f} s"
        elif name == "page navigation p50":
            text = f"{statistics.median(values):.2f} s"
        elif len(values) == 1:
            text = f"{values[0]:.2f} s"
        else:
            text = f"{min(values):.2f}-{max(values):.2f} s"
        spent = cpu.get("page navigation p50" if name == "page navigation p95" else name, [])
        sides = [f"{statistics.median(c[i] for c in spent):.2f} s" if spent else "" for i in (0, 1)]
        print(f"{name:<{width}}  {text:>12}  {goal:>9}  {sides[0]:>10}  {sides[1]:>11}")
    print("page navigation by page (median): " + ", ".join(
        f"{title} {statistics.median(v):.2f} s" for title, v in by_page.items()))
    if unanswered:
        print("inputs after which the page ran no script within 15 s (left out above): " + ", ".join(
            f"{figure} {n}" for figure, n in unanswered.items()))
    print(f"(headless Chromium, {os.cpu_count()} cores, load average {load:.2f} at the start; CPU: the median per "
          "action, the first page's since launch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
