"""A run folder is claimed atomically: two runs never share one, however close they start."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from gcnseg.errors import GcnsegError
from gcnseg.training.claim import LOCK_FILE, claim_run_dir
from gcnseg.training.distributed import DistInfo

MAIN = DistInfo()
HOLD = """
import sys, time
from pathlib import Path
from gcnseg.training.claim import claim_run_dir
from gcnseg.training.distributed import DistInfo
with claim_run_dir(Path(sys.argv[1]), DistInfo(), numbered=False, resuming=False, overwrite=False):
    print("held", flush=True)
    time.sleep(60)
"""


def _claim(run_dir: Path, *, numbered: bool = False, **flags: bool):
    flags = {"resuming": False, "overwrite": False, **flags}
    return claim_run_dir(run_dir, MAIN, numbered=numbered, **flags)


def test_a_taken_automatic_name_gets_the_next_number(tmp_path: Path) -> None:
    base = tmp_path / "sweep" / "gcn-20250101-120000"
    numbered = [base.with_name(f"{base.name}-{n}") for n in (2, 3)]
    with (
        _claim(base, numbered=True) as first,
        _claim(base, numbered=True) as second,
        _claim(base, numbered=True) as third,
    ):
        assert [first, second, third] == [base, *numbered]
        assert (third / LOCK_FILE).is_file()


@pytest.mark.parametrize("flags", [{}, {"resuming": True}, {"overwrite": True}])
def test_a_folder_in_use_is_refused_whatever_the_flags(tmp_path: Path, flags: dict) -> None:
    run_dir = tmp_path / "same"
    with _claim(run_dir), pytest.raises(GcnsegError) as exc, _claim(run_dir, **flags):
        pass
    message = str(exc.value)
    assert message.startswith(f"{run_dir}: another training run (process ")
    assert "is using this run folder" in message and "\n" not in message


def test_the_lock_ends_with_the_run_and_an_unused_folder_goes(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    with _claim(run_dir) as held:
        (held / "config.yaml").write_text("x: 1\n")
    assert not (run_dir / LOCK_FILE).exists() and (run_dir / "config.yaml").is_file()
    with _claim(tmp_path / "empty"):
        pass
    assert not (tmp_path / "empty").exists()  # a run that wrote nothing leaves nothing


def test_a_finished_run_found_once_locked_is_not_trained_into(tmp_path: Path) -> None:
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"a finished run")
    with pytest.raises(GcnsegError, match="already holds a run"), _claim(run_dir):
        pass
    assert (run_dir / "last.pt").read_bytes() == b"a finished run"


def test_another_process_holds_it_until_killed(tmp_path: Path) -> None:
    """The lock is the kernel's: held by a live process, gone with a kill -9 (no stale lock)."""
    run_dir = tmp_path / "r"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        refused = rf"another training run \(process {holder.pid}\)"
        with pytest.raises(GcnsegError, match=refused), _claim(run_dir, overwrite=True):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with _claim(run_dir, resuming=True) as held:
        assert held == run_dir
