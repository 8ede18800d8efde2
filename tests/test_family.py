"""The rest of the VAE family: conditional VAE, VQ-VAE, VAE-GAN, and the sharpness figure."""

import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from vae_core import checkpoints as ckpt
from vae_core import kinds
from vae_core.card_figures import laplacian_variance, sharpness
from vae_core.condition_eval import condition_leak, swap_accuracy, train_condition_judge
from vae_core.config import ConfigError, ExperimentConfig, ModelConfig, TrainConfig
from vae_core.data import get_dataset
from vae_core.data.base import GroundTruthDataset
from vae_core.family import build_model
from vae_core.models.cvae import (
    CVAE,
    ConditionError,
    adversary_terms,
    condition_column,
    condition_index,
    condition_values,
)
from vae_core.models.vaegan import VAEGAN, vaegan_terms
from vae_core.models.vqvae import (
    VQVAE,
    CodeError,
    format_code_grid,
    parse_code_grid,
    perplexity,
    prior_code_grids,
    vq_figures,
    vq_terms,
)
from vae_core.train import dataset_info, train

SHAPES = ("square", "ellipse", "heart")


def small(**kw) -> ModelConfig:
    return ModelConfig(image_size=32, conv_channels=(8, 8, 16, 16), hidden_dim=32, latent_dim=4, **kw)


def small_vq(**options) -> ModelConfig:
    """A small VQ-VAE's network (`options`: its own, VQOptions): the kind named once here."""
    return small(kind="vq-vae", options=options)


def small_cvae(**options) -> ModelConfig:
    """A small conditional VAE's network on the three dSprites shapes (`options`: more of CVAEOptions): the kind
    named once here."""
    return small(kind="cvae", options={"condition": "shape", "condition_names": SHAPES, **options})


# ---- VQ-VAE

def test_reconstruction_gradient_reaches_the_encoder_through_the_quantiser():
    torch.manual_seed(0)
    model = VQVAE(small_vq(codebook_size=16, code_dim=4))
    x = torch.rand(4, 1, 32, 32).round()
    out = model(x)
    # the reconstruction alone: without the straight-through estimator argmin would cut the encoder off
    torch.nn.functional.binary_cross_entropy_with_logits(out["logits"], x).backward()
    grads = [p.grad for p in model.encoder.parameters()]
    assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0
    # and the value the decoder saw is the quantised one, not the encoder's output
    assert torch.equal(out["z_st"], out["z_q"]) or torch.allclose(out["z_st"], out["z_q"], atol=1e-6)
    assert not torch.allclose(out["z_e"], out["z_q"])


def test_codebook_gets_its_own_loss_and_the_encoder_the_commitment():
    torch.manual_seed(0)
    model = VQVAE(small_vq(codebook_size=16, code_dim=4))
    x = torch.rand(4, 1, 32, 32).round()
    vq_terms(model, x, commitment=0.25)["total"].backward()
    assert float(model.quantizer.codebook.grad.abs().sum()) > 0


def test_indices_map_back_to_the_same_vectors():
    torch.manual_seed(0)
    model = VQVAE(small_vq(codebook_size=16, code_dim=4))
    with torch.no_grad():
        model.quantizer.codebook.copy_(torch.randn(16, 4))
    out = model(torch.rand(3, 1, 32, 32))
    assert torch.equal(out["z_q"], model.quantizer.codebook[out["indices"]].permute(0, 3, 1, 2))
    grid = torch.randint(0, 16, (2, 4, 4))
    vectors = model.quantizer.lookup(grid)
    assert torch.equal(model.quantizer.nearest(vectors), grid)  # code vectors quantise to themselves


def test_ema_codebook_moves_towards_the_outputs_assigned_to_it():
    torch.manual_seed(0)
    model = VQVAE(small_vq(codebook_size=8, code_dim=4, vq_ema=True)).train()
    assert not isinstance(model.quantizer.codebook, torch.nn.Parameter)
    z_e = torch.full((2, 4, 4, 4), 3.0)
    before = model.quantizer.codebook.clone()
    for _ in range(50):
        idx = model.quantizer(z_e)["indices"]
    code = int(idx[0, 0, 0])
    assert (model.quantizer.codebook[code] - 3.0).abs().max() < (before[code] - 3.0).abs().max() / 2


