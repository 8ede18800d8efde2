"""Explore for a VQ-VAE: the code grid, editable cell by cell, and its decoded image."""

import numpy as np
import pandas as pd
import streamlit as st

from app import models, state, widgets
from app.family import vqvae
from app.text import plain
from vae_core.models.vqvae import (
    CodeError,
    decode_grids,
    format_code_grid,
    parse_code_grid,
    prior_code_grids,
    reconstruct,
)

h = state.require_model()
model, m = h.model, h.config.model
k, g = m.options.codebook_size, model.grid
st.title("Explore the code grid")
st.caption(f"A VQ-VAE encodes an image as a grid of {g}x{g} indices into a codebook of {k} learned vectors; "
           "the decoder turns the grid back into an image. Change a cell's code and decode: each code is a "
           "learned piece of an image, placed by its cell. The grid is in the page address (`?codes=`).")
key = vqvae.grid_key(h)
asked = st.query_params.get("codes")
if asked is not None and asked != format_code_grid(st.session_state.get(key, np.zeros(0))):
    try:
        vqvae.set_grid(h, parse_code_grid(asked, model), "the page address")
    except CodeError as exc:
        st.error(f"The code grid in the address was refused: {plain(exc, 300)}")
if key not in st.session_state:
    grid = vqvae.example_grid(h, 0)
    vqvae.set_grid(h, np.zeros((g, g), np.int64) if grid is None else grid,
              "code 0 everywhere" if grid is None else "dataset example #0")
b = st.columns(3)
number = b[0].number_input("Dataset example", 0, 99_999, 0, key=f"{key}::n")
if b[0].button("Encode this example", disabled=models.dataset_for(h)[0] is None):
    vqvae.set_grid(h, vqvae.example_grid(h, int(number)), f"dataset example #{number}")
seed = int(np.random.default_rng().integers(2**31))
if b[1].button("Uniform code prior sample", help="every cell's code drawn uniformly from the codebook"):
    vqvae.set_grid(h, prior_code_grids(model, 1, seed)[0], "a uniform code prior sample")
freq = vqvae.frequencies(h)
if b[2].button("Empirical code prior sample", disabled=freq is None,
               help="every cell's code drawn from the codes' frequencies in the data, independently"):
    vqvae.set_grid(h, prior_code_grids(model, 1, seed, freq)[0], "an empirical code prior sample")
for up in widgets.upload_image("Start from your own image", f"{key}::upload", h):
    if st.session_state.get(f"{key}::upload_id") != up.file_id:
        st.session_state[f"{key}::upload_id"] = up.file_id
        vqvae.set_grid(h, reconstruct(model, up.image[None])["indices"][0], up.name)
grid = st.session_state[key]
left, right = st.columns([3, 2], gap="large")
with left:
    st.markdown(f"**Code indices** (from {plain(st.session_state[f'{key}::source'])}): edit a cell, 0 to {k - 1}")
    frame = pd.DataFrame(grid, columns=[f"c{j}" for j in range(g)], index=[f"r{i}" for i in range(g)])
    edited = st.data_editor(frame, key=f"{key}::editor{st.session_state[f'{key}::version']}",
                            column_config={c: st.column_config.NumberColumn(c, step=1, format="%d")
                                           for c in frame.columns})
    try:
        new = np.asarray(edited.to_numpy(), dtype=np.float64)
        if not np.isfinite(new).all() or (new != np.round(new)).any():
            raise CodeError("every cell holds a whole number")
        model.check_codes(new.astype(np.int64))
        if not np.array_equal(new.astype(np.int64), grid):
            grid = new.astype(np.int64)
            st.session_state[key] = grid
            st.query_params["codes"] = format_code_grid(grid)
    except (CodeError, ValueError, TypeError) as exc:
        st.error(f"Edit refused: {plain(exc, 300)}. The image shows the last valid grid.")
    c = st.columns(3)
    row = c[0].selectbox("Row", range(g), key=f"{key}::row")
    col = c[1].selectbox("Column", range(g), key=f"{key}::col")
    code = c[2].number_input("Code", value=int(grid[row, col]), step=1, key=f"{key}::code::{row}::{col}")
    if st.button("Set this cell's code"):
        if not 0 <= code < k:
            st.error(f"Code {code} is refused: this model's codebook has codes 0 to {k - 1}.")
        else:
            grid = grid.copy()
            grid[row, col] = code
            vqvae.set_grid(h, grid, "your edits")
            st.rerun()
with right:
    widgets.show_image(decode_grids(model, grid[None])[0], "decoded code grid", px=384)
vqvae.codebook_usage(h)
vqvae.prior_note(h)
