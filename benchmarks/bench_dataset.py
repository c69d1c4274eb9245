"""Dataset audit + dedupe benchmark (issue 7). Prints timings, ratios and the duplicate accuracy table.

    .venv/bin/python benchmarks/bench_dataset.py [--sizes 2000,10000] [--cache-dir /tmp/ategnatos-bench]

Generated datasets are cached outside the repository (generating 10,000 takes ~15 min on 2 cores).
Side by side, per size:
  - decode floor: Pillow decode of every image over all cores;
  - plain baseline: one process, full decode, imagehash.phash, every pair of ImageHash objects compared
    (at large n the pair loop is timed on a sample and scaled by n^2, and says so);
  - imagededup PHash().find_duplicates end to end, when a Python with imagededup is available
    (``--imagededup-python``; it is not a project dependency);
  - dataset_audit + dataset_dedupe through the MCP server (in-memory client), cold, then warm;
    each run in its own process so peak memory is its own.
Then one artist's series (``--series 90,22``: distinct paintings of shared motifs plus planted copies, from
tests/fixtures/dataset/make_series.py): precision is the point there, as any pair of two different paintings
reported as duplicates is a painting quarantined by mistake (issue 12).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from itertools import combinations
from multiprocessing import Pool
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
GENERATORS = [
    REPO.parent / "shared" / "bench" / "make_dataset.py",
    REPO / "tests" / "fixtures" / "dataset" / "make_dataset.py",
]
SERIES_GENERATOR = REPO / "tests" / "fixtures" / "dataset" / "make_series.py"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".gif"}
PAIR_SAMPLE = 3000


def ensure_dataset(cache: Path, n: int) -> Path:
    out = cache / f"n{n}"
    if (out / "ground_truth.json").exists():
        return out
    generator = next(p for p in GENERATORS if p.exists())
    print(f"generating n={n} into {out} (cached for later runs)...", flush=True)
    subprocess.run([sys.executable, str(generator), str(out), "--n", str(n), "--seed", "1", "--force"], check=True)
    return out


def image_files(root: Path) -> list[Path]:
    return sorted(
        p for p in (root / "dataset").rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "quarantine" not in p.parts
    )


# --- decode floor ---------------------------------------------------------------------------------
def _decode(path: str) -> bool:
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
        return True
    except Exception:  # noqa: BLE001 - broken files are part of the set
        return False


def children_cpu() -> float:
    """CPU seconds of finished child processes (and their reaped children): robust when the machine is shared."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def decode_floor(files: list[Path]) -> tuple[float, float]:
    """Wall and CPU seconds to decode every file over all cores."""
    t, c = time.perf_counter(), children_cpu()
    with Pool(os.cpu_count()) as pool:
        list(pool.imap_unordered(_decode, [str(f) for f in files], chunksize=16))
        pool.close()
        pool.join()
    return time.perf_counter() - t, children_cpu() - c


# --- plain baseline -------------------------------------------------------------------------------
def _baseline_hash(path: Path) -> Any:
    import imagehash
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            return imagehash.phash(im)
    except Exception:  # noqa: BLE001
        return None


def plain_baseline(files: list[Path], full: bool) -> dict[str, Any]:
    t = time.perf_counter()
    hashes = [h for h in (_baseline_hash(f) for f in files) if h is not None]
    hashing = time.perf_counter() - t
    sample = hashes if full or len(hashes) <= PAIR_SAMPLE else hashes[:PAIR_SAMPLE]
    t = time.perf_counter()
    close = sum(1 for a, b in combinations(sample, 2) if a - b <= 10)
    pairs = time.perf_counter() - t
    scale = (len(hashes) / len(sample)) ** 2
    return {"hashing": hashing, "pairs": pairs * scale, "extrapolated": scale > 1, "close_pairs": close}


# --- imagededup -----------------------------------------------------------------------------------
IMAGEDEDUP_SCRIPT = r"""
import json, resource, sys, time, types
t0 = time.perf_counter()
# Only the CNN method needs torch (not installed here); stub the two modules that import it, PHash is unaffected.
for name, attr in (("imagededup.methods.cnn", "CNN"), ("imagededup.utils.models", "CustomModel")):
    stub = types.ModuleType(name)
    setattr(stub, attr, None)
    sys.modules[name] = stub
try:
    from imagededup.methods import PHash
except Exception as exc:
    print(json.dumps({"error": f"{type(exc).__name__}: {exc}"})); sys.exit(0)
t1 = time.perf_counter()
dups = PHash(verbose=False).find_duplicates(image_dir=sys.argv[1], max_distance_threshold=10, recursive=True)
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "run": t2 - t1, "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "dups": dups}))
"""


