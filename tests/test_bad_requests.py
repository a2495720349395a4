"""Requests that cannot give a meaningful run fail at once with one clear error, before anything is allocated or
trained: windows and margins larger than the scene, a flat cube, more PCA components than bands."""

import dataclasses

import numpy as np
import pytest
from conftest import make_tiny_scene

import hsiclip
from hsiclip.errors import ConfigError, DataError


def test_a_window_larger_than_the_scene_is_refused_before_allocating():
    scene = make_tiny_scene(h=12, w=14)  # 2D-CNN reads 15 x 15 windows
    with pytest.raises(ConfigError, match="15 x 15 windows, larger than the 12 x 14 scene; use a window of at most 12"):
        hsiclip.train(scene, "cnn2d", epochs=1, progress=False)


def test_a_leak_free_margin_larger_than_the_scene_is_refused():
    with pytest.raises(ConfigError, match="margin window 999 is larger than the 24 x 24 scene"):
        hsiclip.train(make_tiny_scene(), "svm", protocol="leakfree", window=999, progress=False)


def test_a_flat_cube_is_an_error_not_a_run():
    scene = make_tiny_scene()
    flat = dataclasses.replace(scene, cube=np.zeros_like(scene.cube))
    with pytest.raises(DataError, match="every band is constant"):
        hsiclip.train(flat, "svm", progress=False)


def test_more_pca_components_than_bands_is_an_error():
    scene = make_tiny_scene(bands=20)  # SSFTT asks for 30 components
    with pytest.raises(DataError, match="30 PCA components but the cube has only 20 bands"):
        hsiclip.train(scene, "ssftt", epochs=1, progress=False)
