"""Scenes: declarations (files, URLs, checksums, classes), reading, verification and download."""

from .download import download_file, git_blob_id
from .io import array_sha256, file_sha256, read_array
from .scenes import SCENES, Scene, SceneFile, SceneInfo, get_scene, load_arrays, load_scene

__all__ = [
    "SCENES",
    "Scene",
    "SceneFile",
    "SceneInfo",
    "array_sha256",
    "download_file",
    "file_sha256",
    "get_scene",
    "git_blob_id",
    "load_arrays",
    "load_scene",
    "read_array",
]
