#!/usr/bin/env python3
"""The world model's network and features in PyTorch (CPU), for the benchmark in BENCHMARKS.md.

Loads the same swm-model/1 safetensors file (parsed by hand: 8-byte header length, JSON
header, raw little-endian f32), runs the same forward pass (neighbour MLP, masked max-pool,
trunk, vehicle head) on the same feature batches that `bench_model` wrote, checks the
logits against the Rust ones and times it on one thread.

Then one closed-loop step like for like: from the world state `bench_model` wrote
(`world.json`, `raster.u8`: paths with successors and stop lines, the class raster, 64
scenarios of agents with their histories and route intents) it computes feature layout 1
(`crates/swm_model/src/features.rs`) vectorised over every agent of every scenario (path
matching, the route ahead with the same intent hash, stop lines and signals, ray marching
through the raster, neighbour sorting, the leader) in float64 as Rust does, checks the
features against Rust's (`step-features.f32`), runs the network with each agent's head,
checks the logits, and times features + network on one thread.

    python3 scripts/bench_model_torch.py MODEL.safetensors BENCH_DIR
"""
import json
import math
import struct
import sys
import time

import torch

EGO, NBR, NBR_DIM = 90, 8, 14
F64 = torch.float64
TAU = 2.0 * math.pi
# BevClass codes (crates/swm_twin/src/query/bev.rs).
GROUND, ROAD, SIDEWALK, CROSSING, BUILDING = 0, 1, 2, 3, 4
MATCH_RADIUS_M, LANE_POINTS, LANE_SPACING_M, STOP_HORIZON_M, RAY_MAX_M = 6.0, 15, 4.0, 60.0, 24.0
NEIGHBOUR_RADIUS_M, HIST = 40.0, 11
LEVEL_SEPARATION_M = 3.0  # swm_sim::metrics::LEVEL_SEPARATION_M


def load(path):
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    assert meta.get("format") == "swm-model/1", meta.get("format")
    data = raw[8 + n :]
    tensors = {}
    for name, info in header.items():
        a, b = info["data_offsets"]
        t = torch.frombuffer(bytearray(data[a:b]), dtype=torch.float32).reshape(info["shape"])
        tensors[name] = t
    return tensors


class Net(torch.nn.Module):
    def __init__(self, w):
        super().__init__()
        self.w = w

    def trunk(self, x):
        """Neighbour MLP with masked max-pool, then the trunk: [batch, T]."""
        w = self.w
        b = x.shape[0]
        ego = x[:, :EGO]
        nbr = x[:, EGO:].reshape(b * NBR, NBR_DIM)
        mask = nbr[:, NBR_DIM - 1 :]
        h = torch.relu(torch.nn.functional.linear(nbr, w["nbr.0.weight"], w["nbr.0.bias"]))
        h = torch.relu(torch.nn.functional.linear(h, w["nbr.1.weight"], w["nbr.1.bias"]))
        h = (h * mask).reshape(b, NBR, -1).amax(dim=1)
        z = torch.cat([ego, h], dim=1)
        z = torch.relu(torch.nn.functional.linear(z, w["trunk.0.weight"], w["trunk.0.bias"]))
        return torch.relu(torch.nn.functional.linear(z, w["trunk.1.weight"], w["trunk.1.bias"]))

    def forward(self, x):
        """Every row with the vehicle head."""
        return torch.nn.functional.linear(self.trunk(x), self.w["head_vehicle.weight"], self.w["head_vehicle.bias"])

    def forward_classes(self, x, ped):
        """Every agent with the head of its class: logits of vehicles, then of pedestrians
        (`ped`: bool per row), each in row order."""
        w = self.w
        z = self.trunk(x)
        veh = torch.nn.functional.linear(z[~ped], w["head_vehicle.weight"], w["head_vehicle.bias"])
        pd = torch.nn.functional.linear(z[ped], w["head_pedestrian.weight"], w["head_pedestrian.bias"])
        return veh, pd


