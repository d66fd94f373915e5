"""A job's log holds the package's records and everything the process itself writes."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

SCRIPT = textwrap.dedent("""
    import os, sys
    from brats_unet.logs import job_log
    print("before the job")
    with job_log(sys.argv[1]) as log:
        log.info("a record")
        print("python stdout")
        os.write(2, b"native stderr, as TensorFlow's C++ writes it\\n")
        os.system("echo from a child process")
        if len(sys.argv) > 2:
            raise RuntimeError("it broke")
    print("after the job")
""")


def _run(tmp_path: Path, *args: str, verbose: bool = False):
    env = {**os.environ, "BRATS_UNET_VERBOSE": "1" if verbose else ""}
    return subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "job.log"), *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_the_jobs_own_output_goes_into_its_log_not_the_terminal(tmp_path):
    done = _run(tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n")[:2] == ["before the job", "after the job"]
    assert done.stderr == ""
    lines = (tmp_path / "job.log").read_text().splitlines()
    # nothing overwrites anything: every line whole (Python's buffered prints may come later)
    assert sorted(line.split(" ", 2)[-1] if "INFO" in line else line for line in lines) == [
        "INFO a record", "from a child process", "native stderr, as TensorFlow's C++ writes it",
        "python stdout"]


def test_a_second_run_starts_a_fresh_log(tmp_path):
    (tmp_path / "job.log").write_text("an old run's line\n" * 100)
    _run(tmp_path)
    assert "an old run" not in (tmp_path / "job.log").read_text()


def test_a_failure_is_logged_with_its_traceback(tmp_path):
    done = _run(tmp_path, "fail")
    assert done.returncode != 0
    log = (tmp_path / "job.log").read_text()
    assert "ERROR job failed" in log and "RuntimeError: it broke" in log


def test_verbose_keeps_the_output_on_the_terminal(tmp_path):
    done = _run(tmp_path, verbose=True)
    assert "python stdout" in done.stdout and "native stderr" in done.stderr
    assert "INFO a record" in (tmp_path / "job.log").read_text()
