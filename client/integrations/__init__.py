"""Integrations with training frameworks, one module each, importing its framework only
when that module is imported (``import trackd`` imports none of them).

::

    from trackd.integrations.lightning import TrackdLogger        # PyTorch Lightning
    from trackd.integrations.transformers import TrackdCallback   # Hugging Face Transformers
    from trackd.integrations.keras import TrackdCallback          # Keras 3
"""