def test_out_of_range_codes_are_refused_with_a_message():
    model = VQVAE(small_vq(codebook_size=16, code_dim=4))
    with pytest.raises(CodeError, match=r"outside the codebook.*0\.\.15"):
        model.decode_indices(np.full((4, 4), 16))
    with pytest.raises(CodeError, match="outside the codebook"):
        model.decode_indices(np.full((4, 4), -1))
    with pytest.raises(CodeError, match="4x4"):
        model.decode_indices(np.zeros((3, 3), int))
    with pytest.raises(CodeError, match="16 cells"):
        parse_code_grid("1,2,3", model)
    with pytest.raises(CodeError, match="whole numbers"):
        parse_code_grid("a," * 16, model)
    grid = np.arange(16).reshape(4, 4)
    assert np.array_equal(parse_code_grid(format_code_grid(grid), model), grid)
    assert model.decode_indices(grid).shape == (1, 1, 32, 32)


def test_perplexity_counts_the_codes_in_use():
    assert perplexity(torch.zeros(100, dtype=torch.long), 8) == pytest.approx(1.0)
    assert perplexity(torch.arange(8).repeat(10), 8) == pytest.approx(8.0)


def test_a_short_vq_training_uses_more_than_one_code(tmp_path):
    exp = ExperimentConfig(
        model=replace(small_vq(codebook_size=32, code_dim=8, revive_every=10), image_size=64),
        train=TrainConfig(dataset="dsprites", objective="vq-vae", steps=60, batch_size=16, log_every=20,
                          checkpoint_every=60),
        dataset=dataset_info(get_dataset("dsprites")),
    )
    card = train(exp, tmp_path / "vq", device="cpu", progress=False)
    assert card["final"]["perplexity"] > 2.0
    assert card["final"]["unused_codes"] < 31
    loaded = ckpt.load_model(tmp_path / "vq")
    assert isinstance(loaded.model, VQVAE)
    figures = vq_figures(loaded.model, get_dataset("dsprites"), n=64, seed=0)
    assert len(np.nonzero(figures["code_counts"])[0]) > 1
    log = (tmp_path / "vq" / ckpt.LOG_FILE).read_text().splitlines()
    assert log[0].endswith("vq,perplexity,revived") and len(log) == 4
    grids = prior_code_grids(loaded.model, 5, seed=1)
    assert grids.shape == (5, 8, 8) and grids.max() < 32


# ---- conditional VAE

def test_condition_names_and_values_are_checked_with_the_choices_listed():
    dsprites = get_dataset("dsprites")
    assert condition_values(dsprites, "shape") == SHAPES
    with pytest.raises(ConditionError, match="it has: shape, scale, orientation, posX, posY"):
        condition_values(dsprites, "colour")
    with pytest.raises(ConditionError, match="it has"):
        condition_values(dsprites, "color")  # a factor with one value cannot condition
    with pytest.raises(ConditionError, match="no factors or labels"):
        condition_values(type("Bare", (), {"name": "bare", "factor_names": (), "factor_sizes": ()})(), "label")
    assert condition_index(SHAPES, "heart") == 2 and condition_index(SHAPES, 1) == 1
    with pytest.raises(ConditionError, match="choose one of: square, ellipse, heart"):
        condition_index(SHAPES, "star")
    with pytest.raises(ConditionError, match="choose one of"):
        condition_index(SHAPES, 3)
    factors = np.array([[0, 2, 0, 0, 0, 0], [0, 1, 5, 0, 0, 0]])
    assert condition_column(dsprites, "shape", factors).tolist() == [2, 1]


def test_the_training_command_refuses_an_unknown_condition(tmp_path):
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--out", str(tmp_path / "m"), "--objective",
                          "cvae", "--condition", "star", "--steps", "1"], capture_output=True, text=True,
                         check=False)
    assert run.returncode != 0 and "unknown condition 'star'" in run.stderr and "shape" in run.stderr
    with pytest.raises(ConfigError, match="a cvae needs the factor"):
        ModelConfig(kind="cvae")
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--out", str(tmp_path / "m"), "--objective",
                          "cvae", "--steps", "1"], capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "--objective cvae needs --condition" in run.stderr and "Traceback" not in run.stderr


def test_one_pass_under_each_condition_is_each_conditions_own_decode():
    from vae_core.explore import decode, decode_under_each_condition

    torch.manual_seed(0)
    model = CVAE(small_cvae()).eval()
    z = np.random.default_rng(0).normal(size=4).astype(np.float32)
    strip = decode_under_each_condition(model, z)
    assert strip.shape == (3, 1, 32, 32)
    for c in range(3):
        np.testing.assert_allclose(strip[c], decode(model.bound(c), z[None])[0], atol=1e-6)
    assert not np.allclose(strip[0], strip[2])


