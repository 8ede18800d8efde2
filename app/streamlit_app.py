"""The latent-space explorer (minimal page until the explorer pages land): lists the available models."""

import streamlit as st

from vae_core.checkpoints import list_models

st.set_page_config(page_title="VAE latent-space explorer", layout="wide")
st.title("VAE latent-space explorer")
entries = list_models()
if not entries:
    st.info("No models found in pretrained/ or $VAE_EXPLORER_MODELS. Train one with "
            "`python -m vae_core.train --out pretrained/NAME`.")
for entry in entries:
    if entry.error:
        st.warning(f"**{entry.name}** is unavailable: {entry.error}")
    else:
        card = entry.card
        st.write(f"**{entry.name}**: {card.get('dataset', '?')}, {card.get('objective', '?')}, "
                 f"beta {card.get('beta', '?')}, {card.get('steps', '?')} steps")
