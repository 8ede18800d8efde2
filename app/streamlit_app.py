"""The latent-space explorer: `streamlit run app/streamlit_app.py`.

The router: it frames every page with the sidebar's model picker and card, picks the page files for the chosen
model's kind, then runs the chosen page.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts app/ on the path, not the repository
    sys.path.insert(0, str(ROOT))

import streamlit as st

from app import family, models, state, widgets

LESSON_PARAMS = ("lesson", "step")  # the address of a lesson's step: `/?lesson=beta&step=3`


def pages(h: models.Handle | None) -> list:
    """The pages for the chosen model. A kind may replace a page with its own file at the same address (a VQ-VAE's
    Explore is a code-grid editor: app/family/<kind>.py's `PAGES`); pages that do not apply to it stay in its menu
    and say why (its `NOT_FOR`)."""
    return [
        st.Page(family.page_file(h, "Explore", "views/explore.py"), title="Explore", icon=":material/tune:",
                default=True),
        st.Page("views/traversals.py", title="Traversals", icon=":material/grid_on:"),
        st.Page("views/interpolate.py", title="Interpolate", icon=":material/linear_scale:"),
        st.Page("views/latent_map.py", title="Latent map", icon=":material/scatter_plot:"),
        st.Page("views/disentanglement.py", title="Disentanglement", icon=":material/compare:"),
        st.Page(family.page_file(h, "Reconstruct", "views/reconstruct.py"), title="Reconstruct",
                icon=":material/image_search:", url_path="reconstruct"),
        st.Page("views/lesson.py", title="Lessons", icon=":material/school:"),
    ]


models.configure_process()
# an emoji: the browser draws it itself (a ":material/...:" icon makes Streamlit's page fetch it from Google)
st.set_page_config(page_title="VAE latent-space explorer", page_icon="🧭", layout="wide")
handle = state.sidebar()  # first: which page files there are depends on the chosen model's kind
page = st.navigation(pages(handle))
# a frame around every picture: a white image (a blank decode, a white background) would vanish into the page;
# the uploaders' refused chips (widgets.UPLOAD_STYLE)
st.markdown("<style>[data-testid='stImage'] img { border: 1px solid #d0d3da; border-radius: 0.25rem; }\n"
            f"{widgets.UPLOAD_STYLE}</style>", unsafe_allow_html=True)
if "lesson" in st.query_params and page.url_path == "":  # `/?lesson=beta`: one link opens a lesson for a class
    # only the lesson's own parameters are handed over: the Explore point and a code grid belong to other pages, and
    # the sidebar writes `model=` back itself (handing over a parameter bound to a widget raised an exception)
    st.switch_page("views/lesson.py", query_params={key: st.query_params[key] for key in LESSON_PARAMS
                                                     if key in st.query_params})
page.run()
