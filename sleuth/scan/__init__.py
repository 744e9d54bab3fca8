"""Screening at scale: ``sleuth scan`` over folders, lists, manifests and archives.

:mod:`.sources` lists the images of each source as :class:`~.sources.ImageRef`;
:mod:`.worker` screens one image into a result row (the survey's verdict from
:mod:`sleuth.agent.screening`); :mod:`.engines` runs the worker in a local process pool or
on Ray; :mod:`.output` appends rows to ``rows.jsonl`` as they come, resumes from it, and
writes ``rows.parquet`` and the HTML summary (:mod:`.summary`); :mod:`.run` puts it
together with duplicates, the cascade to a model backend, progress and Ctrl-C.
"""
