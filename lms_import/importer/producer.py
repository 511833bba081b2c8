"""The producer process of a PostgreSQL apply: `python -m lms_import.importer.producer`.

Reads a spec (job id, the path of its file, file facts, database and import settings of the parent) from stdin, runs the
pass with a PipeSink, and sends messages (multiprocessing.connection over stdout): ("progress",
done, total), ("batch", payload, new account ids), then ("done", PassResult), or ("problem",
Finding) / ("error", text). It only reads the database (look-ups and sequence values); all writes are the
parent's, in the parent's transaction. If the parent dies, the next write to the pipe fails and
this process ends.
"""

import gc
import os
import sys
import traceback
from pathlib import Path


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lms_import.settings")
    import django

    django.setup()
    gc.freeze()  # what Django set up lives as long as this process: the collector need not look at it again
    from django.conf import settings
    from django.db import connections

    from core.findings import FileProblem
    from lms_import.importer.run import PipeProgress, PipeSink, job_source_open, pass_run, pipe_end, source_record
    from lms_import.models import ImportJob

    with pipe_end(sys.stdin.fileno(), reading=True) as inbound:
        spec = inbound.recv()
    out = pipe_end(sys.stdout.fileno(), reading=False)
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # nothing else may write into the message stream
    sys.stdout = sys.stderr
    connections["default"].settings_dict.update(spec["database"])
    for name, value in spec["settings"].items():
        setattr(settings, name, value)
    settings.TIME_ZONE = spec["time_zone"]
    try:
        job = ImportJob.objects.get(pk=spec["job"])
        source = job_source_open(job, Path(spec["path"]), spec["facts"])
        source_record(job, source)  # its own connection, outside the apply's transaction
        result = pass_run(job, spec["course"], source, write=True, pulse=PipeProgress(out), sink=PipeSink(out))
        out.send(("done", result))
    except FileProblem as problem:
        out.send(("problem", problem.finding))
    except BrokenPipeError:
        pass  # the writing process is gone: nothing to do
    except BaseException:
        out.send(("error", traceback.format_exc()))
    finally:
        connections.close_all()


if __name__ == "__main__":
    main()
