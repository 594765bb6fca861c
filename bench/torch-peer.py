#!/usr/bin/env python3
"""PyTorch peer of the BAFFLE client step, driven by bench/peer.ts (do not run by hand unless debugging).

The driver writes a spec (JSON) describing each model exactly as src/model/zoo.ts defines it: the layer
kinds, the flat parameter layout (names, shapes, offsets), a weight vector and a batch as raw little-endian
files. This script rebuilds the same network as a functional forward whose parameters are views into ONE
flat float32 buffer, so that a BAFFLE client step is, as in the official code, "perturb the weights in
place from noise, forward under no_grad":

    noise.normal_(generator=g)                          # regenerate z_k
    torch.add(base, noise, alpha=sigma, out=flat)       # W + sigma z_k, in place in the model's storage
    loss = cross_entropy(forward(x), y)                 # forward (no_grad or inference_mode)

Protocol: one JSON command per line on stdin, one JSON reply per line on stdout.
  {"cmd": "load", "spec": PATH}                  -> {"ok": true, "models": [...], "torch": VERSION, ...}
  {"cmd": "check", "model": ID, "out": PATH}     -> writes our logits (float32) to PATH, replies loss
  {"cmd": "time", "model": ID, "passes": N, "variant": V}
                                                 -> {"passes", "cpu_s", "wall_s", "regen_s", "perturb_s", "forward_s"}
  {"cmd": "convs", "model": ID, "reps": N}     -> {"convs": [{"weight", "input", "output", "layout", "ms"}, ...]}
  {"cmd": "quit"}
Variants: "no_grad" (NCHW, torch.no_grad), "inference_mode", "channels_last" (inference_mode, NHWC input),
"channels_last_stem" (inference_mode, NCHW input, NHWC from the first convolution's output on: with one input
channel oneDNN keeps the whole network in NCHW when the input is "channels_last", since a [N,1,H,W] tensor is
both layouts at once; converting after the stem gets its NHWC kernels, 17.6 -> 14.6 ms per WRN-10-2 pass here).
Timing uses time.thread_time() (on-CPU time of this thread: torch runs single-threaded here) and
time.perf_counter() (wall).
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

GN_EPS = 1e-5


def gn_groups(c):
    return max(2, c // 16)


def act_fn(kind):
    return {
        "hardswish": F.hardswish,
        "relu": F.relu,
        "selu": F.selu,
        "gelu": F.gelu,
    }[kind]


def build_forward(cfg, P):
    """The zoo definition (src/model/zoo.ts) over the parameter views P[name]. forward(x, stem_cl): with
    stem_cl the first convolution's output is made channels_last (the rest follows its layout)."""
    act = act_fn(cfg["activation"])

    def after_stem(h, stem_cl):
        return h.contiguous(memory_format=torch.channels_last) if stem_cl else h
    norm = cfg["norm"]

    def norm_act(h):
        if norm == "groupnorm":
            h = F.group_norm(h, gn_groups(h.shape[1]), eps=GN_EPS)
        return act(h)

    if cfg["model"] == "lenet":
        def forward(x, stem_cl=False):
            h = after_stem(F.conv2d(x, P["conv1.weight"], P["conv1.bias"], stride=1, padding=2), stem_cl)
            h = norm_act(h)
            h = F.max_pool2d(h, 2, 2)
            h = F.conv2d(h, P["conv2.weight"], P["conv2.bias"], stride=1, padding=2)
            h = norm_act(h)
            h = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
            return F.linear(h, P["fc.weight"], P["fc.bias"])
        return forward

    if cfg["model"] == "wrn":
        units = (cfg["depth"] - 4) // 6
        widths = [16 * cfg["width"], 32 * cfg["width"], 64 * cfg["width"]]
        plan = []  # (prefix, stride, projected)
        in_c = 16
        for s, out_c in enumerate(widths):
            for u in range(units):
                stride = 2 if (u == 0 and s > 0) else 1
                plan.append((f"stage{s + 1}.{u}", stride, in_c != out_c or stride != 1))
                in_c = out_c

        def forward(x, stem_cl=False):
            h = after_stem(F.conv2d(x, P["stem.weight"], None, stride=1, padding=1), stem_cl)
            for prefix, stride, projected in plan:
                pre = norm_act(h)
                r = F.conv2d(pre, P[prefix + ".conv1.weight"], None, stride=stride, padding=1)
                r = norm_act(r)
                r = F.conv2d(r, P[prefix + ".conv2.weight"], None, stride=1, padding=1)
                sc = F.conv2d(pre, P[prefix + ".shortcut.weight"], None, stride=stride, padding=0) if projected else h
                h = r + sc
            h = norm_act(h)
            h = torch.flatten(F.adaptive_avg_pool2d(h, 1), 1)
            return F.linear(h, P["fc.weight"], P["fc.bias"])
        return forward

    if cfg["model"] == "mlp":
        hidden = cfg["hidden"]

        def forward(x, stem_cl=False):
            h = torch.flatten(x, 1)
            for i in range(len(hidden)):
                h = act(F.linear(h, P[f"fc{i + 1}.weight"], P[f"fc{i + 1}.bias"]))
            return F.linear(h, P["fc_out.weight"], P["fc_out.bias"])
        return forward

    raise ValueError(f"unknown model {cfg['model']}")


