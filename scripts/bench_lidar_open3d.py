#!/usr/bin/env python3
"""Open3D half of scripts/bench-lidar.sh: times open3d.t.geometry.RaycastingScene.cast_rays
on the mesh and rays written by `cargo run --release -p swm_sensors --example bench_lidar`,
compares the distances with swm_sensors' and prints a table (Markdown) with the ratio.

Usage: bench_lidar_open3d.py OUT_DIR
"""
import json
import sys
import time

import numpy as np
import open3d as o3d

REPEATS = 3
AGREE_M = 0.01  # distances within 1 cm count as the same hit


def main() -> None:
    out = sys.argv[1]
    meta = json.load(open(f"{out}/meta.json"))
    vertices = np.fromfile(f"{out}/vertices.f32", dtype="<f4").reshape(-1, 3)
    triangles = np.fromfile(f"{out}/triangles.u32", dtype="<u4").reshape(-1, 3)
    rays = np.fromfile(f"{out}/rays.f32", dtype="<f4").reshape(-1, 6)
    swm_t = np.fromfile(f"{out}/swm_t.f32", dtype="<f4")
    assert len(vertices) == meta["vertices"] and len(triangles) == meta["triangles"] and len(rays) == meta["rays"]

    t0 = time.perf_counter()
    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.core.Tensor(vertices), o3d.core.Tensor(triangles))
    # The BVH (Embree) is committed on the first query: time it with one ray.
    scene.cast_rays(o3d.core.Tensor(rays[:1]))
    build_s = time.perf_counter() - t0

    rays_t = o3d.core.Tensor(rays)
    timings = []
    t_hit = None
    for threads in (1, 2):
        best = float("inf")
        for _ in range(REPEATS):
            t = time.perf_counter()
            ans = scene.cast_rays(rays_t, nthreads=threads)
            t_hit = ans["t_hit"].numpy()
            best = min(best, time.perf_counter() - t)
        timings.append((threads, best, len(rays) / best))

    # Agreement of distances (rays are unit length, so t_hit is in metres).
    o3d_hit = np.isfinite(t_hit)
    swm_hit = np.isfinite(swm_t)
    both = o3d_hit & swm_hit
    with np.errstate(invalid="ignore"):
        close = both & (np.abs(t_hit - swm_t) <= AGREE_M)
    agree = close.sum() + (~o3d_hit & ~swm_hit).sum()
    diff = np.abs(t_hit[both] - swm_t[both])

    print(f"twin: {meta['twin']}; {meta['triangles']:,} triangles; {meta['rays']:,} rays (32-channel lidar scans from 20 street poses); swm profile: {meta['profile']}")
    print(f"Open3D {o3d.__version__}, numpy {np.__version__}")
    print()
    print("| threads | swm_sensors (M rays/s) | Open3D RaycastingScene (M rays/s) | swm / Open3D |")
    print("| --- | --- | --- | --- |")
    swm = {r["threads"]: r["rays_per_s"] for r in meta["swm_threads"]}
    for threads, _, rate in timings:
        print(f"| {threads} | {swm[threads] / 1e6:.2f} | {rate / 1e6:.2f} | {swm[threads] / rate:.2f} |")
    print()
    print(f"BVH build: swm_sensors {meta['swm_build_s']:.3f} s, Open3D (add_triangles + first query) {build_s:.3f} s")
    print(
        f"agreement: {agree:,} of {len(rays):,} rays ({100.0 * agree / len(rays):.3f}%) agree within {AGREE_M * 100:.0f} cm "
        f"(hits: swm {swm_hit.sum():,}, Open3D {o3d_hit.sum():,}, both {both.sum():,}; "
        f"max |difference| where both hit {diff.max() if len(diff) else 0.0:.4f} m, median {np.median(diff) if len(diff) else 0.0:.2e} m)"
    )


if __name__ == "__main__":
    main()
