"""TensorBoard event files: each epoch's metrics as scalars, in OUT/tensorboard
(`tensorboard --logdir runs/` shows every run side by side).

Both trainers write through the tensorboard package's record writer and event protos, which
torch.utils.tensorboard is built on, so a run logs the same tags whichever framework trained it.
Not through its EventFileWriter: that imports TensorFlow when it is installed (seconds, and
hundreds of MB, in a PyTorch run) for its file API. Without the tensorboard package (it comes
with `pip install resdsl[train]`) a run says so once and keeps metrics.jsonl only.
"""

from __future__ import annotations

import os
import socket
import time

FOLDER = "tensorboard"

# metrics.jsonl field -> TensorBoard tag
TAGS = {
    "train_loss": "loss/train",
    "val_loss": "loss/val",
    "train_acc": "accuracy/train",
    "val_acc": "accuracy/val",
    "lr": "learning_rate",
    "images_per_s": "images_per_second",
}


class EventLog:
    """Writes epoch records as scalars at their global step; does nothing when disabled."""

    def __init__(self, out: str, enabled: bool):
        self.writer = None
        if not enabled:
            return
        try:
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.summary.writer.record_writer import RecordWriter
        except ImportError:
            print(
                "note: no TensorBoard logs: the tensorboard package is not installed "
                "(pip install tensorboard); metrics.jsonl has every epoch",
                flush=True,
            )
            return
        folder = os.path.join(out, FOLDER)
        os.makedirs(folder, exist_ok=True)
        # TensorBoard's file name: it reads every events.out.tfevents.* in a folder, in order.
        name = f"events.out.tfevents.{time.time():.6f}.{socket.gethostname()}.{os.getpid()}"
        self.writer = RecordWriter(open(os.path.join(folder, name), "ab"))  # noqa: SIM115
        self._write(Event(wall_time=time.time(), file_version="brain.Event:2"))

    def _write(self, event) -> None:
        self.writer.write(event.SerializeToString())
        self.writer.flush()

    def add(self, record: dict) -> None:
        if self.writer is None:
            return
        from tensorboard.compat.proto.event_pb2 import Event
        from tensorboard.compat.proto.summary_pb2 import Summary

        values = [
            Summary.Value(tag=tag, simple_value=float(record[key]))
            for key, tag in TAGS.items()
            if record.get(key) is not None
        ]
        summary = Summary(value=values)
        self._write(Event(wall_time=time.time(), step=int(record["step"]), summary=summary))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
