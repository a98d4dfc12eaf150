"""``python -m layerbuilder``."""

from .cli import run

run()
