"""A progress bar per epoch (rich) on a terminal; plain lines when the output is a file or
a pipe, so that logs stay readable."""

from __future__ import annotations

import sys
import time


class EpochProgress:
    """Tracks one epoch's images, loss and accuracy; draws a bar when `live`."""

    def __init__(
        self, epoch: int, epochs: int, steps: int, *, enabled: bool = True, start_step: int = 0
    ):
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.images = 0
        self.started = time.perf_counter()
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
        if self._bar is None:
            return
        stats = f"{self.rate():,.0f} img/s"
        if loss is not None:
            stats = f"loss {loss:.4f}  acc {accuracy:.2%}  " + stats
        if step is None:
            self._bar.update(self._task, advance=1, stats=stats)
        else:
            self._bar.update(self._task, completed=step, stats=stats)

    def rate(self) -> float:
        return self.images / max(time.perf_counter() - self.started, 1e-9)

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
        f"test loss {record['test_loss']:.4f}  test acc {record['test_acc']:.2%}  "
        f"lr {record['lr']:.4g}  {record['images_per_s']:,.0f} img/s  {record['time_s']:.1f}s"
    )
