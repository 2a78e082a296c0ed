"""The batches the PyTorch trainer reads: one split as a map-style dataset indexed by (index,
epoch), one rank's share of an epoch or of a test split in batches of keys, the data loader,
and the batched augmentation and normalisation that run on the device. Every random choice
is drawn from a generator seeded by (seed, epoch, index), so a resumed run sees the batches
an unbroken one does."""

from __future__ import annotations

import numpy as np


class SplitImages:
    """A map-style dataset of one split, indexed by (index, epoch): uint8 (C, H, W) images at
    the network's input size and their labels, for a DataLoader to batch.

    Arrays in memory are sliced; files are read, decoded and (for training with the
    `imagenet` augmentation) randomly cropped and flipped here, in the loader's worker
    processes, with a generator seeded by (seed, epoch, index): the same view of an image in an
    unbroken and a resumed run. The batched part of the `cifar` augmentation happens later, on
    the device (see `augment`)."""

    def __init__(self, split, shape, augment: str, *, training: bool, seed: int):
        self.split, self.shape, self.augment = split, shape, augment
        self.training, self.seed = training, seed

    def __len__(self):
        return len(self.split)

    def __getitem__(self, key):
        import torch

        from resdsl.train.transforms import split_image

        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        image = split_image(
            self.split, index, self.shape, self.augment, training=self.training, rng=rng
        )
        # An evaluation view may be a read-only array shared between epochs: torch wants its
        # own, writable copy of that one.
        image = image if image.flags.writeable else image.copy()
        return torch.from_numpy(image), int(self.split.labels[index])


class EpochBatches:
    """Batches of one rank's share of the epoch (a DistributedSampler, set_epoch each epoch),
    from batch `start` on: resuming mid-epoch skips what was already trained. A batch is a
    list of (index, epoch) keys of `SplitImages`."""

    def __init__(self, size: int, batch: int, world: int, rank: int, seed: int):
        from torch.utils.data import DistributedSampler

        self.sampler = DistributedSampler(
            range(size), num_replicas=world, rank=rank, shuffle=True, seed=seed, drop_last=False
        )
        self.batch, self.start, self.epoch = batch, 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.sampler.set_epoch(epoch)
        self.epoch, self.start = epoch, start

    def total(self) -> int:
        return -(-len(self.sampler) // self.batch)

    def __len__(self):
        return self.total() - self.start

    def __iter__(self):
        keys = [(index, self.epoch) for index in self.sampler]
        for b in range(self.start, self.total()):
            yield keys[b * self.batch : (b + 1) * self.batch]


class TestBatches:
    """One rank's share of a test split (every `world`-th image), in batches of keys."""

    def __init__(self, size: int, batch: int, world: int, rank: int):
        indices = list(range(rank, size, world))
        self.batches = [
            [(i, 0) for i in indices[b : b + batch]] for b in range(0, len(indices), batch)
        ]

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        return iter(self.batches)


def loader_of(torch, dataset, batches, workers: int, cuda: bool):
    """Batches of `dataset` read by `workers` processes (0: in this one), kept alive across
    epochs, into pinned memory on CUDA."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        num_workers=workers,
        pin_memory=cuda,
        persistent_workers=workers > 0,
        worker_init_fn=_quiet_worker if workers > 0 else None,
    )


def _quiet_worker(_):
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process handles Ctrl-C


def augment(x, *, pad: int, flip: bool, seed: int, mean, std, channels_last: bool):
    """uint8 NCHW batch (on its device) -> normalised float batch, with zero-padding + random
    crop and random horizontal flips drawn from a generator seeded with `seed`."""
    import torch
    import torch.nn.functional as F

    g = torch.Generator().manual_seed(seed)
    x = x.float().div_(255.0)
    b, _, h, w = x.shape
    if pad:
        padded = F.pad(x, (pad, pad, pad, pad))
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(x.device)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, :, None]
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, :]
        batch = torch.arange(b, device=x.device)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)
    if flip:
        mask = (torch.rand(b, generator=g) < 0.5).to(x.device)[:, None, None, None]
        x = torch.where(mask, x.flip(3), x)
    return normalise(x, mean, std, channels_last)


def normalise(x, mean, std, channels_last: bool):
    import torch

    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    x = (x - m) / s
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    return x.contiguous(memory_format=fmt)
