"""trackd: experiment tracking where training never waits for logging.

Example::

    import trackd

    run = trackd.init(project="mnist", config={"lr": 1e-3})
    for step in range(100):
        trackd.log({"loss": 1 / (step + 1)})
    trackd.finish()

``import trackd as wandb`` works for the common calls: ``init``, ``log``, ``config``,
``summary``, ``define_metric``, ``finish``, ``login``, ``save``, ``watch``, ``unwatch``, and the rich
values ``Image`` (with boxes, masks and ``Classes``), ``Histogram`` and ``Table``.
"""

from . import errors
from ._api import Api
from ._config import Config
from ._distributed import RankInfo, init_distributed, rank_info
from ._histogram import Histogram
from ._image import Image
from ._overlays import Classes
from ._reader import RunData, read_run
from ._run import Run, Summary
from ._session import define_metric, finish, init, log, save
from ._table import Table
from ._watch import unwatch, watch
from .cli.login import login

__version__ = "0.1.0"

# Follow the current run; init() rebinds them (as wandb does), None before the first init().
run: Run | None = None
config: Config | None = None
summary: Summary | None = None

__all__ = [
    "Api",
    "Classes",
    "Config",
    "Histogram",
    "Image",
    "RankInfo",
    "Run",
    "RunData",
    "Summary",
    "Table",
    "__version__",
    "config",
    "define_metric",
    "errors",
    "finish",
    "init",
    "init_distributed",
    "log",
    "login",
    "rank_info",
    "read_run",
    "run",
    "save",
    "summary",
    "unwatch",
    "watch",
]
