"""The built-in network families, one package each, registered under the ``seqops.families`` entry points.

A package here (or in a user's own distribution) exposes ``FAMILY``, an instance of
``models.family.Family``; see ``models.family`` for the hooks it implements.
"""
