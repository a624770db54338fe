"""experiments/quiet.py: run_all's --lock is held while it computes and let go around timed runs."""
from __future__ import annotations

import subprocess
import tempfile
import unittest
from pathlib import Path

from experiments import quiet


def free(path: Path) -> bool:
    """Whether another process can take the lock right now (flock(1), as bench/alone.sh does)."""
    return subprocess.run(["flock", "-n", str(path), "true"]).returncode == 0


class QuietTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory()
        self.lock = Path(self._tmp.name) / "lock"
        self.lock.touch()

    def tearDown(self):
        if quiet._held is not None:
            quiet._held.close()
            quiet._held = None
        self._tmp.cleanup()

    def test_nothing_is_held_without_a_lock(self):
        with quiet.released():
            self.assertTrue(free(self.lock))
        quiet.breathe(0)
        self.assertTrue(free(self.lock))

    def test_held_while_computing_released_around_a_timed_run(self):
        quiet.hold(str(self.lock))
        self.assertFalse(free(self.lock))
        with quiet.released():
            self.assertTrue(free(self.lock))
        self.assertFalse(free(self.lock))
        quiet.breathe(0)
        self.assertFalse(free(self.lock))

    def test_let_go_only_for_a_command_a_wrapper_runs(self):
        quiet.hold(str(self.lock))
        with quiet.released_for(None):
            self.assertFalse(free(self.lock))
        with quiet.released_for(["bash", "bench/alone.sh"]):
            self.assertTrue(free(self.lock))
        self.assertFalse(free(self.lock))

    def test_a_timed_run_that_takes_the_lock_itself_does_not_wait_for_us(self):
        quiet.hold(str(self.lock))
        with quiet.released():
            done = subprocess.run(["flock", "-w", "5", str(self.lock), "true"])
        self.assertEqual(done.returncode, 0)
        self.assertFalse(free(self.lock))


if __name__ == "__main__":
    unittest.main()