class Peer:
    def __init__(self, entry, seed):
        cfg = entry["config"]
        self.id = entry["id"]
        self.n = entry["params"]
        self.sigma = entry["sigma"]
        base = read_f32(entry["weights"], self.n)
        self.base = base
        self.flat = base.clone()
        self.noise = torch.empty_like(base)
        self.P = {}
        for p in entry["layout"]:
            self.P[p["name"]] = self.flat[p["offset"]: p["offset"] + p["size"]].view(p["shape"])
        c, h, w = cfg["inputShape"]
        b = entry["batch"]
        self.x = read_f32(entry["x"], b * c * h * w).view(b, c, h, w)
        self.x_cl = self.x.contiguous(memory_format=torch.channels_last)
        self.y = read_u8(entry["y"], b).long()
        self.forward = build_forward(cfg, self.P)
        self.gen = torch.Generator().manual_seed(seed)

    def time(self, passes, variant):
        x = self.x_cl if variant == "channels_last" else self.x
        ctx = torch.no_grad if variant == "no_grad" else torch.inference_mode
        stem_cl = variant == "channels_last_stem"
        regen = perturb = fwd = 0.0
        loss_sum = 0.0
        c0 = time.thread_time()
        w0 = time.perf_counter()
        with ctx():
            for _ in range(passes):
                t0 = time.perf_counter()
                self.noise.normal_(generator=self.gen)
                t1 = time.perf_counter()
                torch.add(self.base, self.noise, alpha=self.sigma, out=self.flat)
                t2 = time.perf_counter()
                loss = F.cross_entropy(self.forward(x, stem_cl), self.y)
                loss_sum += loss.item()
                t3 = time.perf_counter()
                regen += t1 - t0
                perturb += t2 - t1
                fwd += t3 - t2
        return {
            "passes": passes,
            "cpu_s": time.thread_time() - c0,
            "wall_s": time.perf_counter() - w0,
            "regen_s": regen,
            "perturb_s": perturb,
            "forward_s": fwd,
            "loss_sum": loss_sum,
        }


    def conv_times(self, reps):
        """Each convolution's CPU time inside the forward pass (torch.profiler, in-network, as the timed
        passes run it), under each layout variant; the layout with the least total convolution time is
        returned (per-layer ms, mean over `reps` passes)."""
        calls = []
        original = F.conv2d

        def record(x, w, b=None, stride=1, padding=0, *rest):
            y = original(x, w, b, stride, padding, *rest)
            calls.append((tuple(x.shape), tuple(y.shape), w.data_ptr()))
            return y

        F.conv2d = record
        try:
            with torch.no_grad():
                self.forward(self.x)
        finally:
            F.conv2d = original
        names = {v.data_ptr(): k for k, v in self.P.items()}
        order = [names.get(ptr, "?") for _, _, ptr in calls]
        layouts = {
            "nchw": lambda: self.forward(self.x),
            "channels_last": lambda: self.forward(self.x_cl),
            "channels_last_stem": lambda: self.forward(self.x, True),
        }
        best = None
        with torch.inference_mode():
            for layout, run in layouts.items():
                for _ in range(3):
                    run()
                with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
                    for _ in range(reps):
                        run()
                # aten::conv2d events in call order, reps passes of len(calls) convolutions each.
                events = [e for e in prof.events() if e.name == "aten::conv2d"]
                if len(events) != reps * len(calls):
                    raise RuntimeError(f"profiler saw {len(events)} convolutions, expected {reps * len(calls)}")
                per = [0.0] * len(calls)
                for k, e in enumerate(events):
                    per[k % len(calls)] += e.cpu_time_total / 1000 / reps  # µs → ms
                if best is None or sum(per) < sum(best[1]):
                    best = (layout, per)
        layout, per = best
        return [{"weight": order[i], "input": list(calls[i][0]), "output": list(calls[i][1]), "layout": layout, "ms": per[i]}
                for i in range(len(calls))]