def run_imagededup(python: str, root: Path) -> dict[str, Any]:
    c = children_cpu()
    proc = subprocess.run([python, "-c", IMAGEDEDUP_SCRIPT, str(root / "dataset")], capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if not lines:
        return {"error": (proc.stderr or "no output").strip().splitlines()[-1]}
    return {**json.loads(lines[-1]), "cpu": children_cpu() - c}  # end to end, import included


# --- ours (run in a child process: --phase) -------------------------------------------------------
async def _ours(dataset: Path, home: Path) -> dict[str, Any]:
    from mcp import Client

    from ategnatos_mcp.server import build_server
    from ategnatos_mcp.settings import load_settings

    settings = load_settings(env={"ATEGNATOS_HOME": str(home)}, extra_roots=[str(dataset.parent)])
    async with Client(build_server(settings), raise_exceptions=True) as client:
        t = time.perf_counter()
        audit = await client.call_tool("dataset_audit", {"path": str(dataset), "detail": 0, "wait_seconds": 600})
        t_audit = time.perf_counter() - t
        t = time.perf_counter()
        dedupe = await client.call_tool(
            "dataset_dedupe", {"path": str(dataset), "mirror": True, "detail": 100_000, "wait_seconds": 600}
        )
        t_dedupe = time.perf_counter() - t
    assert not audit.is_error and not dedupe.is_error, (audit.content, dedupe.content)
    assert audit.structured_content["complete"] and dedupe.structured_content["complete"]  # type: ignore[index]
    groups = [[f["path"] for f in g["files"]] for g in dedupe.structured_content["groups"]]  # type: ignore[index]
    decoded = audit.structured_content["decoded"]  # type: ignore[index]
    look_alikes = dedupe.structured_content["look_alike_pairs"]  # type: ignore[index]
    return {"audit": t_audit, "dedupe": t_dedupe, "groups": groups, "decoded": decoded, "look_alikes": look_alikes}


def _tree_rss_mb(root: int) -> float:
    """Memory of a process and all its descendants right now, in MB (Linux /proc; 0 elsewhere)."""
    parent: dict[int, int] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    parent[int(entry)] = int(fh.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
    tree, frontier = [root], [root]
    while frontier:
        pid = frontier.pop()
        children = [c for c, p in parent.items() if p == pid]
        tree.extend(children)
        frontier.extend(children)
    return sum(_pss_kb(pid) for pid in tree) / 1024


def _pss_kb(pid: int) -> float:
    """Proportional set size: pages shared with the fork server are counted once overall."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def phase_main(dataset: str, home: str) -> None:
    import anyio

    out = anyio.run(_ours, Path(dataset), Path(home))
    out["self_cpu"] = sum(resource.getrusage(resource.RUSAGE_SELF)[:2])
    # The workers are children of multiprocessing's fork server: stop it and wait for it, so their CPU time and
    # memory are counted in this process's RUSAGE_CHILDREN (an orphaned fork server would take them along).
    from multiprocessing import forkserver

    forkserver._forkserver._stop()  # pyright: ignore[reportAttributeAccessIssue]  # private, but the only way
    out["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["worker_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps(out))


def run_ours(root: Path, home: Path) -> dict[str, Any]:
    import threading

    t, c = time.perf_counter(), children_cpu()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--phase", str(root / "dataset"), str(home)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:  # from here, so the sampling costs the measured processes nothing
        while not done.wait(0.25):
            peak[0] = max(peak[0], _tree_rss_mb(proc.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    stdout, stderr = proc.communicate()
    done.set()
    sampler.join()
    wall = time.perf_counter() - t
    if proc.returncode != 0:
        raise SystemExit(stderr[-3000:])
    result = json.loads(stdout.strip().splitlines()[-1])
    result["wall"] = wall
    result["cpu"] = children_cpu() - c  # end to end: interpreter, server start, workers, audit and dedupe
    result["tree_peak_mb"] = peak[0]
    return result


# --- accuracy -------------------------------------------------------------------------------------
def accuracy(gt: dict[str, Any], reported_pairs: set[frozenset[str]]) -> tuple[dict[str, float], float, int]:
    """Recall per planted kind, precision over reported pairs, and how many reported pairs are different pictures."""
    truth: dict[str, int] = {}
    for i, g in enumerate(gt["duplicate_groups"]):
        truth[g["original"]] = i
        for c in g["copies"]:
            truth[c["path"]] = i
    recall = {
        kind: sum(frozenset(p) in reported_pairs for p in pairs) / max(1, len(pairs))
        for kind, pairs in gt["duplicate_pairs_by_kind"].items()
    }
    good = sum(1 for p in reported_pairs if len({truth.get(x, -1 - hash(x)) for x in p}) == 1)
    return recall, good / max(1, len(reported_pairs)), len(reported_pairs) - good


def pairs_from_groups(groups: list[list[str]]) -> set[frozenset[str]]:
    return {frozenset(p) for g in groups for p in combinations(g, 2)}


def pairs_from_map(dups: dict[str, list[str]]) -> set[frozenset[str]]:
    return {frozenset((a, b)) for a, bs in dups.items() for b in bs if a != b}


def bench_size(n: int, args: argparse.Namespace) -> None:
    root = ensure_dataset(Path(args.cache_dir), n)
    gt = json.loads((root / "ground_truth.json").read_text())
    files = image_files(root)
    print(f"\n=== n = {n}: {len(files)} image files ===", flush=True)
    floor, floor_cpu = decode_floor(files)
    print(f"decode floor (Pillow, {os.cpu_count()} processes): {floor:.1f} s (cpu {floor_cpu:.1f} s)", flush=True)

    home = Path(args.cache_dir) / f"home-n{n}"
    cache_file = home / "workspace" / ".cache" / "dataset-probe.sqlite"
    for suffix in ("", "-wal", "-shm"):
        Path(str(cache_file) + suffix).unlink(missing_ok=True)
    (home / "grimoire").mkdir(parents=True, exist_ok=True)
    cold = run_ours(root, home)
    warm = run_ours(root, home)
    ours_cold = cold["audit"] + cold["dedupe"]
    ours_warm = warm["audit"] + warm["dedupe"]
    # Sampled every 0.25 s over the whole process tree; without /proc, the sum of the largest of each kind.
    peak = cold["tree_peak_mb"] or cold["rss_mb"] + cold["worker_rss_mb"] * ((os.cpu_count() or 1) + 1)
    print(
        f"ours cold: audit {cold['audit']:.1f} s + dedupe {cold['dedupe']:.1f} s = {ours_cold:.1f} s "
        f"(decoded {cold['decoded']}; cpu {cold['cpu']:.1f} s end to end, {cold['self_cpu']:.1f} s of it in the "
        f"server process); peak memory of server + fork server + workers together: {peak:.0f} MB "
        f"(server alone {cold['rss_mb']:.0f} MB, largest worker {cold['worker_rss_mb']:.0f} MB)"
    )
    print(
        f"ours warm (unchanged set): audit {warm['audit']:.2f} s + dedupe {warm['dedupe']:.2f} s = {ours_warm:.2f} s "
        f"(decoded {warm['decoded']}); server {warm['rss_mb']:.0f} MB",
        flush=True,
    )

    rows = [("ours (mirror-aware)", accuracy(gt, pairs_from_groups(cold["groups"])))]
    idd_total = idd_cpu = None
    python = args.imagededup_python
    if python and Path(python).exists():
        idd = run_imagededup(python, root)
        if "error" in idd:
            print(f"imagededup: not run ({idd['error']})")
        else:
            rel = {str(p.relative_to(root / "dataset")): p for p in files}
            dups = {_rel(k, rel): [_rel(v, rel) for v in vs] for k, vs in idd["dups"].items()}
            idd_total, idd_cpu = idd["run"], idd["cpu"]
            print(
                f"imagededup PHash: {idd['run']:.1f} s (+ {idd['import']:.1f} s import, torch stubbed out; "
                f"cpu {idd['cpu']:.1f} s end to end), "
                f"peak {idd['rss_mb']:.0f} MB",
                flush=True,
            )
            rows.append(("imagededup PHash", accuracy(gt, pairs_from_map(dups))))
    else:
        print("imagededup: not available (pass --imagededup-python)")

    if not args.skip_baseline:
        base = plain_baseline(files, args.full_baseline)
        base_total = base["hashing"] + base["pairs"]
        note = f" (pair loop scaled from {PAIR_SAMPLE})" if base["extrapolated"] else ""
        print(
            f"plain baseline: decode+phash {base['hashing']:.1f} s + all pairs {base['pairs']:.1f} s{note} "
            f"= {base_total:.1f} s",
            flush=True,
        )
    else:
        base_total = None

    print("\nratios (targets in brackets):")
    print(f"  ours cold / decode floor      {ours_cold / floor:5.2f}x  [<= 1.3 at 10k]")
    print(f"    same in CPU time            {cold['cpu'] / floor_cpu:5.2f}x  (ours includes start-up and dedupe)")
    print(f"  ours warm / ours cold         {ours_warm / ours_cold:5.2%}  [< 10 %]")
    if idd_total:
        print(f"  imagededup / ours cold        {idd_total / ours_cold:5.2f}x  [>= 2.5 at 10k]")
        print(f"    same in CPU time            {idd_cpu / cold['cpu']:5.2f}x  (both end to end, imports included)")
    if base_total:
        print(f"  plain baseline / ours cold    {base_total / ours_cold:5.2f}x  [>= 4 at 10k]")
    print(f"  peak memory                   {peak:5.0f} MB [< 600 MB]")
    print_accuracy(gt, rows)


def print_accuracy(gt: dict[str, Any], rows: list[tuple[str, tuple[dict[str, float], float, int]]]) -> None:
    print("\naccuracy (recall per planted kind; precision over reported pairs; pairs of two different pictures):")
    kinds = list(gt["duplicate_pairs_by_kind"])
    print(f"  {'method':<22}" + "".join(f"{k:>9}" for k in kinds) + f"{'precision':>11}{'wrong':>7}")
    for name, (recall, precision, wrong) in rows:
        print(f"  {name:<22}" + "".join(f"{recall[k]:9.3f}" for k in kinds) + f"{precision:11.3f}{wrong:7d}")


def bench_series(paintings: int, copies: int, args: argparse.Namespace) -> None:
    root = Path(args.cache_dir) / f"series-p{paintings}-c{copies}"
    if not (root / "ground_truth.json").exists():
        cmd = [sys.executable, str(SERIES_GENERATOR), str(root), "--paintings", str(paintings), "--copies", str(copies)]
        subprocess.run(cmd, check=True)
    gt = json.loads((root / "ground_truth.json").read_text())
    print(f"\n=== one artist's series: {paintings} distinct paintings + {copies} planted copies ===", flush=True)
    home = Path(args.cache_dir) / f"home-series-p{paintings}"
    (home / "grimoire").mkdir(parents=True, exist_ok=True)
    ours = run_ours(root, home)
    print(
        f"ours: audit {ours['audit']:.1f} s + dedupe {ours['dedupe']:.1f} s; {len(ours['groups'])} groups, "
        f"{ours['look_alikes']} look-alike pair(s) shown apart for review (not duplicates)"
    )
    rows = [("ours (mirror-aware)", accuracy(gt, pairs_from_groups(ours["groups"])))]
    python = args.imagededup_python
    if python and Path(python).exists():
        idd = run_imagededup(python, root)
        if "error" not in idd:
            rows.append(("imagededup PHash", accuracy(gt, pairs_from_map(idd["dups"]))))
    print_accuracy(gt, rows)


def _rel(name: str, rel: dict[str, Path]) -> str:
    if name in rel:
        return name
    return next((r for r in rel if r.endswith("/" + name)), name)


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--phase":
        phase_main(sys.argv[2], sys.argv[3])
        return
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--sizes", default="2000,10000")
    ap.add_argument("--cache-dir", default="/tmp/ategnatos-bench")
    ap.add_argument("--imagededup-python", default="/tmp/ategnatos-bench/idd/bin/python")
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--full-baseline", action="store_true", help="time every pair even at large n (minutes)")
    ap.add_argument("--series", default="90,22", help="paintings,copies of the one-artist series ('' to skip)")
    args = ap.parse_args()
    for n in (int(s) for s in args.sizes.split(",") if s):
        bench_size(n, args)
    if args.series:
        paintings, copies = (int(x) for x in args.series.split(","))
        bench_series(paintings, copies, args)


if __name__ == "__main__":
    main()
