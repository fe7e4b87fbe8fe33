import numpy as np
import pytest

from metatoken.report.text import FRONTIER_BETAS, exact_frontiers
from metatoken.text.targets import tilted
from metatoken.text.world import make_world


def test_exact_frontiers_are_the_targets_along_their_sweeps():
    f = exact_frontiers({"world": "tiny", "reward": "proxy"})
    world = make_world("tiny")
    x, logp0 = world.support()
    r = world.reward("proxy", x)
    lt = tilted(logp0, r, FRONTIER_BETAS[3])
    p = np.exp(lt)
    np.testing.assert_allclose(f["tilt"][3, :2], [p @ (lt - logp0), p @ r], rtol=1e-12)
    # along the beta sweep (beta rising) KL and reward fall together; lambda rising, both rise
    assert (np.diff(f["tilt"][:, 0]) < 0).all() and (np.diff(f["tilt"][:, 1]) < 0).all()
    assert (np.diff(f["mixture"][:, 0]) > 0).all() and (np.diff(f["mixture"][:, 1]) > 0).all()
    assert exact_frontiers({"world": "large"}) is None


def test_frontier_kl_inverts_the_tilt():
    from metatoken.report.text import frontier_kl

    world = make_world("tiny")
    x, logp0 = world.support()
    r = world.reward("proxy", x)
    lt = tilted(logp0, r, 0.4)
    p = np.exp(lt)
    assert frontier_kl({"world": "tiny"}, float(p @ r)) == pytest.approx(float(p @ (lt - logp0)), rel=1e-6)
    assert np.isnan(frontier_kl({"world": "tiny"}, 0.0))  # below E_p0 r: no tilt with beta > 0 reaches it