def read_array(path, count, dtype, unit):
    with open(path, "rb") as f:
        data = bytearray(f.read())
    t = torch.frombuffer(data, dtype=dtype)
    if t.numel() != count:
        raise ValueError(f"{path}: {t.numel()} {unit}, expected {count}")
    return t.clone()


def read_f32(path, count):
    return read_array(path, count, torch.float32, "floats")


def read_u8(path, count):
    return read_array(path, count, torch.uint8, "bytes")


def write_f32(t, path):
    t.detach().contiguous().to(torch.float32).numpy().astype("<f4").tofile(path)


def main():
    threads = int(os.environ.get("BAFFLE_PEER_THREADS", "1"))
    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    peers = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        msg = json.loads(line)
        try:
            cmd = msg["cmd"]
            if cmd == "load":
                with open(msg["spec"]) as f:
                    spec = json.load(f)
                for entry in spec["models"]:
                    peers[entry["id"]] = Peer(entry, spec.get("seed", 1))
                reply = {
                    "ok": True,
                    "models": list(peers),
                    "torch": torch.__version__,
                    "threads": torch.get_num_threads(),
                    "mkldnn": bool(torch.backends.mkldnn.is_available()),
                    "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
                    "python": sys.version.split()[0],
                }
            elif cmd == "check":
                p = peers[msg["model"]]
                p.flat.copy_(p.base)
                with torch.no_grad():
                    logits = p.forward(p.x)
                    loss = F.cross_entropy(logits, p.y)
                    # The timed layouts must compute the same function: largest |Δlogit| against NCHW.
                    layouts = [p.forward(p.x_cl), p.forward(p.x, True)]
                    layout_diff = max(float((v - logits).abs().max()) for v in layouts)
                write_f32(logits, msg["out"])
                reply = {"ok": True, "loss": float(loss), "layout_max_diff": layout_diff}
            elif cmd == "time":
                reply = {"ok": True, **peers[msg["model"]].time(int(msg["passes"]), msg.get("variant", "no_grad"))}
            elif cmd == "convs":
                reply = {"ok": True, "convs": peers[msg["model"]].conv_times(int(msg.get("reps", 20)))}
            elif cmd == "quit":
                print(json.dumps({"ok": True}), flush=True)
                return
            else:
                reply = {"ok": False, "error": f"unknown command {cmd}"}
        except Exception as e:  # report, keep serving
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
