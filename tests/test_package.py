import subprocess
import sys


def test_vae_core_has_no_ui_dependencies():
    code = "import sys, vae_core.train, vae_core.checkpoints, vae_core.latent, vae_core.imaging, vae_core.metrics, " \
           "vae_core.evaluate, vae_core.projection, vae_core.explore, vae_core.bench, vae_core.zoo, vae_core.stacked, " \
           "vae_core.likelihood, vae_core.corruption, vae_core.manifold, vae_core.data.digits; " \
           "print(sorted(m for m in ('streamlit', 'plotly', 'umap') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
