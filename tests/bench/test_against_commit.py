import subprocess
import textwrap

import pytest

from oppy.bench.against_commit import bench_against_commit, checkout
from oppy.bench.cli import main
from oppy.bench.synth import write_archive

#: an engine of another commit that renders nothing and reports 10 frames/s
FAKE_CLI = textwrap.dedent("""
    import json, sys
    args = sys.argv[1:]
    out = args[1]
    open(out, "wb").close()
    json.dump({"frames_per_second": 10.0, "argv": args}, open(args[args.index("--report") + 1], "w"))
""")


def git(repo, *args):
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


@pytest.fixture
def other_commit(tmp_path):
    """A git repository whose one commit holds a stand-in engine (engine/cli.py)."""
    repo = tmp_path / "repo"
    (repo / "engine").mkdir(parents=True)
    (repo / "engine" / "__init__.py").write_text("")
    (repo / "engine" / "cli.py").write_text(FAKE_CLI)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "stand-in")
    return repo


def test_a_commit_is_checked_out_beside_with_its_engine_first_on_the_path(other_commit, tmp_path):
    where = tmp_path / "where"
    where.mkdir()
    tree = where / "tree"
    path = checkout(other_commit, "HEAD", tree)
    assert (tree / "engine" / "cli.py").read_text() == FAKE_CLI
    assert (path / "oppy" / "engine" / "cli.py").resolve() == (tree / "engine" / "cli.py").resolve()


def test_both_render_the_same_input_in_the_same_rounds(other_commit, tmp_path):
    frames = tmp_path / "frames"
    write_archive(frames, 2, 64, 64)
    result = bench_against_commit("HEAD", frames, rounds=2, warmup=0, options=["--temporal", "0"],
                                  repo=other_commit)
    assert len(result["per_round"]["this"]) == len(result["per_round"]["ref"]) == 2
    assert result["per_round"]["ref"] == [10.0, 10.0]  # the other commit's own command line ran
    assert result["frames_per_s"]["this"] > 0
    assert result["ratio_median"] == pytest.approx(result["frames_per_s"]["this"] / 10.0, rel=0.5)
    assert result["options"] == result["ref_options"] == ["--temporal", "0"]
    assert "oppy-against-" not in subprocess.run(["git", "-C", str(other_commit), "worktree", "list"],
                                                 capture_output=True, text=True).stdout  # cleaned up


def test_a_failed_render_names_the_commit_and_leaves_no_worktree(other_commit, tmp_path):
    (other_commit / "engine" / "cli.py").write_text("raise SystemExit(3)")
    git(other_commit, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "broken")
    frames = tmp_path / "frames"
    write_archive(frames, 1, 32, 32)
    with pytest.raises(ValueError, match=r"the render by HEAD \([0-9a-f]{10}\) failed \(exit 3\)"):
        bench_against_commit("HEAD", frames, rounds=1, warmup=0, repo=other_commit)
    listed = subprocess.run(["git", "-C", str(other_commit), "worktree", "list"], capture_output=True, text=True)
    assert len(listed.stdout.strip().splitlines()) == 1


def test_an_unknown_commit_or_no_rounds_is_one_line(other_commit, tmp_path, capsys):
    with pytest.raises(ValueError, match="rounds must be at least 1"):
        bench_against_commit("HEAD", tmp_path, rounds=0, repo=other_commit)
    with pytest.raises(ValueError, match="git rev-parse"):
        bench_against_commit("no-such-ref", tmp_path, rounds=1, repo=other_commit)
    assert main(["against-commit", "HEAD", str(tmp_path / "absent")]) == 2
    assert "no input at" in capsys.readouterr().err