def test_cvae_sees_the_condition_in_both_networks():
    torch.manual_seed(0)
    model = CVAE(small_cvae())
    x = torch.rand(2, 1, 32, 32)
    mu0, _ = model.encode(x, 0)
    mu1, _ = model.encode(x, 1)
    assert not torch.allclose(mu0, mu1)
    z = torch.zeros(1, 4)
    assert not torch.allclose(model.decode(z, 0), model.decode(z, 2))
    bound = model.bound("heart")
    assert torch.equal(bound.decode(z), model.decode(z, 2))
    with pytest.raises(ConditionError):
        model.bound("star")
    for bad in (3, -1, torch.tensor([0, 3])):
        with pytest.raises(ConditionError, match="choose 0..2"):
            model.decode(torch.zeros(2, 4), bad)


class TwoShapes(GroundTruthDataset):
    """A filled square or a cross, 8 pixels wide, at one of 12 x 12 positions on a 32x32 canvas: a dataset on
    which a conditional VAE learns in seconds what dSprites takes hours to teach it (rotation, tiny shapes)."""

    name = "two-shapes"
    channels = 1
    image_size = 32
    factor_names = ("shape", "x", "y")
    factor_sizes = (2, 12, 12)
    shape_names = ("square", "cross")

    def images_from_factors(self, factors):
        out = np.zeros((len(factors), 1, 32, 32), np.float32)
        for i, (shape, x, y) in enumerate(np.asarray(factors)):
            x0, y0 = 2 + 2 * x, 2 + 2 * y
            if shape == 0:
                out[i, 0, y0:y0 + 8, x0:x0 + 8] = 1
            else:
                out[i, 0, y0 + 3:y0 + 5, x0:x0 + 8] = 1
                out[i, 0, y0:y0 + 8, x0 + 3:x0 + 5] = 1
        return out


@pytest.fixture(scope="module")
def two_shapes_judge():
    return train_condition_judge(TwoShapes(), "shape", steps=150)


def test_the_swap_judge_tells_the_shapes_and_is_the_same_on_every_run():
    data = TwoShapes()
    rng_before = torch.get_rng_state()
    judge, accuracy = train_condition_judge(data, "shape", steps=150)
    assert accuracy > 0.97
    assert torch.equal(torch.get_rng_state(), rng_before)  # a judge leaves the caller's random numbers alone
    again, _ = train_condition_judge(data, "shape", steps=150)
    assert all(torch.equal(a, b) for a, b in zip(judge.state_dict().values(), again.state_dict().values()))
    images, factors = data.sample(200, np.random.default_rng(5))
    soft = torch.nn.functional.avg_pool2d(torch.from_numpy(images), 3, 1, 1)
    with torch.inference_mode():  # a decoder's soft edges are judged by the shape they draw
        assert (judge(soft).argmax(1).numpy() == factors[:, 0]).mean() > 0.9
    with pytest.raises(ConditionError, match="it has"):
        train_condition_judge(data, "colour", steps=1)


def test_with_the_latent_fixed_the_condition_alone_swaps_the_shape(tmp_path, two_shapes_judge):
    """A short training run: with z fixed (an encoded image), decoding under each condition draws that
    condition's shape at the image's position, i.e. the decoded image is closest to the rendered sprite of the
    chosen shape at the same position."""
    data = TwoShapes()
    exp = ExperimentConfig(
        model=ModelConfig(image_size=32, conv_channels=(16, 16, 32, 32), hidden_dim=64, latent_dim=2, kind="cvae",
                          options={"condition": "shape", "condition_names": data.shape_names}),
        train=TrainConfig(dataset="two-shapes", objective="cvae", steps=600, batch_size=32, lr=1e-3, log_every=100,
                          checkpoint_every=600),
        dataset=dataset_info(data))
    card = train(exp, tmp_path / "cvae", device="cpu", progress=False, dataset=data)
    assert card["final"]["kl"] > 1.0  # the latent is in use (it holds the position), not collapsed
    model = ckpt.load_model(tmp_path / "cvae").model
    factors = data.sample_factors(40, np.random.default_rng(1))
    hits = 0
    with torch.inference_mode():
        z, _ = model.encode(torch.from_numpy(data.images_from_factors(factors)), torch.from_numpy(factors[:, 0]))
        for c in range(2):
            decoded = model.decode_image(z, c).numpy()
            renders = [data.images_from_factors(np.column_stack([np.full(40, s), factors[:, 1:]])) for s in range(2)]
            dist = np.stack([((decoded - r) ** 2).reshape(40, -1).sum(1) for r in renders], 1)
            hits += int((dist.argmin(1) == c).sum())
    assert hits >= 0.9 * 80, f"only {hits}/80 decodes were closest to the chosen shape"
    assert swap_accuracy(model, data, "shape", n=40, judge=two_shapes_judge)["accuracy"] >= 0.85  # the card's figure
    assert card["final"]["condition_accuracy"] > 0.9  # and the CVAE, used as a classifier, knows the shapes


