"""hsiclip: vision-language hyperspectral image classification with curated text prompts."""

__version__ = "0.1.0"
