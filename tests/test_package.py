"""`import metatoken` alone registers every metatoken/* Gymnasium id."""

import subprocess
import sys

IDS = "import gymnasium as gym; print(sorted(i for i in gym.registry if i.startswith('metatoken/')))"


def _fresh(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=120)
    return r.stdout.strip()


def test_import_metatoken_registers_every_gymnasium_id():
    assert _fresh(IDS) == "[]"  # nothing is registered before the import
    registered = _fresh(f"import metatoken; {IDS}")
    everything = _fresh(f"import metatoken.catalog; {IDS}")  # every room imported
    assert registered == everything
    for env_id in ("metatoken/Mountain-v0", "metatoken/GlitchGrid-Teleport-v0", "metatoken/GlitchGrid-Loop-v0",
                   "metatoken/GlitchGrid-Tamper-v0"):
        assert env_id in registered
    made = _fresh("import gymnasium as gym, metatoken; env = gym.make('metatoken/GlitchGrid-Teleport-v0'); "
                  "print(env.spec.id)")
    assert made == "metatoken/GlitchGrid-Teleport-v0"
