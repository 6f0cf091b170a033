"""This engine against another commit's, in the same rounds: `oppy-bench against-commit REF INPUT`.

A speed-up claimed against "before" is only a number when before and after ran on the same machine at the same
time (these machines are shared and noisy). The other commit is checked out beside the project (`git worktree`),
and both render INPUT through their own command line (`python -m oppy.engine.cli`, the other's package first on
the path), alternating which goes first from round to round. Each render's frames/s is its own report's (the
render's wall time, without starting Python and loading the model); the ratio is taken within each round and the
median reported. The other commit's Numba kernels are compiled into a cache folder of its own during the first
render, so keep at least one warm-up round (the default) for figures worth quoting.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

#: the packages a commit's engine brings (the command line needs the engine alone)
PACKAGES = ("engine",)


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise ValueError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def checkout(repo: Path, commit: str, tree: Path) -> Path:
    """`commit` of `repo` checked out at `tree` (a detached worktree), and a folder beside it to put first on
    PYTHONPATH so that `oppy.engine` is that commit's: returns that folder."""
    _git(repo, "worktree", "add", "--detach", "--force", str(tree), commit)
    shim = tree.parent / "path" / "oppy"
    shim.mkdir(parents=True)
    for package in PACKAGES:
        (shim / package).symlink_to(tree / package, target_is_directory=True)
    return shim.parent


def render_rate(input_path: Path, out_dir: Path, options: list[str], python_path: Path | None = None,
                who: str = "this project") -> float:
    """One render of `input_path` to an MP4 by a command line (this project's, or the one `python_path` puts
    first, with its Numba cache beside it): its report's frames/s."""
    report = out_dir / "report.json"
    report.unlink(missing_ok=True)
    env = dict(os.environ)
    if python_path is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(python_path), env.get("PYTHONPATH")]))
        env["NUMBA_CACHE_DIR"] = str(python_path.parent / "numba")
    command = [sys.executable, "-m", "oppy.engine.cli", str(input_path), str(out_dir / "out.mp4"), "--overwrite",
               "-q", "--report", str(report), *options]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise ValueError(f"the render by {who} failed (exit {done.returncode}): {done.stderr.strip()[-400:]}")
    try:
        return float(json.loads(report.read_text())["frames_per_second"])
    except (OSError, ValueError, KeyError) as exc:
        raise ValueError(f"the render by {who} left no report with its frames/s ({exc})") from exc


def bench_against_commit(ref: str, input_path: Path, rounds: int = 5, warmup: int = 1, options: list[str] = (),
                         ref_options: list[str] | None = None, repo: Path | None = None) -> dict:
    """Frames/s of this project's render and of `ref`'s, `rounds` rounds after `warmup`, alternating the order;
    `options` go to both command lines, `ref_options` (default: `options`) to the other commit's."""
    if rounds < 1 or warmup < 0:
        raise ValueError(f"rounds must be at least 1 and warm-up rounds at least 0, not {rounds} and {warmup}")
    if not Path(input_path).exists():
        raise FileNotFoundError(f"no input at {input_path}")
    repo = repo or Path(__file__).resolve().parent.parent
    ref_options = list(options) if ref_options is None else list(ref_options)
    commit = _git(repo, "rev-parse", "--verify", f"{ref}^{{commit}}")
    them = f"{ref} ({commit[:10]})"
    with tempfile.TemporaryDirectory(prefix="oppy-against-") as tmp:
        where = Path(tmp)
        tree = where / "tree"
        (where / "ours").mkdir()
        (where / "theirs").mkdir()
        ours: list[float] = []
        theirs: list[float] = []
        try:
            python_path = checkout(repo, commit, tree)
            for number in range(warmup + rounds):
                pair = {}
                order = ("ours", "theirs") if number % 2 == 0 else ("theirs", "ours")
                for who in order:
                    pair[who] = (render_rate(input_path, where / who, list(options)) if who == "ours"
                                 else render_rate(input_path, where / who, ref_options, python_path, them))
                if number >= warmup:
                    ours.append(pair["ours"])
                    theirs.append(pair["theirs"])
        finally:  # the worktree goes whatever happened; an error here must not hide the render's own
            with contextlib.suppress(ValueError):
                _git(repo, "worktree", "remove", "--force", str(tree))
            with contextlib.suppress(ValueError):
                _git(repo, "worktree", "prune")
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {"ref": ref, "commit": commit, "head": _git(repo, "rev-parse", "HEAD"),
            # this side is the working tree: HEAD plus any uncommitted change to tracked files
            "dirty": bool(_git(repo, "status", "--porcelain", "--untracked-files=no")),
            "input": str(input_path), "rounds": rounds,
            "options": list(options), "ref_options": ref_options,
            "frames_per_s": {"this": statistics.median(ours), "ref": statistics.median(theirs)},
            "ratio_median": statistics.median(ratios), "ratio_range": [min(ratios), max(ratios)],
            "per_round": {"this": ours, "ref": theirs}}
