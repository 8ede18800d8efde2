"""How well a conditional VAE separates its condition from its latent, measured: a judge trained on the data says
which condition a decode shows (swap accuracy), a fresh probe reads the condition back from the latent (leak),
and the disentanglement metrics score the latent given the true condition. Used by vae_core.evaluate; apart from
the model (vae_core.models.cvae) so that training needs none of it."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .models.cvae import CVAE, condition_column, condition_values


@torch.inference_mode()
def posterior_means(model: CVAE, images: np.ndarray, conditions: np.ndarray, batch_size: int = 500) -> np.ndarray:
    """The posterior mean of each image given its condition index: (n, latent_dim), float32."""
    device = next(model.parameters()).device
    out = [model.encode(torch.from_numpy(np.ascontiguousarray(images[s:s + batch_size])).to(device),
                        torch.from_numpy(conditions[s:s + batch_size]).to(device))[0].float().cpu().numpy()
           for s in range(0, len(images), batch_size)]
    return np.concatenate(out) if out else np.zeros((0, model.latent_dim), np.float32)


class ConditionJudge(nn.Module):
    """A small classifier of the condition from an image, trained on the dataset itself: what judges whether a
    decode shows the condition asked for. Three 3x3 convolutions with max-pooling, the last over the whole map:
    it sees what is drawn wherever it is drawn (shape, scale), and so cannot judge a positional condition.
    """

    def __init__(self, channels: int, image_size: int, values: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 16, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, 1, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(1),
            nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, values))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _fit_judge(dataset, condition: str, values: int, steps: int, batch: int, seed: int) -> ConditionJudge:
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):  # seeded weights; the caller's random numbers left alone
        torch.manual_seed(seed)
        judge = ConditionJudge(dataset.channels, dataset.image_size, values)
    opt = torch.optim.Adam(judge.parameters(), lr=1e-3)
    rng = np.random.default_rng([seed, 1])
    for _ in range(steps):
        images, factors = dataset.sample(batch, rng)
        x = torch.from_numpy(images)
        mix = torch.rand(len(x), 1, 1, 1, generator=gen)
        x = mix * x + (1 - mix) * F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
        loss = F.cross_entropy(judge(x), torch.from_numpy(condition_column(dataset, condition, factors)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return judge


JUDGE_STEPS = 800  # 99.65% on fresh dSprites shapes (two threads); about 40 s on two idle CPU cores
JUDGE_FLOOR = 0.9  # a judge less accurate than this on real images cannot score swaps


def train_condition_judge(dataset, condition: str, steps: int = JUDGE_STEPS, batch: int = 64, seed: int = 0,
                          held_out: int = 2000) -> tuple[ConditionJudge, float]:
    """(a judge of the condition trained on the dataset's images, its accuracy on `held_out` fresh images).

    Each training image is mixed with a 3x3 blur of itself by a random amount, so that a decoder's soft edges are
    judged by the shape they draw, not by their blur. Seeded: the same judge on every run.
    """
    names = condition_values(dataset, condition)
    with torch.inference_mode(False), torch.enable_grad():  # trains even when called under inference mode
        judge = _fit_judge(dataset, condition, len(names), steps, batch, seed)
    judge.eval()
    images, factors = dataset.sample(held_out, np.random.default_rng([seed, 2]))
    with torch.inference_mode():
        guess = torch.cat([judge(torch.from_numpy(images[i:i + 500])).argmax(1) for i in range(0, held_out, 500)])
    return judge, float((guess.numpy() == condition_column(dataset, condition, factors)).mean())


def swap_accuracy(model: CVAE, dataset, condition: str, n: int = 1000, seed: int = 0, batch: int = 250,
                  judge: tuple[nn.Module, float] | None = None, judge_steps: int = JUDGE_STEPS) -> dict:
    """How often switching the condition alone draws the chosen value: the content-versus-style test.

    For n images, z is the posterior mean given the true condition, decoded under every other value; a decode is
    a hit when a judge (`train_condition_judge`, a classifier trained on the data) sees the value asked for. Only
    the n * (values - 1) switched decodes count: a latent that still holds the condition redraws the original
    whatever the condition says. Chance is 1 / values. "own" is how often the decode under the image's own value
    is judged right (a reconstruction), and "judge_accuracy" the judge's accuracy on real images: the ceiling.

    The judge sees the drawn shape at any angle. dSprites' square repeats every 90 degrees and its ellipse every
    180, so a latent taken from a square cannot say which of four headings a heart should take; a test against
    the renderings at the image's own angle counts such decodes as misses (it scored the 28,000-step
    dsprites-cvae 19%, where this judge scores it 43%).

    Args:
        judge: (classifier, its accuracy on real images), else one is trained here for `judge_steps` steps.
    """
    names = condition_values(dataset, condition)  # raises, listing what exists, for an unknown condition
    values = len(names)
    classifier, judge_accuracy = judge or train_condition_judge(dataset, condition, judge_steps, seed=seed)
    if judge_accuracy < JUDGE_FLOOR:  # e.g. a positional condition, which a judge that pools over the map misses
        return {"unavailable": f"a classifier of the {condition} trained on the data is right for only "
                               f"{judge_accuracy:.0%} of real images, too few to judge what a decode shows",
                "judge_accuracy": round(judge_accuracy, 4)}
    model.eval()
    device = next(model.parameters()).device
    images, factors = dataset.sample(n, np.random.default_rng([seed, 3]))
    own_all = condition_column(dataset, condition, factors)
    means = posterior_means(model, images, own_all, batch)
    hits, tries, own_hits = np.zeros(values, np.int64), np.zeros(values, np.int64), 0
    for start in range(0, n, batch):
        own = own_all[start:start + batch]
        with torch.inference_mode():
            z = torch.from_numpy(means[start:start + batch]).to(device)
            seen = [classifier(model.decode_image(z, c).float().cpu()).argmax(1).numpy() for c in range(values)]
        for c in range(values):
            switched = own != c
            hits[c] += int((seen[c][switched] == c).sum())
            tries[c] += int(switched.sum())
            own_hits += int((seen[c][~switched] == c).sum())
    return {"accuracy": float(hits.sum() / max(tries.sum(), 1)), "chance": 1 / values,
            "per_value": dict(zip(names, (hits / np.maximum(tries, 1)).round(4).tolist())),
            "own": own_hits / n, "judge_accuracy": round(judge_accuracy, 4),
            "judge": "a CNN classifier of the condition trained on the data (vae_core.condition_eval.train_condition_judge)"
                     + ("" if judge else f", {judge_steps} steps"),
            "decodes": int(tries.sum()), "samples": n, "seed": seed}


def condition_leak(model: CVAE, dataset, condition: str, n: int = 4000, seed: int = 0, batch: int = 500) -> dict:
    """How well a fresh classifier reads the condition from the latent: the other side of the swap test.

    The posterior means of n images, each given its true condition, are split 3 : 1; a small neural network
    (scikit-learn's MLPClassifier, one hidden layer of 64, on standardised means) is fitted on the larger part
    and scored on the rest. Near chance (the commonest value's share of the held-out part), the latent holds nothing of the condition
    that this probe can find; near 1, the decoder can redraw the image's own condition from z alone. The probe is
    not the training adversary, which the encoder learned to fool.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    condition_values(dataset, condition)  # raises, listing what exists, for an unknown condition
    model.eval()
    images, factors = dataset.sample(n, np.random.default_rng(seed))
    c_all = condition_column(dataset, condition, factors)
    mus = posterior_means(model, images, c_all, batch)
    split = 3 * n // 4
    probe = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(64,), max_iter=500, random_state=seed))
    with warnings.catch_warnings():  # a probe stopped at its iteration cap still scores what it learned
        warnings.simplefilter("ignore", ConvergenceWarning)
        probe.fit(mus[:split], c_all[:split])
    held_out = c_all[split:]
    return {"accuracy": float((probe.predict(mus[split:]) == held_out).mean()),
            "chance": float(np.bincount(held_out).max() / len(held_out)),
            "probe": "MLPClassifier(64) on standardised posterior means", "fitted_on": split, "scored_on": n - split,
            "seed": seed}


class _RecordingDataset:
    """A dataset that remembers the factors of the images it last rendered, for a representation that needs them."""

    def __init__(self, dataset):
        self._dataset = dataset
        self.last_factors = None

    def __getattr__(self, name):
        return getattr(self._dataset, name)

    def images_from_factors(self, factors):
        self.last_factors = np.asarray(factors)
        return self._dataset.images_from_factors(factors)


def true_condition_representation(model: CVAE, dataset, condition: str, batch_size: int = 1024):
    """(a dataset to score on, images -> posterior means given each image's true condition) for the metrics.

    The metrics render images from factors and hand the representation the images only; the returned dataset
    remembers the factors it rendered last, so the encoder is given the true condition, one pass per image.
    """
    recording = _RecordingDataset(dataset)

    def represent(images: np.ndarray) -> np.ndarray:
        factors = recording.last_factors
        if factors is None or len(factors) != len(images):
            raise RuntimeError("the images to represent were not rendered by this dataset just before")
        return posterior_means(model, images, condition_column(dataset, condition, factors), batch_size)

    return recording, represent
