"""Train a list of (system, seed) runs, one after the other or as Ray tasks, and save each run and its record.

`execute` trains `Job`s, each with the place its run folder and record go. With `executor="ray"` every job is a Ray
task asking for the resources its system needs (one CPU, one intra-op thread; one GPU for a network when the run's
device is a GPU: `System.gpu`), retried when its worker dies; the driver alone writes run folders and records
(atomically), so the record store holds the same files as after a sequential run. Every job checkpoints its
training loop (`engine.Checkpoint`, beside its record), so a retried, killed or interrupted job resumes from its
last checkpoint instead of epoch 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from .. import pipeline
from ..data.scenes import Scene
from ..errors import EncoderUnavailableError
from ..executor import ray_session, resolve_executor
from ..records import RecordStore
from ..run import Run
from ..systems import get_system

CHECKPOINT_EVERY = 5  # epochs between mid-run checkpoints


@dataclass(frozen=True)
class Job:
    """One training run to execute and where its run folder (`stem/`) and record (`stem.json`) go."""

    stem: Path
    system: str
    seed: int
    label: str  # for log lines: "<system label>, seed <S>"
    train: dict[str, Any] = field(default_factory=dict)  # the other arguments of `pipeline.train`

    @property
    def checkpoint(self) -> Path:
        return self.stem.with_name(self.stem.name + ".ckpt.pt")


def _devices(job: Job, device: str) -> tuple[str, float]:
    """The device a job trains on and the GPUs its task asks for: a GPU only for systems that use one."""
    if str(device).startswith("cuda") and get_system(job.system).gpu:
        return device, 1.0
    return "cpu", 0.0


def _train(job: Job, scene: Scene, device: str, progress: bool, threads: int | None = None) -> Run:
    if threads:
        torch.set_num_threads(threads)
    return pipeline.train(scene, job.system, seed=job.seed, device=device, progress=progress,
                          checkpoint=job.checkpoint, checkpoint_every=CHECKPOINT_EVERY, **job.train)


def _remote_train(job: Job, scene: Scene, device: str) -> tuple[Run, str]:
    """A Ray task: the run, trained on one thread, and the id of the node it ran on."""
    import ray

    return _train(job, scene, device, False, threads=1), ray.get_runtime_context().get_node_id()


def _save(job: Job, run: Run) -> dict[str, Any]:
    """The driver's part: the run folder, then the record, then the checkpoint is no longer needed."""
    assert run.record is not None
    run.save(job.stem)
    RecordStore.save(job.stem, run.record)
    job.checkpoint.unlink(missing_ok=True)
    return run.record


def _text(job: Job, scene: Scene, cache_dir: Path | None) -> torch.Tensor | None:
    """The job's class text embeddings, computed in the driver (which has the encoder and its cache)."""
    system = get_system(job.system)
    overrides = {k: v for k, v in job.train.items() if k not in ("protocol", "split", "fraction", "window",
                                                                     "epochs", "cache_dir", "text", "per_class",
                                                                     "unseen", "prototypes")}
    recipe = system.recipe(scene.name, seed=job.seed, epochs=job.train.get("epochs"), **overrides)
    return system.text_features(recipe, scene, cache_dir)


def execute(jobs: Sequence[Job], scene: Scene, *, executor: str = "auto", address: str | None = None,
            workers: int | None = None, device: str = "cpu", progress: bool = True,
            log_line: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Train every job, save its run folder and record, and return the records in the jobs' order."""
    executor = resolve_executor(executor, len(jobs))
    records: list[dict[str, Any] | None] = [None] * len(jobs)

    def finished(i: int, run: Run, where: str = "") -> None:
        records[i] = _save(jobs[i], run)
        log_line(f"{jobs[i].label}: OA {run.record['oa']:.2f}%, train {run.record['train_s']:.1f} s" + where)

    if executor == "local":
        for i, job in enumerate(jobs):
            log_line(f"{job.label}: {job.train.get('epochs') or '-'} epochs")
            try:
                run = _train(job, scene, _devices(job, device)[0], progress)
            except EncoderUnavailableError as e:  # that run is missing from the tables, the others go on
                log_line(f"{job.label}: {e}")
                continue
            finished(i, run)
        return [r for r in records if r is not None]
    with ray_session(address, workers) as ray:
        task = ray.remote(_remote_train)
        scene_ref = ray.put(scene)
        pending = {}
        for i, job in enumerate(jobs):
            dev, gpus = _devices(job, device)
            try:
                text = _text(job, scene, job.train.get("cache_dir"))
            except EncoderUnavailableError as e:
                log_line(f"{job.label}: {e}")
                continue
            job = Job(job.stem, job.system, job.seed, job.label, {**job.train, "text": text})
            ref = task.options(num_cpus=1, num_gpus=gpus, max_retries=3).remote(job, scene_ref, dev)
            pending[ref] = i
        have = ray.cluster_resources()
        log_line(f"{len(jobs)} runs on Ray ({have.get('CPU', 0):g} CPUs"
                 + (f", {have['GPU']:g} GPUs" if have.get("GPU") else "") + ")")
        with tqdm(total=len(jobs), desc="runs", unit="run", disable=not progress) as bar:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                i = pending.pop(done[0])
                run, node = ray.get(done[0])
                finished(i, run, f" (node {node[:8]})")
                bar.update()
    return [r for r in records if r is not None]


