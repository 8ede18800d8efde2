"""A researcher's own images: a model trained on a folder, then opened in the app with its data named by the person
who starts the server ($VAE_EXPLORER_DATA), or without it (the page says what to set, and no file is read)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image, ImageDraw

from vae_core import checkpoints as ckpt
from vae_core.data import DATA_ENV, get_dataset, named_location
from vae_core.projection import load_projection, write_projection
from vae_core.train import train

from .helpers import tiny_config
from .test_app import assert_healthy, go_to, open_app

SERVED = "own_root"  # the model folders the app lists in this module (conftest.served_models)
CLASSES = ("circles", "crosses")

pytestmark = pytest.mark.usefixtures("torch_threads_restored")


def drawn_shapes(root, per_class: int = 20):
    """Black drawings on white, one sub-folder per class (as a new researcher's set), and one damaged file."""
    rng = np.random.default_rng(0)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True)
        for i in range(per_class):
            image = Image.new("RGB", (80, 80), "white")
            draw = ImageDraw.Draw(image)
            x, y, r = (int(v) for v in rng.integers((25, 25, 8), (55, 55, 20)))
            if cls == "circles":
                draw.ellipse([x - r, y - r, x + r, y + r], outline="black", width=4)
            else:
                draw.line([x - r, y - r, x + r, y + r], fill="black", width=4)
                draw.line([x - r, y + r, x + r, y - r], fill="black", width=4)
            image.save(root / cls / f"{i:02d}.png")
    (root / "circles" / "damaged.png").write_bytes(b"\x89PNG not really")
    return root


@pytest.fixture(scope="module")
def own_root(tmp_path_factory):
    data = drawn_shapes(tmp_path_factory.mktemp("data") / "myshapes")
    root = tmp_path_factory.mktemp("own_models")
    dataset = get_dataset(f"folder:{data}", image_size=64, channels=1)
    exp = tiny_config(64, 1, 3, dataset=f"folder:{data}", steps=20, batch_size=8, log_every=10)
    train(exp, root / "myshapes", device="cpu", progress=False, dataset=dataset)
    model = ckpt.load_model(root / "myshapes").model
    write_projection(root / "myshapes", model, dataset, with_umap=False)
    return root


@pytest.fixture
def data_folder(own_root, tmp_path_factory):
    return ckpt.load_config(own_root / "myshapes").train.dataset.split(":", 1)[1]


def test_a_folder_of_images_trains_with_its_classes_and_its_damaged_file_counted(own_root, data_folder):
    dataset = get_dataset(f"folder:{data_folder}", image_size=64, channels=1)
    assert dataset.label_names == CLASSES and dataset.num_images == 40 and len(dataset.skipped) == 1
    proj = load_projection(own_root / "myshapes")
    assert proj.num_points == 40 and len(set(proj.index.tolist())) == 40  # each image once, not 10,000 draws
    assert list(proj.label_names) == list(CLASSES)


def test_without_its_data_named_the_page_says_what_to_set_and_reads_nothing(monkeypatch, data_folder):
    from vae_core.data import own

    def refuse(*args, **kwargs):
        raise AssertionError("the app read a data folder nobody named")

    monkeypatch.delenv(DATA_ENV, raising=False)
    monkeypatch.setattr(own, "load_image_folder", refuse)
    at = open_app("explore", "myshapes")
    button = next(b for b in at.button if b.label == "Dataset example")
    assert button.disabled and f"{DATA_ENV}={data_folder}" in button.help
    go_to(at, "reconstruct")
    assert "Dataset example" not in at.radio(key="recon_src").options
    assert any("No dataset examples" in c.value and f"{DATA_ENV}={data_folder}" in c.value for c in at.caption)
    at.session_state["map_selection"] = {"points": [{"customdata": r} for r in range(5)]}
    go_to(at, "latent_map")
    assert_healthy(at)
    assert any("cannot be shown" in i.value and f"{DATA_ENV}={data_folder}" in i.value for i in at.info)
    assert any("Pictures on the map need" in c.value and f"{DATA_ENV}={data_folder}" in c.value for c in at.caption)


