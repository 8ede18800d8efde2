import subprocess
import sys


def test_vae_core_has_no_ui_dependencies():
    code = "import sys, vae_core.train, vae_core.checkpoints, vae_core.latent, vae_core.imaging, vae_core.metrics, " \
           "vae_core.evaluate, vae_core.projection, vae_core.explore, vae_core.bench, vae_core.zoo, vae_core.stacked, " \
           "vae_core.likelihood, vae_core.corruption, vae_core.manifold, vae_core.data.digits; " \
           "print(sorted(m for m in ('streamlit', 'plotly', 'umap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_wheel_gives_the_command_the_app_and_the_shipped_models_from_any_folder(tmp_path):
    """`pip install .`: the wheel holds the app's pages and browser files and the shipped models, and its
    `vae-explorer` command lists them from a folder outside the repository."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path / "wheel"), str(root)], check=True, capture_output=True, timeout=300)
    wheel = next((tmp_path / "wheel").glob("vae_explorer-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(tmp_path / "site"),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    site = tmp_path / "site"
    assert (site / "app" / "views" / "explore.py").is_file() and (site / "app" / "plotly_map" / "map.js").is_file()
    assert (site / "app" / "live_decoder" / "static" / "live.js").is_file()
    assert "vae-explorer = app.cli:main" in next(site.glob("vae_explorer-*.dist-info/entry_points.txt")).read_text()
    shipped = sorted(p.name for p in (root / "pretrained").iterdir() if (p / "config.json").is_file())
    code = ("import sys; sys.path.insert(0, sys.argv[1]); from vae_core.checkpoints import PRETRAINED_DIR, list_models;"
            " from app import cli; print(PRETRAINED_DIR); print(sorted(e.name for e in list_models() if not e.error));"
            " cli.main(['train', '--help'])")
    out = subprocess.run([sys.executable, "-c", code, str(site)], cwd=tmp_path, capture_output=True, text=True, check=False,
                         timeout=120, env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    lines = out.stdout.splitlines()
    assert lines[0] == str(site / "vae_explorer_pretrained"), out.stderr[-2000:]
    assert lines[1] == str(shipped) and "usage:" in out.stdout and "--objective" in out.stdout
