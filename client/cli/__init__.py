"""The ``trackd`` command line, and what it shares with :func:`trackd.login`.

=====================  ====================================================================
``main``               the ``trackd`` command: parses arguments, hands ``server`` over
``login``              choosing a server, checking an API key with it, saving the key
``credentials``        where the server URL, key, entity and project come from
``project_setup``      ``trackd init``: this directory's server, entity and project
``sync``               ``trackd sync``: uploading run logs after the fact
``status``             ``trackd status``: the daemon and the uploads still pending
=====================  ====================================================================

Not an API: the public surface is the ``trackd`` command and :mod:`trackd` itself.
"""
