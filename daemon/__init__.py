"""The trackd daemon: receives records from training processes, makes them durable in each
run's log, and (when a server is configured) uploads them. Started as ``python -m
trackd.daemon``; never imported by training code.

=================  ========================================================================
``_service``       the process: lifecycle, the receive loop, group fsync and acks, liveness
``_run_slot``      one run being written: its log writer and the client process feeding it
``_log_writer``    appending frames to a run log, made durable in groups
``_uploader``      the upload thread: batches from the run log to the server, with retries
``_liveness``      whether a training process still lives (pid reuse and zombies included)
=================  ========================================================================

What it shares with the client and the server (record format, run log frames, directory
layout, upload progress) lives in :mod:`trackd._wire`.
"""