def test_with_its_data_named_the_examples_and_class_names_are_seen(monkeypatch, data_folder, tmp_path):
    moved = shutil.copytree(data_folder, tmp_path / "elsewhere" / "myshapes")  # a moved copy: the same last name
    for named in (data_folder, str(moved)):
        monkeypatch.setenv(DATA_ENV, named)
        at = open_app("explore", "myshapes")
        assert not next(b for b in at.button if b.label == "Dataset example").disabled
        assert any("dataset example #0" in c.value for c in at.caption)  # it opens on the data's own first image
        go_to(at, "reconstruct")
        assert "Dataset example" in at.radio(key="recon_src").options
        assert not any("No comparison with the training data" in i.value for i in at.info)


def test_the_maps_gallery_shows_the_images_with_their_class_names(monkeypatch, data_folder):
    monkeypatch.setenv(DATA_ENV, data_folder)
    at = open_app("explore", "myshapes")
    at.session_state["map_selection"] = {"points": [{"customdata": r} for r in range(8)]}
    go_to(at, "latent_map")
    assert not any("cannot be shown" in i.value for i in at.info)
    captions = [c for image in at.image for c in image.captions]
    assert len(captions) == 8 and set(captions) == set(CLASSES)  # the class names, not "label 0"


def test_the_map_carries_each_point_s_own_picture(monkeypatch, own_root, data_folder):
    """Map thumbnails: the sheet sent to the browser holds, for each pictured row, that row's image (the folder's
    own, by the projection's index), at half size."""
    import base64
    import io

    from app import map_chart

    dataset = get_dataset(f"folder:{data_folder}", image_size=64, channels=1)
    proj = load_projection(own_root / "myshapes")
    pictures = map_chart.pictures(proj.num_points, dataset, proj)
    rows = np.frombuffer(base64.b64decode(pictures["rows"]["bdata"]), "<i4")
    assert rows.tolist() == list(range(40)) and pictures["sheet"].startswith("data:image/png;base64,")
    sheet = np.asarray(Image.open(io.BytesIO(base64.b64decode(pictures["sheet"].split(",", 1)[1]))), np.float64)
    px, columns = pictures["px"], pictures["columns"]
    for i, row in enumerate(rows):
        image = np.asarray(dataset.images[proj.index[row]], np.float64)[0]
        halved = image.reshape(px, 2, px, 2).mean(axis=(1, 3)) * 255
        r, c = divmod(i, columns)
        assert np.abs(sheet[r * px:(r + 1) * px, c * px:(c + 1) * px] - halved).max() <= 1, row


def test_a_named_folder_is_found_by_its_path_or_its_last_name_and_nothing_else(tmp_path):
    (tmp_path / "a" / "shapes").mkdir(parents=True)
    (tmp_path / "b" / "shapes").mkdir(parents=True)
    named = [tmp_path / "a" / "shapes", tmp_path / "b" / "shapes"]
    assert named_location(str(tmp_path / "b" / "shapes"), named) == named[1]  # its own path first
    assert named_location("/home/someone/data/shapes", named) == named[0]  # a moved copy: the first of that name
    assert named_location("/etc", named) is None and named_location("/home/x/other", []) is None


def test_the_training_command_refuses_a_folder_of_one_image_and_a_labels_file_that_disagrees(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    Image.new("L", (64, 64), 255).save(one / "only.png")
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--dataset", f"folder:{one}", "--out",
                          str(tmp_path / "m"), "--steps", "1"], capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "1 readable image" in run.stderr and "at least 2" in run.stderr
    assert "Traceback" not in run.stderr
    labelled = drawn_shapes(tmp_path / "labelled", per_class=2)
    (labelled / "labels.csv").write_text("file,label\ncircles/00.png,round\ncircles/01.png,round\n"
                                         "crosses/00.png,pointy\nghost.png,round\n")
    with pytest.raises(ValueError, match=r"no row for 1 image\(s\): crosses/01.png.*ghost.png"):
        get_dataset(f"folder:{labelled}", image_size=64, channels=1)
    (labelled / "labels.csv").write_text("circles/00.png,round\ncircles/01.png,round\ncrosses/00.png,pointy\n"
                                         "crosses/01.png,pointy\n")
    assert get_dataset(f"folder:{labelled}", image_size=64, channels=1).label_names == ("pointy", "round")
