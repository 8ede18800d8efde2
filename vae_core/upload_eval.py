"""How often an upload comes out as what it shows: `python -m vae_core.upload_eval [MODEL]` (default
pretrained/dsprites-vae; a faces model is measured on the drawn faces).

Shapes: every upload of `vae_core.upload_corpus.corpus` is turned into the model's input twice, side by side: the
plain way (centre crop, resize, binarise: what the app did before `vae_core.prepare`) and prepared. Each input is
reconstructed at its posterior mean, and a shape classifier trained on dSprites (`vae_core.condition_eval`'s
judge) says which shape the reconstruction shows. Prints the share judged right, per kind of upload, and the
preparation's time.

Faces: every drawn face of `face_corpus` is prepared and reconstructed; a classifier of the mouth trained on the
faces data says whether the reconstruction frowns, is neutral or smiles (its five mouths read by the sign of their
curvature). The same judge's reading of the prepared input itself is printed beside it: the share of the drawings
whose expression survives preparation and is readable in the data's terms, the ceiling for the model. Where the
model has a stored mouth edit (`vae_core.edits`), the drawn faces that do not smile are also edited to the biggest
smile ("make it smile" on Reconstruct), and the share read as smiles printed beside the share reconstructed as smiles.
Importable without streamlit.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from .checkpoints import PRETRAINED_DIR, load_model
from .data import drawn_like, get_dataset
from .imaging import load_rgba, preprocess_upload
from .prepare import prepare
from .upload_corpus import FACE_KINDS, KINDS, MOODS, SHAPES, corpus, face_corpus


def judged_shapes(judge, images: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return judge(torch.from_numpy(images).float()).argmax(1).numpy()


def _model_and_judge(folder, dataset_name: str, factor: str, judge_steps: int, seed: int):
    """(the loaded model, its dataset, a judge of `factor` trained on that dataset, the judge's accuracy)."""
    from .condition_eval import train_condition_judge

    loaded = load_model(folder)
    trained_on = loaded.config.train.dataset
    if drawn_like(trained_on) != dataset_name:
        raise ValueError(f"{folder}: this corpus is for {dataset_name} models, not {trained_on}")
    dataset = get_dataset(trained_on)  # the judge reads what the model draws: its own rendering of the grid
    judge, accuracy = train_condition_judge(dataset, factor, steps=judge_steps, seed=seed)
    return loaded, dataset, judge, accuracy


def evaluate(folder, per_kind_and_shape: int = 5, judge_steps: int = 800, seed: int = 0) -> dict:
    loaded, _, judge, judge_accuracy = _model_and_judge(folder, "dsprites", "shape", judge_steps, seed)
    exp = loaded.config
    uploads = corpus(per_kind_and_shape, seed)
    plain, prepared, ms = [], [], []
    size, channels = exp.model.image_size, exp.model.channels
    for up in uploads:
        plain.append(preprocess_upload(up.data, size, channels, binarize=True))
        began = time.perf_counter()
        prepared.append(prepare(load_rgba(up.data, size), "dsprites", size, channels).image)
        ms.append(1000 * (time.perf_counter() - began))
    truth = np.array([SHAPES.index(u.shape) for u in uploads])
    kinds = np.array([u.kind for u in uploads])
    result = {"judge_accuracy": judge_accuracy, "uploads": len(uploads), "prepare_ms_median": float(np.median(ms)),
              "prepare_ms_max": float(np.max(ms)), "per_kind": {}}
    model = loaded.model.eval()
    for name, inputs in (("plain", plain), ("prepared", prepared)):
        x = torch.from_numpy(np.stack(inputs))
        with torch.inference_mode():
            mu, _ = model.encode(x)
            recon = model.decode_image(mu).numpy()
        right = judged_shapes(judge, recon) == truth
        result[name] = float(right.mean())
        for kind in KINDS:
            result["per_kind"].setdefault(kind, {})[name] = float(right[kinds == kind].mean())
    return result


def mood_of_mouth(dataset) -> np.ndarray:
    """Each of the dataset's mouth classes as an index into MOODS (frown, neutral, smile), by its curvature's sign."""
    curvature = np.asarray(dataset.factor_values(dataset.factor_names.index("mouth")), dtype=np.float64)
    return (np.sign(curvature) + 1).astype(np.int64)


def evaluate_faces(folder, per_kind_and_mood: int = 9, judge_steps: int = 800, seed: int = 0) -> dict:
    loaded, dataset, judge, judge_accuracy = _model_and_judge(folder, "faces", "mouth", judge_steps, seed)
    exp = loaded.config
    moods = mood_of_mouth(dataset)
    uploads = face_corpus(per_kind_and_mood, seed)
    size, channels = exp.model.image_size, exp.model.channels
    prepared, ms = [], []
    for up in uploads:
        began = time.perf_counter()
        prepared.append(prepare(load_rgba(up.data, size), "faces", size, channels).image)
        ms.append(1000 * (time.perf_counter() - began))
    x = torch.from_numpy(np.stack(prepared))
    model = loaded.model.eval()
    with torch.inference_mode():
        recon = model.decode_image(model.encode(x)[0]).numpy()
    truth = np.array([MOODS.index(u.mood) for u in uploads])
    kinds = np.array([u.kind for u in uploads])
    result = {"judge_accuracy": judge_accuracy, "uploads": len(uploads), "prepare_ms_median": float(np.median(ms)),
              "prepare_ms_max": float(np.max(ms)), "per_kind": {}}
    made = _made_to_smile(folder, model, x, dataset)
    if made is not None:  # "make it smile" (the model's stored mouth edit, to its last mouth): read as smiles?
        smiles = moods[judged_shapes(judge, made)] == MOODS.index("smile")
        as_smiles = moods[judged_shapes(judge, recon)] == MOODS.index("smile")
        unsmiling = truth != MOODS.index("smile")
        result["made_to_smile"] = {"faces": int(unsmiling.sum()), "edited": float(smiles[unsmiling].mean()),
                                   "reconstructed": float(as_smiles[unsmiling].mean())}
    for name, images in (("input", prepared), ("reconstruction", recon)):
        right = moods[judged_shapes(judge, np.stack(images))] == truth
        result[name] = float(right.mean())
        for kind in FACE_KINDS:
            result["per_kind"].setdefault(kind, {})[name] = float(right[kinds == kind].mean())
        for mood in MOODS:
            result.setdefault("per_mood", {}).setdefault(mood, {})[name] = float(right[truth == MOODS.index(mood)].mean())
    return result


def _made_to_smile(folder, model, x: torch.Tensor, dataset) -> np.ndarray | None:
    """The drawn faces `x` decoded after the model's stored mouth edit to its last mouth (the biggest smile); None
    without a stored edit of the mouth."""
    from .edit_net import stored_edits
    from .edits import apply_edit

    nets, _, _ = stored_edits(folder, model.latent_dim, dict(zip(dataset.factor_names, dataset.factor_sizes)))
    if "mouth" not in nets:
        return None
    with torch.inference_mode():
        z = model.encode(x)[0].numpy()
        edited = apply_edit(nets["mouth"], z, nets["mouth"].values - 1)
        return model.decode_image(torch.from_numpy(edited)).numpy()


def format_faces(result: dict) -> str:
    lines = [f"{'upload kind':<16} {'input':>7} {'reconstruction':>15}"]
    for kind, row in [*result["per_kind"].items(), *result["per_mood"].items()]:
        lines.append(f"{kind:<16} {row['input']:>7.0%} {row['reconstruction']:>15.0%}")
    lines.append(f"{'all':<16} {result['input']:>7.0%} {result['reconstruction']:>15.0%}   ({result['uploads']} drawn "
                 f"faces; expression judged by a mouth classifier, {result['judge_accuracy']:.1%} on the data's "
                 f"five mouths; preparation median {result['prepare_ms_median']:.1f} ms, "
                 f"max {result['prepare_ms_max']:.1f} ms)")
    if made := result.get("made_to_smile"):
        lines.append(f"make it smile: of the {made['faces']} drawn faces that do not smile, {made['edited']:.0%} read as "
                     f"smiles after the mouth edit ({made['reconstructed']:.0%} already did in their plain reconstruction)")
    return "\n".join(lines)


def format_result(result: dict) -> str:
    lines = [f"{'upload kind':<16} {'plain':>7} {'prepared':>9}"]
    for kind, row in result["per_kind"].items():
        lines.append(f"{kind:<16} {row['plain']:>7.0%} {row['prepared']:>9.0%}")
    lines.append(f"{'all':<16} {result['plain']:>7.0%} {result['prepared']:>9.0%}   ({result['uploads']} uploads; "
                 f"judge {result['judge_accuracy']:.1%} on dSprites; preparation median "
                 f"{result['prepare_ms_median']:.1f} ms, max {result['prepare_ms_max']:.1f} ms)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vae_core.upload_eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", nargs="?", default=str(PRETRAINED_DIR / "dsprites-vae"))
    parser.add_argument("--per-kind", type=int, default=None,
                        help="uploads per kind and shape (default 5), or per kind and mood for faces (default 9)")
    args = parser.parse_args(argv)
    if drawn_like(load_model(args.model).config.train.dataset) == "faces":
        print(format_faces(evaluate_faces(args.model, args.per_kind or 9)))
    else:
        print(format_result(evaluate(args.model, args.per_kind or 5)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