def test_the_adversary_learns_from_its_own_loss_and_the_encoder_from_the_leak():
    torch.manual_seed(0)
    adversary = CVAE(small_cvae(adversary=1.0)).adversary
    mu = torch.randn(64, 4, requires_grad=True)
    c = torch.randint(0, 3, (64,))

    def grads(weight):
        adversary.zero_grad()
        mu.grad = None
        terms = adversary_terms(adversary, mu, c, weight)
        terms["loss"].backward()
        return terms, [p.grad.clone() for p in adversary.parameters()], mu.grad

    _, adversary_unweighted, mu_unweighted = grads(0.0)
    terms, adversary_weighted, mu_weighted = grads(5.0)
    assert all(torch.equal(a, b) for a, b in zip(adversary_unweighted, adversary_weighted))  # the leak trains no adversary
    assert mu_unweighted is None or not mu_unweighted.any()  # and the adversary's own loss moves no encoder
    assert terms["leak"] > 0 and mu_weighted.abs().sum() > 0
    with torch.no_grad():  # a step of the latent against the leak makes the adversary's guess less sure
        assert adversary_terms(adversary, mu - 0.5 * mu_weighted, c, 5.0)["leak"] < terms["leak"]
        last = adversary[-1]
        last.weight.zero_(), last.bias.zero_()  # a guess that is uniform whatever the latent: nothing leaks
        uniform = adversary_terms(adversary, mu, c, 5.0)
    assert abs(float(uniform["leak"])) < 1e-6 and abs(float(uniform["adversary"]) - np.log(3)) < 1e-6


def test_a_cvae_trains_beside_its_adversary_and_logs_both(tmp_path):
    data = TwoShapes()
    exp = ExperimentConfig(
        model=ModelConfig(image_size=32, conv_channels=(8, 8, 16, 16), hidden_dim=32, latent_dim=2, kind="cvae",
                          options={"condition": "shape", "condition_names": data.shape_names, "adversary": 3.0}),
        train=TrainConfig(dataset="two-shapes", objective="cvae", steps=40, batch_size=16, log_every=20,
                          checkpoint_every=40),
        dataset=dataset_info(data))
    torch.manual_seed(exp.train.seed)  # the initial weights, as `train` draws them
    before = build_model(exp.model)
    folder = tmp_path / "cvae"
    card = train(exp, folder, device="cpu", progress=False, dataset=data)
    assert ckpt.load_config(folder).model.options.adversary == 3.0 and "adversary" not in card  # one place: the config
    rows = (tmp_path / "cvae" / ckpt.LOG_FILE).read_text().splitlines()
    header = rows[0].split(",")
    assert {"leak", "adversary"} <= set(header)
    last = dict(zip(header, rows[-1].split(",")))
    assert 0.0 < float(last["adversary"]) < 5.0 and float(last["leak"]) >= 0.0
    trained = ckpt.load_model(tmp_path / "cvae").model.adversary  # saved with the model, and trained
    assert any(not torch.equal(a, b) for a, b in zip(before.adversary.parameters(), trained.parameters()))


def test_only_a_cvae_takes_a_condition_adversary(tmp_path):
    with pytest.raises(ConfigError, match="unknown key.*adversary.*for a vae"):
        ModelConfig(options={"adversary": 1.0})
    with pytest.raises(TypeError):  # no longer a training setting of every kind
        TrainConfig(objective="vae", adversary=1.0)
    with pytest.raises(ConfigError, match="adversary=-1"):
        small_cvae(adversary=-1.0)
    assert small_cvae(adversary=2.0).options.has_adversary and not small_cvae().options.has_adversary
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--out", str(tmp_path / "m"), "--objective",
                          "beta-vae", "--adversary", "2", "--steps", "1"], capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "--adversary is an option of a cvae" in run.stderr
    assert "Traceback" not in run.stderr


