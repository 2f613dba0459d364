"""One node process per keystore: a second process is refused at once with one line, and
the lock dies with its holder."""

import subprocess
import os
import sys

import pytest

from swarmtoken.node.lock import KeystoreInUseError, KeystoreLock

HOLD = """
import sys, time
from swarmtoken.node.lock import KeystoreLock
KeystoreLock(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(60)
"""


@pytest.fixture
def holder(tmp_path):
    """Another OS process holding the lock of tmp_path/key.json."""
    keystore = tmp_path / "key.json"
    keystore.write_text("{}")
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(keystore)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    yield keystore, process
    process.kill()
    process.wait()


def test_a_second_process_on_the_same_keystore_is_refused_naming_the_first(holder):
    keystore, process = holder
    with pytest.raises(KeystoreInUseError) as refused:
        KeystoreLock(keystore).acquire()
    message = str(refused.value)
    assert "\n" not in message and str(keystore) in message and f"pid {process.pid}" in message
    assert "stop that process first" in message


def test_the_lock_is_released_when_its_holder_dies(holder):
    keystore, process = holder
    process.kill()
    process.wait()
    lock = KeystoreLock(keystore).acquire()
    assert lock.path.read_text() == str(os.getpid())
    lock.release()


def test_release_lets_the_same_process_take_it_again(tmp_path):
    keystore = tmp_path / "key.json"
    first = KeystoreLock(keystore).acquire()
    with pytest.raises(KeystoreInUseError):  # flock is per open file: a second open in one process conflicts too
        KeystoreLock(keystore).acquire()
    first.release()
    KeystoreLock(keystore).acquire().release()


def test_another_keystore_in_the_same_folder_is_not_locked(holder):
    keystore, _ = holder
    KeystoreLock(keystore.with_name("other.json")).acquire().release()