def wrap_angle(a):
    t = torch.remainder(a, TAU)
    return torch.where(t > math.pi, t - TAU, t)


def mul32(x, m):
    """(x * m) mod 2^32 for x < 2^32 in int64, without overflowing."""
    lo = x * (m & 0xFFFF)
    hi = ((x * (m >> 16)) & 0xFFFF) << 16
    return (lo + hi) & 0xFFFFFFFF


def mix(a, b):
    """features::mix, the 32-bit finaliser of a route intent and a path index."""
    x = a ^ mul32(b, 0x9E3779B9)
    x = x ^ (x >> 16)
    x = mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class World:
    """The map and the agents of every scenario, as tensors (loading is not timed)."""

    def __init__(self, bench):
        w = json.load(open(f"{bench}/world.json"))
        self.time_s = w["time_s"]
        r = w["raster"]
        self.width, self.height, self.res = r["width"], r["height"], r["res_m"]
        self.origin = torch.tensor(r["origin_m"], dtype=F64)
        raw = bytearray(open(f"{bench}/raster.u8", "rb").read())
        cls = torch.frombuffer(raw, dtype=torch.uint8).to(torch.int64)
        self.classes = torch.where(cls > 8, GROUND, cls)
        paths = w["paths"]
        P = len(paths)
        maxp = max(len(p["points"]) for p in paths)
        maxs = max(1, max(len(p["successors"]) for p in paths))
        self.pts = torch.zeros(P, maxp, 2, dtype=F64)
        self.s_m = torch.full((P, maxp), math.inf, dtype=F64)
        self.npts = torch.tensor([len(p["points"]) for p in paths])
        self.length = torch.tensor([p["length_m"] for p in paths], dtype=F64)
        self.speed = torch.tensor([p["speed_limit_mps"] for p in paths], dtype=F64)
        self.is_lane = torch.tensor([p["is_lane"] for p in paths])
        self.stop = torch.tensor([math.nan if p["stop_s_m"] is None else p["stop_s_m"] for p in paths], dtype=F64)
        self.succ = torch.full((P, maxs), -1, dtype=torch.int64)
        self.nsucc = torch.tensor([len(p["successors"]) for p in paths])
        seg_a, seg_b, seg_path, seg_s0 = [], [], [], []
        for i, p in enumerate(paths):
            n = len(p["points"])
            self.pts[i, :n] = torch.tensor(p["points"], dtype=F64)
            self.pts[i, n:] = self.pts[i, n - 1]
            self.s_m[i, :n] = torch.tensor(p["s_m"], dtype=F64)
            for k, c in enumerate(p["successors"]):
                self.succ[i, k] = c
            for k in range(n - 1):
                seg_a.append(p["points"][k])
                seg_b.append(p["points"][k + 1])
                seg_path.append(i)
                seg_s0.append(p["s_m"][k])
        self.seg_a = torch.tensor(seg_a, dtype=F64)
        self.seg_b = torch.tensor(seg_b, dtype=F64)
        self.seg_path = torch.tensor(seg_path)
        self.seg_s0 = torch.tensor(seg_s0, dtype=F64)
        sc = w["scenarios"]
        S, A = len(sc), max(len(x) for x in sc)
        self.valid = torch.zeros(S, A, dtype=torch.bool)
        self.kind = torch.zeros(S, A, dtype=torch.int64)
        self.len_f32 = torch.zeros(S, A, dtype=torch.float32)
        self.wid_f32 = torch.zeros(S, A, dtype=torch.float32)
        self.hist = torch.zeros(S, A, HIST, 4, dtype=F64)  # right-aligned: index HIST-1 is now
        self.hist_n = torch.ones(S, A, dtype=torch.int64)
        self.signal = torch.full((S, A), 3, dtype=torch.int64)
        self.intent = torch.zeros(S, A, dtype=torch.int64)
        self.deck = torch.zeros(S, A, dtype=F64)
        for s, agents in enumerate(sc):
            for a, g in enumerate(agents):
                h = g["history"][-HIST:]
                self.valid[s, a] = True
                self.kind[s, a] = g["kind"]
                self.len_f32[s, a] = g["length_m"]
                self.wid_f32[s, a] = g["width_m"]
                self.hist[s, a, HIST - len(h) :] = torch.tensor(h, dtype=F64)
                self.hist[s, a, : HIST - len(h)] = torch.tensor(h[0], dtype=F64)
                self.hist_n[s, a] = len(h)
                self.signal[s, a] = g["signal"]
                self.intent[s, a] = g["intent"]
                self.deck[s, a] = g.get("deck_m", 0.0)

    def class_at(self, x, y):
        c = torch.floor((x - self.origin[0]) / self.res)
        r = torch.floor((y - self.origin[1]) / self.res)
        inside = (c >= 0) & (r >= 0) & (c < self.width) & (r < self.height)
        k = (r.clamp(0, self.height - 1) * self.width + c.clamp(0, self.width - 1)).to(torch.int64)
        return torch.where(inside, self.classes[k], GROUND)

    def path_at(self, pi, s):
        """Points at distance `s` along paths `pi` (same shapes), clamped (map::Path::at)."""
        shape = pi.shape
        pi, s = pi.reshape(-1), s.reshape(-1)
        n = self.npts[pi]
        s = torch.minimum(torch.clamp(s, min=0.0), self.length[pi])
        sm = self.s_m[pi]
        i = torch.searchsorted(sm, s.unsqueeze(1), right=True).squeeze(1) - 1
        i = torch.minimum(i.clamp(min=0), (n - 2).clamp(min=0))
        a = self.pts[pi, i]
        b = self.pts[pi, (i + 1).minimum(n - 1)]
        s0 = sm.gather(1, i.unsqueeze(1)).squeeze(1)
        s1 = sm.gather(1, (i + 1).minimum(n - 1).unsqueeze(1)).squeeze(1)
        seg = s1 - s0
        u = torch.where(seg > 1e-9, (s - s0) / torch.where(seg > 1e-9, seg, 1.0), 0.0)
        p = a + u.unsqueeze(1) * (b - a)
        return p.reshape(*shape, 2)


