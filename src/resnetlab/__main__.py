import logging
import os
import sys

from .cli import main

code = main()
if "torch.distributed" in sys.modules:  # a command that used it: importing engine.distributed is free
    from .engine.distributed import DistInfo

    if DistInfo.from_env(dict(os.environ)).enabled:
        # A torchrun worker whose work is done and whose process group is destroyed
        # (engine.distributed.shutdown). Leave without the C++ static destructors: gloo's transport
        # threads can still be joinable there, and about one finished 2-process run in twenty then
        # died with SIGABRT ("terminate called without an active exception") after writing
        # everything, which torchrun reports as a failed run. Everything of ours is on disk already
        # (atomic writes); flush the rest.
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
raise SystemExit(code)
