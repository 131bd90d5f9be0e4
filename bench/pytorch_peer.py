"""The PyTorch peer for our benchmarks: the same WRN-22, recipe step and gloo collectives, measured the same way.

Run with Debian's python3-torch (PyTorch 1.13, CPU). torch.distributed.run is broken on Python 3.11, so ranks
start with torch.multiprocessing.spawn. Every mode prints one JSON line on stdout.

  python3 bench/pytorch_peer.py train --width 1 --batch 128 --steps 8 --threads 2
  python3 bench/pytorch_peer.py ddp --world 2 --width 1 --batch 128 --steps 8 --threads 1
  python3 bench/pytorch_peer.py allreduce --world 2 --sizes 1024,1048576 --iters 20
"""
import argparse, json, os, socket, sys, time

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


def train_steps(model, batch, steps, warmup):
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.99), weight_decay=0.4)
    x = torch.randn(batch, 3, 32, 32)
    y = torch.randint(0, 10, (batch,))
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return times


def single(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    times = train_steps(wrn_22(args.width), args.batch, args.steps, args.warmup)
    print(json.dumps({"mode": "train", "width": args.width, "batch": args.batch, "threads": args.threads,
                      "images_per_second": args.batch * len(times) / sum(times),
                      "best_images_per_second": args.batch / min(times)}))


def ddp_rank(rank, args, port, out):
    torch.set_num_threads(args.threads)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.world)
    torch.manual_seed(0)
    model = nn.parallel.DistributedDataParallel(wrn_22(args.width))
    times = train_steps(model, args.batch, args.steps, args.warmup)
    if rank == 0:
        out.put(times)
    dist.barrier()
    dist.destroy_process_group()


def ddp(args):
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.spawn(ddp_rank, args=(args, free_port(), out), nprocs=args.world, join=True)
    times = out.get()
    print(json.dumps({"mode": "ddp", "world": args.world, "width": args.width, "batch": args.batch, "threads": args.threads,
                      "images_per_second": args.world * args.batch * len(times) / sum(times)}))


def allreduce_rank(rank, args, port, out):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=args.world)
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        t = torch.ones(max(1, size // 4), dtype=torch.float32)
        iters = args.iters if size < (1 << 24) else max(3, args.iters // 4)
        for _ in range(3):
            dist.all_reduce(t)
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(iters):
            dist.all_reduce(t)
        seconds = (time.perf_counter() - t0) / iters
        bus = t.numel() * 4 / seconds * 2 * (args.world - 1) / args.world
        rows.append({"bytes": t.numel() * 4, "seconds": seconds, "bus_bytes_per_second": bus})
    if rank == 0:
        out.put(rows)
    dist.barrier()
    dist.destroy_process_group()


def allreduce(args):
    ctx = mp.get_context("spawn")
    out = ctx.SimpleQueue()
    mp.spawn(allreduce_rank, args=(args, free_port(), out), nprocs=args.world, join=True)
    print(json.dumps({"mode": "allreduce", "world": args.world, "rows": out.get()}))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["train", "ddp", "allreduce"])
    p.add_argument("--width", type=int, default=1)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--world", type=int, default=2)
    p.add_argument("--sizes", default="1024,16384,262144,1048576,4194304,16777216,67108864")
    p.add_argument("--iters", type=int, default=20)
    a = p.parse_args()
    {"train": single, "ddp": ddp, "allreduce": allreduce}[a.mode](a)
