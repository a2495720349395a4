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
        where = str(scene_or_path)
        try:
            text = Path(scene_or_path).read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{where}: a prompt file must be UTF-8 text, byte {e.start} is not "
                              f"({e.reason})") from None
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
    except yaml.YAMLError as e:  # str(e) spans lines (it quotes the text with a caret): keep the problem and place
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or (str(e).splitlines() or [type(e).__name__])[0]
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise ConfigError(f"{where}: malformed YAML ({' '.join(problem.split())}{at})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping with a `classes` list")
    return data


def _parse(data: dict, where: str) -> list[ClassPrompt]:
    """Classes in label order; each needs `label` and `name`, optionally `short`, `descriptive`, `variants`."""
    classes = data.get("classes")
    if not isinstance(classes, list) or not classes:
        raise ConfigError(f"{where}: malformed prompt file (no list of classes); each [[classes]] needs label and name")
    prompts = []
    for i, c in enumerate(classes, 1):
        if not isinstance(c, dict) or "label" not in c or "name" not in c:
            raise ConfigError(f"{where}: malformed prompt file (class {i} is {c!r}); each [[classes]] needs label and "
                              "name")
        if not isinstance(c["name"], str):
            raise ConfigError(f"{where}: class {i}: its name must be text, got {c['name']!r}")
        if unknown := sorted(map(repr, set(c) - set(CLASS_KEYS))):  # a misspelt key would silently fall back
            raise ConfigError(f"{where}: class {c['name']!r} has unknown key(s) {', '.join(unknown)}; "
                              f"valid: {', '.join(CLASS_KEYS)}")
        if type(c["label"]) is not int:  # not 1.5 -> 1, "2" -> 2 or true -> 1
            raise ConfigError(f"{where}: class {c['name']!r}: its label must be a whole number, got {c['label']!r}")
        for key in ("short", "descriptive"):
            if not isinstance(c.get(key, ""), str):
                raise ConfigError(f"{where}: class {c['name']!r}: its {key} must be text, got {c[key]!r}")
        variants = c.get("variants", [])
        if not isinstance(variants, list) or not all(isinstance(v, str) for v in variants):
            raise ConfigError(f"{where}: class {c['name']!r}: its variants must be a list of texts, got {variants!r}")
        short = c.get("short", c["name"])
        prompts.append(ClassPrompt(c["label"], c["name"], short, c.get("descriptive", short), tuple(variants)))
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
