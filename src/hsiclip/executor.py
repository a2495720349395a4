"""Ray, for whatever runs past one process: a session on a local or existing cluster, and an ordered map on actors.

`ordered_map` sends work items to Ray actors that each hold one object (a trained model) and yields the results in
input order with a bounded number in flight (flat memory): `hsiclip predict --executor ray`. The training runs of
`compare` and `reproduce` go through `experiments.runner.execute`, on the same `ray_session`.

Ray is started here when no cluster is running: a local one with `workers` CPUs, or a connection to `address`
("auto" or host:port of `ray start --head`), and stopped again at the end if this module started it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError

EXECUTORS = ("auto", "local", "ray")


def resolve_executor(executor: str, jobs: int) -> str:
    """`auto`: Ray when more than one job is to run and Ray is installed, else this process."""
    if executor not in EXECUTORS:
        raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)} (got {executor!r})")
    if executor != "auto":
        return executor
    if jobs < 2:
        return "local"
    try:
        import ray  # noqa: F401
    except ImportError:
        return "local"
    return "ray"


@contextlib.contextmanager
def ray_session(address: str | None = None, workers: int | None = None) -> Iterator[Any]:
    """Ray, connected: to `address`, else to a running local cluster, else a new local one with `workers` CPUs."""
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--executor ray needs Ray: pip install 'ray>=2.9'") from e
    if ray.is_initialized():
        yield ray
        return
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be positive (got {workers})")
    kw: dict[str, Any] = {"address": address} if address else {"num_cpus": workers or os.cpu_count()}
    # workers import this package; a source checkout not installed in site-packages must reach them too
    src = str(Path(__file__).resolve().parent.parent)
    env = {"env_vars": {"PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}}
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False, runtime_env=env, **kw)
    try:
        yield ray
    finally:
        ray.shutdown()


def ordered_map(factory: Callable[[], Any], items: Iterator[Any], *, address: str | None = None,
                workers: int | None = None, in_flight: int = 2) -> Iterator[Any]:
    """`factory()(item)` for every item, on Ray actors that each build `factory()` once; results in input order,
    at most `in_flight` items per actor sent ahead (so the driver holds a bounded number of items)."""
    with ray_session(address, workers) as ray:

        class Worker:
            def __init__(self, build: Callable[[], Any]) -> None:
                torch.set_num_threads(1)
                self.fn = build()

            def __call__(self, item: Any) -> Any:
                return self.fn(item)

        n = max(1, int(ray.available_resources().get("CPU", 1)))
        actor = ray.remote(num_cpus=1)(Worker)
        build = ray.put(factory)
        actors = [actor.remote(build) for _ in range(n)]
        queue: list[Any] = []
        for k, item in enumerate(items):
            queue.append(actors[k % n].__call__.remote(item))
            if len(queue) >= n * in_flight:
                yield ray.get(queue.pop(0))
        while queue:
            yield ray.get(queue.pop(0))
        for a in actors:
            ray.kill(a)
