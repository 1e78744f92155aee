#!/usr/bin/env python3
"""First uses of the 1.5 UNet's convolution shapes in a fresh process, alone or beside another thread's work
(docs/performance-notes.md section 35, calls WE). Runs on the GPU host's PyTorch, whose ATen and cuDNN are the ones
the LibTorch build of latentsync uses; needs no build:

    for m in alone loader loader_pinned frames pin_alloc busy prewarm; do python3 scripts/probe_first_use.py $m; done

One process per mode (first uses are per process). The worker thread meets 31 convolution shapes (batch 64 = CFG 2 x
2 chunks x 16 frames, fp16, channels-last, 256 px latents) once and then again, after cuDNN's first call was made on
another shape (as the face pass's detector makes it in a render). Beside it: `loader` copies 256 MB from pageable
host memory, `loader_pinned` the same from pinned memory asynchronously, `frames` uploads 720p frames as the face
pass does, `pin_alloc` allocates new page-locked chunk buffers (44 MB, every 10 ms) as the render's first groups do,
`busy` keeps the GPU busy with matrix products, `prewarm` lets another thread meet the shapes first.
`load_alone` and `load_with_prewarm` weigh a pre-warm beside a model load: a fixed load (2.5 GB of pageable 256 MB
host -> device copies) alone, or with another thread meeting the shapes at the same time; both report the load's
time, the pre-warm's, and the worker's first pass after them.
"""
import sys, threading, time, torch, torch.nn.functional as F
mode = sys.argv[1]
dev = torch.device("cuda:0"); torch.zeros(1, device=dev); torch.cuda.synchronize()
N = 64  # images per convolution call: CFG 2 x 2 chunks x 16 frames
# (in channels, out channels, input size, stride, kernel) of each convolution the UNet runs at 256 px
convs = [(13,320,32,1,3),(320,320,32,1,3),(320,320,32,2,3),(320,640,16,1,3),(640,640,16,1,3),(320,640,16,1,1),
 (640,640,16,2,3),(640,1280,8,1,3),(1280,1280,8,1,3),(640,1280,8,1,1),(1280,1280,8,2,3),(1280,1280,4,1,3),
 (2560,1280,4,1,3),(2560,1280,4,1,1),(2560,1280,8,1,3),(1920,1280,8,1,3),(2560,1280,8,1,1),
 (1920,1280,8,1,1),(1280,1280,16,1,3),(1920,640,16,1,3),(1280,640,16,1,3),(960,640,16,1,3),(1920,640,16,1,1),
 (1280,640,16,1,1),(960,640,16,1,1),(640,640,32,1,3),(960,320,32,1,3),(640,320,32,1,3),(960,320,32,1,1),
 (640,320,32,1,1),(320,4,32,1,3)]
# a first conv of another shape (the face pass's detector would have made cuDNN's first call before the worker)
def half_nhwc(*sizes):
    return torch.randn(*sizes, device=dev, dtype=torch.half).to(memory_format=torch.channels_last)
F.conv2d(half_nhwc(1, 3, 64, 64), half_nhwc(8, 3, 3, 3))
torch.cuda.synchronize()
ins = [((ci, co, h, s, k), half_nhwc(N, ci, h, h), half_nhwc(co, ci, k, k)) for (ci, co, h, s, k) in convs]
torch.cuda.synchronize()
stop = threading.Event()
def loader():
    host = torch.randn(64*2**20)  # 256 MB float32, pageable
    while not stop.is_set(): host.to(dev, torch.half); torch.cuda.current_stream(dev).synchronize()
def loader_pinned():
    host = torch.randn(64*2**20).pin_memory(); s = torch.cuda.Stream(dev)
    with torch.cuda.stream(s):
        while not stop.is_set(): host.to(dev, non_blocking=True); s.synchronize()
def frames():  # a face pass's uploads: 720p RGB frames, pageable
    host = torch.randint(0, 255, (720, 1280, 3), dtype=torch.uint8)
    while not stop.is_set(): host.to(dev); torch.cuda.current_stream(dev).synchronize()
def pin_alloc():  # a render's chunk buffers: 16 720p frames (44 MB) in new page-locked blocks, kept alive
    kept = []
    while not stop.is_set() and len(kept) < 40:
        kept.append(torch.empty((16, 720, 1280, 3), dtype=torch.uint8, pin_memory=True)); time.sleep(0.01)
    stop.wait()
def busy():
    s = torch.cuda.Stream(dev); a = torch.randn(4096,4096,device=dev,dtype=torch.half)
    with torch.cuda.stream(s):
        while not stop.is_set():
            for _ in range(20): a @ a
            s.synchronize()
side = {"loader": loader, "busy": busy, "loader_pinned": loader_pinned, "frames": frames,
        "pin_alloc": pin_alloc}.get(mode)
if side: th = threading.Thread(target=side); th.start(); time.sleep(0.5)
res = {}
def conv_pass(stream):  # every shape once, seconds to the end of its GPU work
    t0 = time.perf_counter()
    for key, x, w in ins:
        F.conv2d(x, w, stride=key[3], padding=key[4]//2)
    stream.synchronize()
    return time.perf_counter() - t0
def worker():
    s = torch.cuda.Stream(dev)
    with torch.no_grad(), torch.cuda.stream(s):
        res["first"] = conv_pass(s)
        res["again"] = conv_pass(s)
def fixed_load(out):  # a model load's copies: 10 x 256 MB, pageable
    host = torch.randn(64*2**20); t0 = time.perf_counter()
    for _ in range(10): host.to(dev, torch.half); torch.cuda.current_stream(dev).synchronize()
    out["load"] = time.perf_counter() - t0
if mode in ("load_alone", "load_with_prewarm"):
    timings = {}
    threads = [threading.Thread(target=fixed_load, args=(timings,))]
    if mode == "load_with_prewarm":
        def prewarm():
            worker(); timings["prewarm"] = res["first"]
        threads.append(threading.Thread(target=prewarm))
    for t in threads: t.start()
    for t in threads: t.join()
    print(mode + ":", {k: round(v*1e3) for k, v in timings.items()}, "ms")
if mode == "prewarm":  # another thread meets the shapes first; then the worker, timed
    p = threading.Thread(target=worker); p.start(); p.join()
    print("prewarm thread:", {k: round(v*1e3) for k, v in res.items()})
w = threading.Thread(target=worker); w.start(); w.join(); stop.set()
if side: th.join()
print(f"{mode}: {len(convs)} UNet conv shapes, first pass {res['first']*1e3:.0f} ms, "
      f"again {res['again']*1e3:.0f} ms", flush=True)
