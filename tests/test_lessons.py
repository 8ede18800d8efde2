"""The lessons page: opened by one link, the step in the address, and answers checked against the models."""

from __future__ import annotations

import itertools
import re

import pytest
from streamlit.testing.v1 import AppTest

from app import lessons, models
from vae_core.checkpoints import list_models

from .test_app import APP, assert_healthy

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


def open_lesson(query: dict) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update(query)
    at.run()
    assert_healthy(at)
    return at


def _handles(step):
    entries = {e.name: e for e in list_models() if e.error is None}
    return [models.open_model(entries[name]) for name in step.models]


def test_one_link_opens_a_lesson_at_its_step():
    at = open_lesson({"lesson": "beta", "step": "3"})
    assert at.title[0].value == "What β buys"
    assert "Step 3 of 5" in at.get("progress")[0].proto.text
    assert at.query_params["step"] == "3"
    next(b for b in at.button if b.label == "Next step").click().run()
    assert "Step 4 of 5" in at.get("progress")[0].proto.text and at.query_params["step"] == "4"


def test_a_lesson_link_opens_with_any_other_parameter_of_the_app():
    """`/?model=dsprites-vae&lesson=beta` is the link a teacher copies after choosing a model: `model=` is bound to
    the sidebar's picker, and handing it to the lesson page raised StreamlitAPIException."""
    others = {"model": "dsprites-vae", "step": "2", "z0": "0.5", "codes": "0,1", "condition": "1"}
    for n in range(len(others) + 1):
        for keys in itertools.combinations(others, n):
            at = open_lesson({"lesson": "beta", **{k: others[k] for k in keys}})
            assert at.title[0].value == "What β buys", keys
            assert at.query_params["step"] == ("2" if "step" in keys else "1")


def test_the_shape_position_question_is_checked_against_the_mutual_information():
    at = open_lesson({"lesson": "beta", "step": "3"})
    step = lessons.LESSONS["beta"][1][2]
    right = step.question.answer(_handles(step))
    names = models.latent_names(_handles(step)[0])
    assert right == f"z{max((n for n in names if n.factors[:1] == ('posX',)), key=lambda n: n.share).dim}"
    radio = at.radio(key="lesson::beta::3")
    wrong = next(c for c in radio.options if c != right)
    radio.set_value(wrong).run()
    assert at.warning and not at.success
    at.radio(key="lesson::beta::3").set_value(right).run()
    assert at.success and "posX" in at.success[0].value


def test_the_collapse_count_is_the_models_own():
    at = open_lesson({"lesson": "collapse", "step": "1"})
    step = lessons.LESSONS["collapse"][1][0]
    h = _handles(step)[0]
    collapsed = h.latent_dim - lessons.active_count(h)
    assert collapsed > 0
    at.radio(key="lesson::collapse::1").set_value(str(collapsed)).run()
    assert at.success
    at.radio(key="lesson::collapse::1").set_value(str(collapsed + 1)).run()
    assert not at.success


def test_an_unknown_lesson_or_step_says_so_and_opens_the_first():
    at = open_lesson({"lesson": "[x](http://evil)", "step": "99"})
    assert any("There is no lesson" in w.value for w in at.warning)
    assert not re.search(r"(?<!\\)\]\(", at.warning[0].value)  # the link's text is not a link
    assert at.query_params["lesson"] == "beta" and at.query_params["step"] == "5"


def test_the_sweep_question_is_checked_against_the_shipped_sweep():
    points = lessons.sweep_points()
    if not points:
        pytest.skip("no beta sweep shipped")
    best = max(points, key=lambda p: p["mig"])["beta"]
    at = open_lesson({"lesson": "beta", "step": "5"})
    at.radio(key="lesson::beta::5").set_value(f"{best:g}").run()
    assert at.success