class _PlacedShapes(torch.nn.Module):
    """A CVAE stand-in whose latent is the sprite's position, and with `leaks` also its shape."""

    def __init__(self, leaks: bool):
        super().__init__()
        self.leaks = leaks
        self.anchor = torch.nn.Parameter(torch.zeros(1))

    def encode(self, x, c):
        rows = x[:, 0].amax(2).argmax(1).float()
        cols = x[:, 0].amax(1).argmax(1).float()
        shape = c.float() if self.leaks else torch.zeros_like(rows)
        return torch.stack([rows, cols, shape], 1), None


def test_condition_leak_finds_a_condition_the_latent_holds_and_none_it_does_not():
    data = TwoShapes()
    held = condition_leak(_PlacedShapes(True), data, "shape", n=800)
    free = condition_leak(_PlacedShapes(False), data, "shape", n=800)
    assert held["accuracy"] > 0.95
    assert free["accuracy"] < free["chance"] + 0.1 and 0.4 < free["chance"] < 0.65
    assert held["scored_on"] == 200 and held["fitted_on"] == 600
    with pytest.raises(ConditionError, match="it has"):
        condition_leak(_PlacedShapes(True), data, "colour", n=80)


# ---- VAE-GAN and sharpness

def test_vaegan_discriminator_learns_only_from_its_own_loss():
    torch.manual_seed(0)
    model = VAEGAN(small(kind="vae-gan", channels=3, likelihood="gaussian"))
    x = torch.rand(4, 3, 32, 32)

    def grad_sum(module):
        return sum(float(p.grad.abs().sum()) for p in module.parameters() if p.grad is not None)

    terms = vaegan_terms(model, x, torch.Generator().manual_seed(0), feature_weight=1.0, gan_weight=1.0, beta=1.0)
    assert torch.allclose(terms["total"], terms["generator_loss"] + terms["disc_loss"])
    terms["generator_loss"].backward()  # KL, pixel and feature reconstruction, fooling D
    assert grad_sum(model.discriminator) == 0
    assert grad_sum(model.encoder) > 0 and grad_sum(model.decoder) > 0
    model.zero_grad()
    terms = vaegan_terms(model, x, torch.Generator().manual_seed(0), feature_weight=1.0, gan_weight=1.0, beta=1.0)
    terms["disc_loss"].backward()  # telling data from reconstructions and samples
    assert grad_sum(model.discriminator) > 0
    assert grad_sum(model.encoder) == 0 and grad_sum(model.decoder) == 0
    assert terms["feature"] > 0 and terms["gan"] > 0


def test_sharpness_is_lower_for_a_blurred_image():
    rng = np.random.default_rng(0)
    sharp = torch.from_numpy(rng.random((2, 1, 32, 32)).round().astype(np.float32))
    blurred = torch.nn.functional.avg_pool2d(sharp, 3, 1, 1)
    assert (laplacian_variance(blurred) < laplacian_variance(sharp) / 4).all()


@pytest.mark.parametrize("kind", ["cvae", "cvae+adversary", "vq-vae", "vae-gan"])
def test_each_kind_saves_and_loads_strictly(tmp_path, kind):
    kind, adversary = kind.split("+")[0], kind.endswith("+adversary")
    conditional = kinds.kind(kind).conditional
    options = {"condition": "shape", "condition_names": SHAPES, "adversary": 2.0 if adversary else 0.0}
    cfg = small(kind=kind, options=options if conditional else None)
    exp = ExperimentConfig(model=cfg, train=TrainConfig(objective=kind))
    model = build_model(cfg)
    ckpt.save_model(tmp_path / kind, model, exp, {"name": kind})
    loaded = ckpt.load_model(tmp_path / kind)
    assert type(loaded.model) is type(model) and loaded.config == exp
    for a, b in zip(model.state_dict().values(), loaded.model.state_dict().values()):
        assert torch.equal(a, b)
    figures = sharpness(loaded.model, get_dataset("digits", image_size=cfg.image_size), n=8)
    assert figures["data"] > 0 and figures["reconstructions"] >= 0 and figures["images"] == 8


