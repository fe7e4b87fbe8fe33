"""metatoken: condition-token predictors against RL baselines, on the same tasks, data and budgets.

Importing the package registers every `metatoken/*` Gymnasium id (as Gymnasium packages do),
so `gymnasium.make("metatoken/Mountain-v0")` works after a plain `import metatoken`.
"""

from importlib.metadata import version

__version__ = version("metatoken")

from metatoken import envs as _envs  # noqa: F401  (registers the Gymnasium ids and the tasks)
