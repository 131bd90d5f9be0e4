"""The PyTorch peer for our benchmarks: the same WRN-22, recipe step, data pipeline and gloo collectives as
bench/Bench, measured the same way.

Run with Debian's python3-torch (PyTorch 1.13, CPU). torch.distributed.run is broken on Python 3.11, so ranks
start with torch.multiprocessing.spawn. Every mode prints JSON lines on stdout (allreduce: one per size).

  python3 bench/pytorch_peer.py train --width 1 --batch 128 --steps 8 --threads 2
  python3 bench/pytorch_peer.py ddp --world 2 --width 1 --batch 128 --steps 8 --threads 1 [--channels-last]
  python3 bench/pytorch_peer.py allreduce --world 2 --sizes 1024,1048576
  python3 bench/pytorch_peer.py data --batch 128 --batches 100
"""
import argparse, json, resource, socket, sys, time

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn as nn
import torch.nn.functional as F


def conv(ni, nf, ks=3, stride=1):
    c = nn.Conv2d(ni, nf, ks, stride=stride, padding=ks // 2, bias=False)
    nn.init.kaiming_normal_(c.weight)
    return c


class BasicBlock(nn.Module):
    """fastai v1 wrn BasicBlock: pre-activation, main * 0.2 + shortcut."""

    def __init__(self, ni, nf, stride):
        super().__init__()
        self.bn = nn.BatchNorm2d(ni)
        self.conv1 = conv(ni, nf, 3, stride)
        self.conv2 = nn.Sequential(nn.BatchNorm2d(nf), nn.ReLU(inplace=True), conv(nf, nf, 3, 1))
        self.shortcut = conv(ni, nf, 1, stride) if ni != nf else None

    def forward(self, x):
        x2 = F.relu(self.bn(x), inplace=True)
        r = self.shortcut(x2) if self.shortcut is not None else x2
        return self.conv2(self.conv1(x2)) * 0.2 + r


def wrn_22(k=6, num_classes=10):
    n_channels = [16, 16 * k, 32 * k, 64 * k]
    layers = [conv(3, 16)]
    for i in range(3):
        stride = 1 if i == 0 else 2
        for j in range(3):
            layers.append(BasicBlock(n_channels[i] if j == 0 else n_channels[i + 1], n_channels[i + 1], stride if j == 0 else 1))
    layers += [nn.BatchNorm2d(n_channels[3]), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
               nn.Linear(n_channels[3], num_classes)]
    return nn.Sequential(*layers)


def peak_resident_bytes():
    """VmHWM from /proc/self/status: the peak resident set size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def minor_faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def kernel_seconds():
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def malloc():
    """tcmalloc or mimalloc when one is mapped (preloaded), else glibc: as bench/Bench reports it."""
    with open("/proc/self/maps") as maps:
        text = maps.read()
    return "tcmalloc" if "libtcmalloc" in text else "mimalloc" if "libmimalloc" in text else "glibc"


def train_steps(model, batch, steps, warmup, channels_last=False):
    """channels_last: model and batch in torch.channels_last, as PyTorch's performance tuning guide advises for CNNs."""
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.4)
    x = torch.randn(batch, 3, 32, 32)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    times = []
    faults = kernel = cpu = 0
    for i in range(warmup + steps):
        if i == warmup:
            faults, kernel, cpu = minor_faults(), kernel_seconds(), cpu_seconds()
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times, ((minor_faults() - faults) / steps, (kernel_seconds() - kernel) / steps, (cpu_seconds() - cpu) / steps)


def report(mode, args, world, times, peaks, counters):
    print(json.dumps({"mode": mode, "world": world, "width": args.width, "batch": args.batch, "threads": args.threads,
                      "steps": len(times),
                      "images_per_second": world * args.batch * len(times) / sum(times),
                      "best_images_per_second": world * args.batch / min(times),
                      "peak_resident_bytes": peaks, "minor_faults_per_step": counters[0], "kernel_seconds_per_step": counters[1],
                      "cpu_seconds_per_step": counters[2], "malloc": malloc(),
                      "step_seconds": sum(times) / len(times)}), flush=True)


