"""Kernel-level view of PyTorch's host-uint8 pipeline (torch_yolov8.py's e2e mode) at one batch size, FP16, with
torch.profiler (CUPTI). Prints the kernels by total GPU time per iteration. GPU machine; a diagnostic.

    python3 bench/gpu/torch_kernels.py /path/to/torch_yolov8.py [scale=n] [batch=32]
"""
import importlib.util
import sys

import torch
from torch.profiler import ProfilerActivity, profile

spec = importlib.util.spec_from_file_location('ty', sys.argv[1])
ty = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ty)
scale = sys.argv[2] if len(sys.argv) > 2 else 'n'
bs = int(sys.argv[3]) if len(sys.argv) > 3 else 32
m = ty.build(scale).cuda().half()
host = torch.randint(0, 256, (bs, 640, 640, 3), dtype=torch.uint8).pin_memory()


def e2e():
    d = host.cuda(non_blocking=True).permute(0, 3, 1, 2).to(torch.float16).mul_(1 / 255)
    return ty.topk_boxes(m(d), 300).float().cpu()


with torch.no_grad():
    for _ in range(5):
        e2e()
    torch.cuda.synchronize()
    iters = 5
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(iters):
            e2e()
        torch.cuda.synchronize()
events = [e for e in prof.key_averages() if e.device_type == torch.autograd.DeviceType.CUDA]
total = sum(e.self_device_time_total for e in events) / iters / 1000
print(f'torch {scale} b{bs} fp16 host-uint8: GPU time per iteration {total:.2f} ms over {sum(e.count for e in events) // iters} kernels/copies')
for e in sorted(events, key=lambda e: -e.self_device_time_total)[:25]:
    print(f'{e.self_device_time_total / iters / 1000:8.3f} ms {e.count // iters:5d}x  {e.key[:150]}')