def features(W):
    """Feature layout 1 of every agent of every scenario: [S * A, 202] float32."""
    S, A = W.kind.shape
    N = S * A
    out = torch.zeros(N, EGO + NBR * NBR_DIM, dtype=F64)
    rows = torch.arange(N)
    h = W.hist.reshape(N, HIST, 4)
    n = W.hist_n.reshape(N)
    kind = W.kind.reshape(N)
    x, y, hd, v = h[:, -1, 0], h[:, -1, 1], h[:, -1, 2], h[:, -1, 3]
    c, s = torch.cos(hd), torch.sin(hd)

    def local(px, py):
        dx, dy = px - x, py - y
        return c * dx + s * dy, -s * dx + c * dy

    # Ego kinematics and history.
    out[:, 0] = v / 10.0
    two = n >= 2
    out[:, 1] = torch.where(two, (v - h[:, -2, 3]) / 0.1 / 3.0, 0.0)
    out[:, 2] = torch.where(two, wrap_angle(hd - h[:, -2, 2]) / 0.1 / 0.5, 0.0)
    out[:, 3] = (W.len_f32.reshape(N) / 5.0).to(F64)
    out[:, 4] = (W.wid_f32.reshape(N) / 2.0).to(F64)
    out[rows, 5 + kind] = 1.0
    past = (n - 1).clamp(max=HIST - 1)
    out[:, 9] = past.to(F64) / (HIST - 1)
    for j in range(5):
        k = HIST - 1 - torch.clamp(past, max=2 * (j + 1))
        hk = h[rows, k]
        lx, ly = local(hk[:, 0], hk[:, 1])
        out[:, 10 + 3 * j] = lx / 10.0
        out[:, 11 + 3 * j] = ly / 10.0
        out[:, 12 + 3 * j] = wrap_angle(hk[:, 2] - hd)

    # Path matching (map::MapContext::match_path): best score over every segment in reach.
    vehicle = kind < 3
    d = W.seg_b - W.seg_a  # [M, 2]
    seg_len = torch.hypot(d[:, 0], d[:, 1])
    cos_e = (d[:, 0] * c.unsqueeze(1) + d[:, 1] * s.unsqueeze(1)) / seg_len.clamp(min=1e-12)
    apx = x.unsqueeze(1) - W.seg_a[:, 0]
    apy = y.unsqueeze(1) - W.seg_a[:, 1]
    l2 = seg_len * seg_len
    u = ((apx * d[:, 0] + apy * d[:, 1]) / torch.where(l2 > 0, l2, 1.0)).clamp(0.0, 1.0)
    ex, ey = u * d[:, 0] - apx, u * d[:, 1] - apy
    dist2 = ex * ex + ey * ey
    ok = (seg_len >= 1e-6) & (cos_e >= 0.0) & (dist2 <= MATCH_RADIUS_M**2)
    score = torch.where(ok, torch.sqrt(dist2) + 4.0 * (1.0 - cos_e), math.inf)
    best_score, best = score.min(dim=1)
    matched = vehicle & torch.isfinite(best_score)
    m_path = W.seg_path[best]
    dist = torch.sqrt(dist2[rows, best])
    m_s = W.seg_s0[best] + u[rows, best] * seg_len[best]
    db = d[best]
    cross = db[:, 0] * apy[rows, best] - db[:, 1] * apx[rows, best]
    lateral = torch.where(cross < 0, -dist, dist)
    herr = wrap_angle(torch.atan2(db[:, 1], db[:, 0]) - hd)

    # The route ahead: up to 8 paths, successors chosen by the intent hash.
    R = 8
    r_path = torch.full((N, R), -1, dtype=torch.int64)
    r_start = torch.zeros(N, R, dtype=F64)
    r_path[:, 0] = torch.where(matched, m_path, -1)
    r_start[:, 0] = -m_s
    end = W.length[m_path] - m_s
    cur = m_path.clone()
    alive = matched.clone()
    intent = W.intent.reshape(N)
    horizon = LANE_POINTS * LANE_SPACING_M + 1.0
    for k in range(1, R):
        ns = W.nsucc[cur]
        alive = alive & (end < horizon) & (ns > 0)
        choice = mix(intent, cur) % ns.clamp(min=1)
        nxt = W.succ[cur, choice]
        r_path[:, k] = torch.where(alive, nxt, -1)
        r_start[:, k] = end
        end = torch.where(alive, end + W.length[nxt.clamp(min=0)], end)
        cur = torch.where(alive, nxt, cur)
    r_ok = r_path >= 0
    dk = (torch.arange(LANE_POINTS, dtype=F64) + 1.0) * LANE_SPACING_M  # [15]
    usable = r_ok.unsqueeze(1) & (r_start.unsqueeze(1) <= dk.view(1, -1, 1))  # [N, 15, R]
    idx = (usable.to(torch.int64) * torch.arange(1, R + 1)).amax(dim=2).clamp(min=1) - 1
    pi = r_path.gather(1, idx).clamp(min=0)
    st = r_start.gather(1, idx)
    q = W.path_at(pi, dk.unsqueeze(0) - st)  # [N, 15, 2]
    dx, dy = q[..., 0] - x.unsqueeze(1), q[..., 1] - y.unsqueeze(1)
    lx = c.unsqueeze(1) * dx + s.unsqueeze(1) * dy
    ly = -s.unsqueeze(1) * dx + c.unsqueeze(1) * dy
    mf = matched.to(F64)
    out[:, 25] = mf
    out[:, 26] = (matched & ~W.is_lane[m_path]).to(F64)
    out[:, 27:57:2] = lx / 30.0 * mf.unsqueeze(1)
    out[:, 28:57:2] = ly / 30.0 * mf.unsqueeze(1)
    out[:, 57] = lateral / 2.0 * mf
    out[:, 58] = torch.sin(herr) * mf
    out[:, 59] = torch.cos(herr) * mf
    out[:, 60] = W.speed[m_path] / 15.0 * mf
    # The first stop line along the route within [-1, 60] m.
    stop = W.stop[r_path.clamp(min=0)]
    ds = r_start + stop
    has = r_ok & torch.isfinite(stop) & (ds >= -1.0) & (ds <= STOP_HORIZON_M)
    first = torch.argmax(has.to(torch.int64), dim=1)
    found = matched & has.any(dim=1)
    d_stop = ds[rows, first]
    out[:, 61] = torch.where(found, d_stop.clamp(min=0.0) / STOP_HORIZON_M, mf)
    out[:, 62] = found.to(F64)
    rec = W.signal.reshape(N)
    sig = torch.where(found | (kind == 3), rec, 3)
    out[rows, 63 + sig] = 1.0

    # Rays through the class raster, and the class underfoot.
    here = W.class_at(x, y)
    here_road = (here == ROAD) | (here == CROSSING)
    ang = hd.unsqueeze(1) + torch.arange(8, dtype=F64) * (math.pi / 4.0)  # [N, 8]
    t = torch.arange(1, int(RAY_MAX_M) + 1, dtype=F64)  # [24]
    px = x.view(-1, 1, 1) + t.view(1, 1, -1) * torch.cos(ang).unsqueeze(2)
    py = y.view(-1, 1, 1) + t.view(1, 1, -1) * torch.sin(ang).unsqueeze(2)
    cl = W.class_at(px, py)
    road = (cl == ROAD) | (cl == CROSSING)
    tt = t.view(1, 1, -1).expand_as(px)
    building = torch.where(cl == BUILDING, tt, RAY_MAX_M).amin(dim=2)
    edge = torch.where(road != here_road.view(-1, 1, 1), tt, RAY_MAX_M).amin(dim=2)
    out[:, 67:83:2] = building / RAY_MAX_M
    out[:, 68:83:2] = edge / RAY_MAX_M
    g = torch.full_like(here, 3)
    g = torch.where(here == ROAD, 0, torch.where(here == CROSSING, 1, torch.where(here == SIDEWALK, 2, g)))
    out[rows, 83 + g] = 1.0

    # Neighbours within each scenario, nearest first (ties by index), and the leader.
    X, Y, H, V = x.view(S, A), y.view(S, A), hd.view(S, A), v.view(S, A)
    C, Sn = c.view(S, A), s.view(S, A)
    d2 = (X.unsqueeze(1) - X.unsqueeze(2)) ** 2 + (Y.unsqueeze(1) - Y.unsqueeze(2)) ** 2  # [S, i, j]
    eye = torch.eye(A, dtype=torch.bool).unsqueeze(0)
    # On the agent's level: decks not LEVEL_SEPARATION_M or more apart (a NaN deck keeps).
    same_level = ~((W.deck.unsqueeze(1) - W.deck.unsqueeze(2)).abs() >= LEVEL_SEPARATION_M)
    near = W.valid.unsqueeze(1) & W.valid.unsqueeze(2) & ~eye & (d2 <= NEIGHBOUR_RADIUS_M**2) & same_level
    key = torch.where(near, d2, math.inf)
    key, order = torch.sort(key, dim=2, stable=True)
    ok = torch.isfinite(key)
    Xj, Yj = X.unsqueeze(1).expand(S, A, A).gather(2, order), Y.unsqueeze(1).expand(S, A, A).gather(2, order)
    Hj, Vj = H.unsqueeze(1).expand(S, A, A).gather(2, order), V.unsqueeze(1).expand(S, A, A).gather(2, order)
    Lj = W.len_f32.unsqueeze(1).expand(S, A, A).gather(2, order)
    Wj = W.wid_f32.unsqueeze(1).expand(S, A, A).gather(2, order)
    Kj = W.kind.unsqueeze(1).expand(S, A, A).gather(2, order)
    ci, si = C.unsqueeze(2), Sn.unsqueeze(2)
    dx, dy = Xj - X.unsqueeze(2), Yj - Y.unsqueeze(2)
    lpx, lpy = ci * dx + si * dy, -si * dx + ci * dy
    vbx, vby = Vj * torch.cos(Hj), Vj * torch.sin(Hj)
    half = 0.5 * (W.wid_f32.unsqueeze(2) + Wj).to(F64) + 0.5
    corridor = ok & (lpx > 0.0) & (lpy.abs() < half)
    gap = torch.clamp(lpx - 0.5 * (W.len_f32.unsqueeze(2) + Lj).to(F64), min=0.0)
    gap = torch.where(corridor, gap, math.inf)
    best_gap, lead = gap.min(dim=2)
    has_lead = torch.isfinite(best_gap).reshape(N)
    lvx = (ci * vbx + si * vby).gather(2, lead.unsqueeze(2)).squeeze(2)
    out[:, 87] = has_lead.to(F64)
    out[:, 88] = torch.where(has_lead, best_gap.reshape(N) / NEIGHBOUR_RADIUS_M, 1.0)
    out[:, 89] = torch.where(has_lead, (lvx.reshape(N) - v) / 10.0, 0.0)
    K = min(NBR, A)
    okk = ok[:, :, :K]
    f = okk.to(F64)
    dh = wrap_angle(Hj[:, :, :K] - H.unsqueeze(2))
    rvx = vbx[:, :, :K] - (V * C).unsqueeze(2)
    rvy = vby[:, :, :K] - (V * Sn).unsqueeze(2)
    nb = torch.zeros(S, A, NBR, NBR_DIM, dtype=F64)
    nb[..., :K, 0] = lpx[:, :, :K] / 20.0 * f
    nb[..., :K, 1] = lpy[:, :, :K] / 20.0 * f
    nb[..., :K, 2] = torch.cos(dh) * f
    nb[..., :K, 3] = torch.sin(dh) * f
    nb[..., :K, 4] = (ci * rvx + si * rvy) / 10.0 * f
    nb[..., :K, 5] = (-si * rvx + ci * rvy) / 10.0 * f
    nb[..., :K, 6] = (Lj[:, :, :K] / 5.0).to(F64) * f
    nb[..., :K, 7] = (Wj[:, :, :K] / 2.0).to(F64) * f
    nb[..., :K, 8:12] = torch.nn.functional.one_hot(Kj[:, :, :K], 4).to(F64) * f.unsqueeze(-1)
    nb[..., :K, 12] = torch.sqrt(torch.where(okk, key[:, :, :K], 0.0)) / NEIGHBOUR_RADIUS_M
    nb[..., :K, 13] = f
    out[:, EGO:] = nb.reshape(N, NBR * NBR_DIM)
    return out.to(torch.float32)[W.valid.reshape(N)]


