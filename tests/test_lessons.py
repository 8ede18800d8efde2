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
    # every combination of the parameters that belong to a widget or a page (model, step, the point), and all five
    combos = [keys for n in range(4) for keys in itertools.combinations(("model", "step", "z0"), n)]
    for keys in [*combos, tuple(others)]:
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


def _answer(at: AppTest, key: str, right: bool, handles) -> AppTest:
    step = lessons.LESSONS[key.split("::")[1]][1][int(key.split("::")[2]) - 1]
    answer = step.question.answer(handles)
    radio = at.radio(key=key)
    return radio.set_value(answer if right else next(c for c in radio.options if c != answer)).run()


def test_the_first_steps_explanation_cites_what_it_shows():
    """Step 1 shows traversal rows, not KL bars."""
    step = lessons.LESSONS["beta"][1][0]
    at = _answer(open_lesson({"lesson": "beta", "step": "1"}), "lesson::beta::1", True, _handles(step))
    assert at.success and not at.get("plotly_chart")
    assert "bar" not in at.success[0].value and "label" in at.success[0].value


def test_the_beta_vae_is_compared_with_the_plain_vae_it_names():
    step = lessons.LESSONS["beta"][1][1]
    at = open_lesson({"lesson": "beta", "step": "2"})
    assert any("plain VAE" in m.value for m in at.markdown)
    assert len(at.get("plotly_chart")) == 2
    captions = " ".join(c.value for c in at.caption)
    assert "dsprites-vae" in captions and "dsprites-beta-vae" in captions
    at = _answer(at, "lesson::beta::2", True, _handles(step))
    assert at.success and str(lessons.active_count(_handles(step)[1])) in at.success[0].value


def _row_labels(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if re.match(r"z\d+ · ", m.value)]


def test_the_rows_are_not_named_while_the_question_about_them_is_open():
    """Step 3 asks which latent moves the shape left and right: "z7 · posX" on its row was the answer."""
    step = lessons.LESSONS["beta"][1][2]
    factors = ("posX", "posY", "scale", "shape", "orientation")
    at = open_lesson({"lesson": "beta", "step": "3"})
    assert len(_row_labels(at)) == 10 and not any(f in label for label in _row_labels(at) for f in factors)
    at = _answer(at, "lesson::beta::3", False, _handles(step))
    assert not any(f in label for label in _row_labels(at) for f in factors)
    next(b for b in at.button if b.label == "Show the answer").click().run()
    assert at.info and any("posX" in label for label in _row_labels(at))  # the answer shown: the names too
    at = _answer(at, "lesson::beta::3", True, _handles(step))
    assert at.success and any("posX" in label for label in _row_labels(at))


def test_a_revealed_answer_is_text_not_a_list():
    """"10. The KL ..." rendered as a numbered list."""
    step = lessons.LESSONS["beta"][1][0]
    at = _answer(open_lesson({"lesson": "beta", "step": "1"}), "lesson::beta::1", False, _handles(step))
    next(b for b in at.button if b.label == "Show the answer").click().run()
    answer = step.question.answer(_handles(step))
    assert at.info[0].value.startswith(f"{answer}\\.")  # escaped: not the start of a list


def test_the_sweeps_answer_speaks_only_of_the_betas_trained():
    """Step 5 said "above it" of the largest β trained (16): no β above it was trained."""
    points = lessons.sweep_points()
    if not points:
        pytest.skip("no beta sweep shipped")
    at = _answer(open_lesson({"lesson": "beta", "step": "5"}), "lesson::beta::5", False, [])
    next(b for b in at.button if b.label == "Show the answer").click().run()
    text = at.info[0].value
    trained = {float(p["beta"]) for p in points}
    assert {float(b) for b in re.findall(r"β = ([\d.]+)", text)} <= trained, text
    if max(points, key=lambda p: p["mig"])["beta"] == max(trained):
        assert "above it" not in text and "largest trained" in text


def test_the_sidebar_follows_the_model_a_step_is_about():
    """Classroom round 2: the sidebar kept showing dsprites-beta-vae ("active dims 6") while step 1 asked about the
    plain VAE."""
    at = open_lesson({"lesson": "beta", "step": "1"})
    step = lessons.LESSONS["beta"][1][0]
    assert at.sidebar.selectbox(key="model").value == step.models[0]
    assert at.query_params["model"] == step.models[0]


def test_the_smile_lesson_s_answers_are_read_from_the_stored_edits():
    """Each step of ?lesson=smile opens with its table, strip or bars, and its answer is the edits.json's own: no
    single latent of faces-vae smiles alone, the attribute vector barely moves the mouth, the edit moves several
    latents, the beta-VAE's smile is on one axis, and one latent of the beta-TCVAE of the expressive faces is the
    smile."""
    import json

    from vae_core.checkpoints import PRETRAINED_DIR

    figures = json.loads((PRETRAINED_DIR / "faces-vae" / "edits.json").read_text())["factors"]["mouth"]
    rows = figures["rows"]
    tcvae = json.loads((PRETRAINED_DIR / "faces-beta-tcvae" / "edits.json").read_text())["factors"]["mouth"]["rows"]
    label, slider = next((k, v) for k, v in tcvae.items() if k.startswith("best single latent"))
    assert slider["on_target"] >= 0.8 and slider["side_effects"] <= 0.1  # issue #34: the smile has a slider
    steps = lessons.LESSONS["smile"][1]
    for number, step in enumerate(steps, 1):
        at = open_lesson({"lesson": "smile", "step": str(number)})
        right = step.question.answer(_handles(step))
        best = next(v for k, v in rows.items() if k.startswith("best single latent"))
        expected = {1: "none of them" if best["on_target"] < 0.8 or best["side_effects"] > 0.1 else right,
                    2: lessons._bucket(rows["attribute vector"]["on_target"]),
                    3: str(sum(m > lessons.MOVED for m in figures["move_per_latent"])),
                    4: "faces-beta-vae", 5: label.split("(")[-1].rstrip(")"),
                    6: "dsprites-beta-tcvae"}[number]  # posX: one latent's own
        assert right == expected, number
        if step.show == "edits":
            assert any("held-out image edited" in c for image in at.image for c in image.captions), number
            assert at.dataframe, number  # the four ways side by side
        if step.show == "edit_moves":
            assert sum("move per latent" in c.proto.spec for c in at.get("plotly_chart")) == 2
        radio = at.radio(key=f"lesson::smile::{number}")
        radio.set_value(right).run()
        assert at.success, number
