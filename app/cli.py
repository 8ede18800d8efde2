"""`vae-explorer`: the installed command (`pip install .`), from any folder.

    vae-explorer serve [--model PKG.MODULE:FUNCTION ...] [--server.port 8501 ...]   the app (app.serve)
    vae-explorer train ...      python -m vae_core.train        vae-explorer evaluate ...   python -m vae_core.evaluate
    vae-explorer export ...     python -m vae_core.export       vae-explorer model-card ... python -m vae_core.model_card

The shipped models come with it; $VAE_EXPLORER_MODELS and $VAE_EXPLORER_DATA name your own, as with `make app`.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"serve": "app.serve", "train": "vae_core.train", "evaluate": "vae_core.evaluate",
            "export": "vae_core.export", "model-card": "vae_core.model_card"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in COMMANDS:
        print(__doc__.strip(), file=sys.stderr)
        return 0 if args[:1] in (["-h"], ["--help"]) else 2
    name, rest = args[0], args[1:]
    module = importlib.import_module(COMMANDS[name])
    sys.argv = [f"vae-explorer {name}", *rest]
    return module.main(rest) or 0


if __name__ == "__main__":
    sys.exit(main())