def main():
    model, bench = sys.argv[1], sys.argv[2]
    torch.set_num_threads(1)
    net = Net(load(model)).eval()
    results = {"torch": torch.__version__, "threads": 1, "forward": []}
    # PyTorch's own f32 matmul peak on this machine (1024^3, best of 5): part of the
    # machine's measured peak, which the summary takes as the best of Rust's and this.
    a, b = torch.ones(1024, 1024), torch.full((1024, 1024), 0.5)
    with torch.inference_mode():
        torch.mm(a, b)
        best = 0.0
        for _ in range(5):
            t = time.perf_counter()
            torch.mm(a, b)
            best = max(best, 2 * 1024**3 / (time.perf_counter() - t) / 1e9)
    results["peak_gflops_1thread"] = best
    print(f"torch f32 matmul peak (1 thread, 1024^3): {best:.1f} GFLOP/s")
    for batch in (64, 256, 1024):
        x = torch.frombuffer(bytearray(open(f"{bench}/features-{batch}.f32", "rb").read()), dtype=torch.float32).reshape(batch, -1)
        want = torch.frombuffer(bytearray(open(f"{bench}/logits-{batch}.f32", "rb").read()), dtype=torch.float32).reshape(batch, -1)
        with torch.inference_mode():
            got = net(x)
            diff = (got - want).abs().max().item()
            iters = max(200_000 // batch, 20)
            for _ in range(5):
                net(x)
            t = time.perf_counter()
            for _ in range(iters):
                net(x)
            s = time.perf_counter() - t
        rate = iters * batch / s
        print(f"torch forward batch {batch:>5}: {rate:>10.0f} agent-steps/s (1 thread), max |logit diff| vs Rust {diff:.2e}")
        results["forward"].append({"batch": batch, "agent_steps_per_s": rate, "max_abs_diff": diff})

    # One closed-loop step: features from the world state, then the network.
    world = World(bench)
    want_x = torch.frombuffer(bytearray(open(f"{bench}/step-features.f32", "rb").read()), dtype=torch.float32)
    want_l = torch.frombuffer(bytearray(open(f"{bench}/step-logits.f32", "rb").read()), dtype=torch.float32)
    ped = world.kind[world.valid] == 3
    with torch.inference_mode():
        x = features(world)
        want_x = want_x.reshape(x.shape[0], -1)
        fdiff = (x - want_x).abs()
        worst = fdiff.amax(dim=0)
        veh, pd = net.forward_classes(x, ped)
        # Rust's logits: each row's head in row order; split them the same way.
        sizes = torch.where(ped, pd.shape[1], veh.shape[1])
        rust_rows = torch.split(want_l, sizes.tolist())
        lv = torch.stack([r for r, p in zip(rust_rows, ped.tolist()) if not p])
        lp = torch.stack([r for r, p in zip(rust_rows, ped.tolist()) if p])
        ldiff = max((veh - lv).abs().max().item(), (pd - lp).abs().max().item())
        for _ in range(2):
            net.forward_classes(features(world), ped)
        reps = 20
        t_feat = t_net = 0.0
        for _ in range(reps):
            t0 = time.perf_counter()
            x = features(world)
            t1 = time.perf_counter()
            net.forward_classes(x, ped)
            t2 = time.perf_counter()
            t_feat += t1 - t0
            t_net += t2 - t1
    n = reps * x.shape[0]
    print(
        f"torch step, features + network (1 thread, {x.shape[0]} agents): {n / (t_feat + t_net):.0f} agent-steps/s "
        f"(features {n / t_feat:.0f}, network {n / t_net:.0f}); max |feature diff| vs Rust {fdiff.max().item():.2e} "
        f"(column {int(worst.argmax())}), max |logit diff| {ldiff:.2e}"
    )
    results["step"] = {
        "agents": x.shape[0],
        "features_network_agent_steps_per_s": n / (t_feat + t_net),
        "features_agent_steps_per_s": n / t_feat,
        "network_agent_steps_per_s": n / t_net,
        "max_abs_feature_diff": fdiff.max().item(),
        "features_differing_over_1e-3": int((fdiff > 1e-3).any(dim=1).sum()),
        "max_abs_logit_diff": ldiff,
    }
    json.dump(results, open(f"{bench}/bench-torch.json", "w"), indent=2)


if __name__ == "__main__":
    main()