def test_sharpness_figures_for_a_model():
    model = build_model(ModelConfig(conv_channels=(8, 8, 16, 16), hidden_dim=32, latent_dim=4))
    s = sharpness(model, get_dataset("dsprites"), n=16)
    assert s["data"] > s["reconstructions"] >= 0 and s["images"] == 16


def test_cvae_metrics_representation_gets_the_true_condition():
    from vae_core.condition_eval import true_condition_representation
    from vae_core.metrics import FactorCodes

    torch.manual_seed(0)
    model = CVAE(ModelConfig(conv_channels=(4, 4, 8, 8), hidden_dim=16, latent_dim=3, kind="cvae",
                             options={"condition": "shape", "condition_names": SHAPES})).eval()
    dataset = get_dataset("dsprites")
    scored, represent = true_condition_representation(model, dataset, "shape")
    codes = FactorCodes(scored, represent, cache=False)
    factors = dataset.sample_factors(6, np.random.default_rng(0))
    with torch.inference_mode():
        expected = model.encode(torch.from_numpy(dataset.images_from_factors(factors)),
                                torch.from_numpy(factors[:, 1]))[0].numpy()
    assert np.allclose(codes(factors), expected, atol=1e-5)
    assert scored.num_images == dataset.num_images and scored.varying_factors == dataset.varying_factors


def test_a_vaegan_starts_from_its_vae(tmp_path):
    from vae_core.family import init_from

    torch.manual_seed(0)
    vae_cfg = small(channels=3, likelihood="gaussian")
    vae = build_model(vae_cfg)
    ckpt.save_model(tmp_path / "vae", vae, ExperimentConfig(model=vae_cfg, train=TrainConfig(objective="vae")))
    gan = build_model(replace(vae_cfg, kind="vae-gan", options=None))  # the kind's own defaults
    fresh_d = {k: v.clone() for k, v in gan.discriminator.state_dict().items()}
    copied = init_from(gan, str(tmp_path / "vae"))
    assert set(copied) == set(vae.state_dict())
    for k, v in vae.state_dict().items():
        assert torch.equal(gan.state_dict()[k], v)
    assert all(torch.equal(gan.discriminator.state_dict()[k], v) for k, v in fresh_d.items())
    run = subprocess.run([sys.executable, "-m", "vae_core.train", "--out", str(tmp_path / "g"), "--dataset", "faces",
                          "--objective", "vae-gan", "--init-from", str(tmp_path / "nowhere"), "--steps", "1"],
                         capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "nowhere" in run.stderr and "Traceback" not in run.stderr


class _FakeCVAE(torch.nn.Module):
    """z is the image itself; the decoder either draws the asked shape where the sprite sits, or ignores the
    condition and redraws the image (a latent that holds the shape): the two ends of the swap test."""

    def __init__(self, data, obeys_condition: bool):
        super().__init__()
        self.data, self.obeys = data, obeys_condition
        self.anchor = torch.nn.Parameter(torch.zeros(1))  # a device to read

    def encode(self, x, c):
        return x.flatten(1), None

    def decode_image(self, z, c):
        images = z.reshape(-1, 1, 32, 32)
        if not self.obeys:
            return images
        rows = images[:, 0].amax(2).argmax(1).numpy()  # the sprite's top row and left column
        cols = images[:, 0].amax(1).argmax(1).numpy()
        factors = np.column_stack([np.full(len(rows), c), (cols - 2) // 2, (rows - 2) // 2])
        return torch.from_numpy(self.data.images_from_factors(factors))


def test_swap_accuracy_counts_only_switched_decodes(two_shapes_judge):
    data = TwoShapes()
    obeys = swap_accuracy(_FakeCVAE(data, True), data, "shape", n=60, judge=two_shapes_judge)
    assert obeys["accuracy"] >= 0.95 and obeys["own"] >= 0.95
    ignores = swap_accuracy(_FakeCVAE(data, False), data, "shape", n=60, judge=two_shapes_judge)
    assert ignores["accuracy"] <= 0.05 and ignores["decodes"] == 60  # redrawing the image never counts as a swap
    assert ignores["own"] >= 0.95  # while the reconstructions are right
    assert set(ignores["per_value"]) == {"square", "cross"} and ignores["chance"] == 0.5
    assert ignores["judge_accuracy"] == round(two_shapes_judge[1], 4)
    blind = (two_shapes_judge[0], 0.6)  # a judge that cannot tell the values apart scores nothing
    assert "too few to judge" in swap_accuracy(_FakeCVAE(data, True), data, "shape", n=20, judge=blind)["unavailable"]
