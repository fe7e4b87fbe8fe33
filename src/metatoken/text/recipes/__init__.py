"""Text recipes, each registered in TEXT_METHODS under its id (importing this package registers them)."""

from metatoken.text.recipes import conditional, dpo, filtering, mixture, pg, weighted  # noqa: F401
from metatoken.text.recipes.base import TEXT_METHODS, TextContext, TextTrained, make_text_method

__all__ = ["TEXT_METHODS", "TextContext", "TextTrained", "make_text_method"]
