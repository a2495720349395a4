"""Prompt sets as data: one TOML file per scene (or a user's file) with, per class, a label-only name,
a short text, a curated descriptive prompt and descriptive variants (for prompt ensembles)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ..errors import ConfigError

PROMPT_MODES = ("label", "short", "descriptive", "ensemble")
CLASS_KEYS = ("label", "name", "short", "descriptive", "variants")  # what a class file's class may hold


@dataclass(frozen=True)
class ClassPrompt:
    label: int  # value in the label raster (1..C)
    name: str  # class name; also the label-only prompt
    short: str  # one terse sentence
    descriptive: str  # the curated description (the paper's prompt)
    variants: tuple[str, ...] = ()  # paraphrases of the description, averaged with it in "ensemble" mode

    def texts(self, mode: str) -> list[str]:
        return {
            "label": [self.name],
            "short": [self.short],
            "descriptive": [self.descriptive],
            "ensemble": [self.descriptive, *self.variants],
        }[mode]


def builtin_prompt_sets() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("hsiclip.text.prompt_sets").iterdir()
                  if p.name.endswith(".toml"))


def load_prompt_set(scene_or_path: str | Path) -> list[ClassPrompt]:
    """The prompts of a registered scene (by name) or of a TOML or YAML file with the same layout."""
    if str(scene_or_path) in builtin_prompt_sets():
        text = resources.files("hsiclip.text.prompt_sets").joinpath(f"{scene_or_path}.toml").read_text()
        where = f"built-in prompts for {scene_or_path}"
    elif Path(scene_or_path).is_file():
        text, where = Path(scene_or_path).read_text(), str(scene_or_path)
        if Path(scene_or_path).suffix.lower() in (".yaml", ".yml"):
            return _parse(_yaml(text, where), where)
    else:
        raise ConfigError(f"no prompt set {scene_or_path!r}: give a TOML file or one of "
                          f"{', '.join(builtin_prompt_sets())}")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{where}: malformed prompt file ({e!r})") from None
    return _parse(data, where)


def _yaml(text: str, where: str) -> dict:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: malformed YAML ({e})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a `classes` list")
    return data


def _parse(data: dict, where: str) -> list[ClassPrompt]:
    """Classes in label order; each needs `label` and `name`, optionally `short`, `descriptive`, `variants`."""
    try:
        classes = data["classes"]
        prompts = [ClassPrompt(int(c["label"]), c["name"], c.get("short", c["name"]),
                               c.get("descriptive", c.get("short", c["name"])), tuple(c.get("variants", ())))
                   for c in classes]
    except (KeyError, TypeError, ValueError) as e:
        raise ConfigError(f"{where}: malformed prompt file ({e!r}); each [[classes]] needs label and name") from None
    for c in classes:  # a misspelt key would silently fall back to another prompt
        if unknown := sorted(set(c) - set(CLASS_KEYS)):
            raise ConfigError(f"{where}: class {c['name']!r} has unknown key(s) {', '.join(map(repr, unknown))}; "
                              f"valid: {', '.join(CLASS_KEYS)}")
    labels = [p.label for p in prompts]
    if labels != list(range(1, len(prompts) + 1)):
        raise ConfigError(f"{where}: class labels must be 1..C in order, got {labels}")
    names = [p.name for p in prompts]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{where}: class name(s) {', '.join(map(repr, twice))} appear more than once")
    return prompts


def class_texts(prompts: list[ClassPrompt], mode: str) -> list[list[str]]:
    """Per class, the texts to embed (several in "ensemble" mode, averaged later)."""
    if mode not in PROMPT_MODES:
        raise ConfigError(f"unknown prompt mode {mode!r}; valid: {', '.join(PROMPT_MODES)}")
    return [p.texts(mode) for p in prompts]