def single(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    times, counters = train_steps(wrn_22(args.width), args.batch, args.steps, args.warmup, args.channels_last)
    report("train", args, 1, times, [peak_resident_bytes()], counters)


def ddp_rank(rank, args, port, out):
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.world)
    torch.manual_seed(0)
    model = wrn_22(args.width)
    if args.channels_last:
        model = model.to(memory_format=torch.channels_last)  # before DDP wraps it, as the tuning guide does
    model = nn.parallel.DistributedDataParallel(model)
    times, counters = train_steps(model, args.batch, args.steps, args.warmup, args.channels_last)
    out.put((rank, times, peak_resident_bytes(), counters))
    dist.barrier()
    dist.destroy_process_group()


def ddp(args):
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.spawn(ddp_rank, args=(args, free_port(), out), nprocs=args.world, join=True)
    ranks = sorted(out.get() for _ in range(args.world))
    _, times, _, counters = ranks[0]
    report("ddp", args, args.world, times, [r[2] for r in ranks], counters)


def iterations(size, budget):
    """bench/Bench's rule: budget / size all-reduces, 20..4000."""
    return min(max(budget // size, 20), 4000)


def allreduce_rank(rank, args, port):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.world)
    factor = 2 * (args.world - 1) / args.world
    for size in [int(s) for s in args.sizes.split(",")]:
        t = torch.ones(size // 4, dtype=torch.float32)
        iters = iterations(size, args.budget_bytes)
        for _ in range(max(5, iters // 10)):
            dist.all_reduce(t)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        seconds = (time.perf_counter() - t0) / iters
        dist.barrier()
        if rank == 0:
            print(json.dumps({"mode": "allreduce", "world": args.world, "bytes": size, "iterations": iters,
                              "seconds": seconds, "bus_bytes_per_second": size * factor / seconds}), flush=True)
    dist.destroy_process_group()


def allreduce(args):
    mp.spawn(allreduce_rank, args=(args, free_port()), nprocs=args.world, join=True)


# fastai's cifar_stats, as Trainer/Data/CifarStats.cs
MEAN = np.array([0.491, 0.482, 0.447], dtype=np.float32).reshape(3, 1, 1)
STD = np.array([0.247, 0.243, 0.261], dtype=np.float32).reshape(3, 1, 1)


def augment(image, rng, out):
    """torchvision's RandomCrop(32, padding=4, padding_mode='reflect'), RandomHorizontalFlip, ToTensor, Normalize
    on one CHW uint8 image, written into out (3x32x32 float32)."""
    padded = np.pad(image, ((0, 0), (4, 4), (4, 4)), mode="reflect")
    row, col = rng.integers(0, 9, size=2)
    crop = padded[:, row:row + 32, col:col + 32]
    if rng.random() < 0.5:
        crop = crop[:, :, ::-1]
    np.subtract(crop.astype(np.float32) / 255, MEAN, out=out)
    out /= STD


def data(args):
    """The training pipeline in one process without workers: sample, augment each image, collate to a tensor."""
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.images, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 10, size=args.images)
    seen, start = 0, None
    while seen < args.warmup + args.batches:
        order = torch.randperm(args.images).numpy()
        for b in range(args.images // args.batch):
            if seen == args.warmup:
                start = time.perf_counter()
            index = order[b * args.batch:(b + 1) * args.batch]
            batch = np.empty((args.batch, 3, 32, 32), dtype=np.float32)
            for j, i in enumerate(index):
                augment(images[i], rng, batch[j])
            x, y = torch.from_numpy(batch), torch.from_numpy(labels[index])
            seen += 1
            if seen == args.warmup + args.batches:
                break
    seconds = time.perf_counter() - start
    print(json.dumps({"mode": "data", "batch": args.batch, "batches": args.batches,
                      "images_per_second": args.batch * args.batches / seconds}), flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "ddp", "allreduce", "data"])
    p.add_argument("--width", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (2) or batches (10)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--channels-last", action="store_true", help="train and ddp: model and batch in torch.channels_last")
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--sizes", default="1024,16384,262144,1048576,4194304,16777216,67108864")
    p.add_argument("--budget-bytes", type=int, default=512 << 20)
    p.add_argument("--batches", type=int, default=100)
    p.add_argument("--images", type=int, default=10000)
    a = p.parse_args()
    if a.warmup is None:
        a.warmup = 10 if a.mode == "data" else 2
    {"train": single, "ddp": ddp, "allreduce": allreduce, "data": data}[a.mode](a)
