"""honcho, as `make run` starts it, giving each process the time to stop it is promised.

honcho sends SIGTERM to every process on Ctrl-C or once one of them ends, and SIGKILLs
those still running 5 s after the first one ended (the mail sink ends at once), which
is shorter than the STOP_GRACE_SECONDS a process may take to let running work finish.

    python -m devtools.procfile_runner KILL_AFTER_SECONDS start -f Procfile ...
"""
import sys

import honcho.manager
from honcho.command import main

if __name__ == "__main__":
    honcho.manager.KILL_WAIT = float(sys.argv.pop(1))
    main()
