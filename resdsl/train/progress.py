"""A progress bar per epoch (rich) on a terminal; plain lines when the output is a file or
a pipe, so that logs stay readable."""

from __future__ import annotations

import sys
import time


def stats_every(steps: int) -> int:
    """How often (in steps) a trainer reads its running loss and accuracy for the bar: every
    10 steps, and on short epochs often enough that the bar shows them (every step below 20
    steps an epoch). Each read waits for the device."""
    return max(1, min(10, steps // 10))


class EpochProgress:
    """Tracks one epoch's images, loss and accuracy; draws a bar when `live`.

    The speed is measured from the end of the bar's first step: that step pays for what
    starting takes (compiling the graph, loader workers, the first allocations), and a
    resumed run's short partial epoch would otherwise read as a fraction of its speed."""

    def __init__(
        self, epoch: int, epochs: int, steps: int, *, enabled: bool = True, start_step: int = 0
    ):
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.images = 0
        self.started = time.perf_counter()
        self.steps_done = 0
        self._warm: tuple[float, int] | None = None  # (time, images) after the first step
        self.stats = ""  # what the bar shows after its counts: loss, accuracy, speed
        self._running = ""
        self._bar = None
        if enabled and sys.stdout.isatty():
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn(f"epoch {epoch}/{epochs}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[stats]}"),
                TimeRemainingColumn(),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("train", total=steps, completed=start_step, stats="")

    def update(
        self,
        images: int,
        loss: float | None = None,
        accuracy: float | None = None,
        *,
        step: int | None = None,
    ):
        """Count `images` more; move the bar to `step` steps done (by one without it), with the
        running loss and accuracy where given. A trainer that reads its metrics only every few
        steps (each read waits for the GPU) still moves the bar to where it is."""
        self.images += images
        self.steps_done += 1
        if self.steps_done == 1:
            self._warm = (time.perf_counter(), self.images)
        if loss is not None:  # kept until the next read
            self._running = f"loss {loss:.4f}  acc {accuracy:.2%}  "
        self.stats = self._running + f"{self.rate():,.0f} img/s"
        if self._bar is None:
            return
        if step is None:
            self._bar.update(self._task, advance=1, stats=self.stats)
        else:
            self._bar.update(self._task, completed=step, stats=self.stats)

    def rate(self) -> float:
        """Images a second: after the first step where there were more, else overall."""
        now = time.perf_counter()
        if self._warm is not None and self.images > self._warm[1]:
            since, counted = self._warm
            return (self.images - counted) / max(now - since, 1e-9)
        return self.images / max(now - self.started, 1e-9)

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None


def epoch_line(record: dict) -> str:
    return (
        f"epoch {record['epoch']}/{record['epochs']}  "
        f"loss {record['train_loss']:.4f}  acc {record['train_acc']:.2%}  "
        f"val loss {record['val_loss']:.4f}  val acc {record['val_acc']:.2%}  "
        f"lr {record['lr']:.4g}  {record['images_per_s']:,.0f} img/s  {record['time_s']:.1f}s"
    )
