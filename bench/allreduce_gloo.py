"""PyTorch gloo all-reduce timing, measured like bench/Bench: rank 0 prints `bytes seconds` per size."""
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def run(rank, world_size, port, sizes):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world_size)
    for size in sizes:
        tensor = torch.ones(size // 4, dtype=torch.float32)
        iterations = min(max(512 * 1024 * 1024 // size, 20), 4000)
        for _ in range(max(5, iterations // 10)):
            dist.all_reduce(tensor)
        dist.barrier()
        start = time.perf_counter()
        for _ in range(iterations):
            dist.all_reduce(tensor)
        seconds = (time.perf_counter() - start) / iterations
        dist.barrier()
        if rank == 0:
            print(f"{size} {seconds:.6E}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    world_size, port = int(sys.argv[1]), int(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3].split(",")]
    mp.spawn(run, args=(world_size, port, sizes), nprocs=world_size, join=True)
