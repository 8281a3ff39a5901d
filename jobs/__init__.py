"""Long work as jobs on Dask (distributed): embeddings, the gene-column store, pseudobulk DE,
DESeq2, marker ranking over all cells, gating of many FCS files.

    handle = jobs.submit(embed_study, study, params=params, progress=jobs.progress,
                         study=study)
    handle.status(), handle.progress(), handle.result(), handle.cancel()

Results are cached on disk by the hash of the job's inputs and parameters and shared by
every session and app process (jobs/core.py); where jobs run is a setting (jobs/settings.py):
a local cluster started on first use, or a lab or HPC scheduler. `jobs.locks.single_flight`
runs one computation per key for callers outside the job system (the app's caches).
"""

from jobs.core import (
    JobCancelled,
    JobFailed,
    JobHandle,
    JobProgress,
    State,
    StudyRef,
    cached_result,
    find,
    job_folder,
    progress,
    step_progress,
    submit,
    wait,
)
from jobs.keys import digest, job_key
from jobs.settings import JobSettings, job_settings

__all__ = ["submit", "find", "cached_result", "wait", "progress", "step_progress",
           "JobHandle", "JobProgress", "JobCancelled", "JobFailed", "State", "StudyRef",
           "job_folder", "job_key", "digest", "JobSettings", "job_settings"]
