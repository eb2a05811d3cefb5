"""The contracts between trackd's three processes, each stated once.

The training process (``trackd``), the daemon (``trackd.daemon``) and the server
(``trackd.server``) agree on these formats and rules; the daemon and the server import from
the client package only this package and :mod:`trackd.errors` (``tests/test_import_rules.py``
fails on anything else). Each module holds one contract and its version number:

=================  ==========================================================================
``records``        the record types that cross ZeroMQ, the run log and HTTP, and their codec
``runlog``         the run log's on-disk frames (header, length, CRC-32, payload)
``layout``         where things live: the daemon directory and a run directory
``upload_state``   the uploader's progress (``upload.json``) and its registry of runs to upload
``ingest``         the body the daemon posts to ``/api/v1/ingest``
``error_body``     the server's JSON error body, and reading its message back
``limits``         what a value, key, name or run id may be, on both sides of the wire
``summary``        how a run's summary is derived from its history
``settings``       the settings table the client and the daemon read from the environment
``jsonfile``       small JSON files written atomically with a chosen mode
=================  ==========================================================================
"""
