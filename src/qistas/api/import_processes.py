"""The server's import processes (``qistas.import_process``): a pool started at the first
large import and kept until the server stops (``api.helper_processes``).

A job waits for a free process (``QISTAS_IMPORT_PROCESSES`` of them); the request waits on
the event loop meanwhile, holding no thread. A process that dies (killed, out of memory) fails
its own import with 503 and the next import starts a new pool; an import it had committed is
finished by the server's recovery (``staged_imports.recover``), one it had not is undone.
"""

from __future__ import annotations

from qistas import import_process
from qistas.api.helper_processes import HelperProcesses
from qistas.config import Settings
from qistas.domain.imports import ImportResult


class ImportProcesses(HelperProcesses):
    def __init__(self, settings: Settings) -> None:
        super().__init__(
            settings, size=settings.import_processes, prepare=import_process.prepare, nice=import_process.NICE,
            lost="the import stopped before it was written, as its process ended; nothing was imported unless the "
                 "project's tasks show it: send it again (rows with a unique_id already there count as duplicates)")

    def takes(self, size: int) -> bool:
        """Whether an import body of ``size`` bytes goes to an import process."""
        return self.open and size >= self.settings.import_process_min_bytes

    async def import_file(self, job: import_process.FileImport) -> ImportResult:
        return await self.run(import_process.run, job, org_id=job.org_id)
