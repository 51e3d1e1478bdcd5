"""Child processes that end with their parent, so a killed launcher or test run leaves
no services behind (Linux; elsewhere this does nothing)."""
import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1


def terminate_with_parent():
    """`preexec_fn` for Popen: the child gets SIGTERM when its parent dies."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
