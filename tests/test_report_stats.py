"""The report's reviewer statistics against the reference implementations: decision curves against PyPI `dcurves`, run in
a throwaway environment of its own (it pins pandas below the project's, so it is no dependency of ours)."""
import json, subprocess, sys, textwrap
from pathlib import Path
import numpy as np, pandas as pd, pytest
from clinical_ml.metrics import net_benefit

DCA = textwrap.dedent('''
    import json, sys, pandas as pd
    from dcurves import dca
    d = pd.read_csv(sys.argv[1]); t = json.loads(sys.argv[2])
    r = dca(data=d, outcome="y", modelnames=["p"], thresholds=t, nper=100)
    print(r[["model", "threshold", "net_benefit", "net_intervention_avoided"]].to_json(orient="records"))
''')


@pytest.fixture(scope='module')
def dcurves_python(tmp_path_factory) -> Path:
    "A Python with dcurves installed from PyPI, apart from the project's environment."
    env = tmp_path_factory.mktemp('dcurves') / 'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(env)], check=True, timeout=300)
    py = env / 'bin' / 'python'
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', 'dcurves==1.1.7'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return py


def test_net_benefit_agrees_with_dcurves(dcurves_python, tmp_path):
    rng = np.random.default_rng(7)
    p = rng.beta(1, 8, 5000); y = (rng.random(5000) < p).astype(int)
    p[:50] = 0.2  # ties at a threshold: flagged (p >= threshold) by both
    pd.DataFrame({'y': y, 'p': p}).to_csv(tmp_path / 'd.csv', index=False)
    t = [round(x, 2) for x in np.arange(0.01, 0.51, 0.01)]
    r = subprocess.run([str(dcurves_python), '-c', DCA, str(tmp_path / 'd.csv'), json.dumps(t)], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    ref = pd.DataFrame(json.loads(r.stdout.strip().splitlines()[-1]))
    ours = net_benefit(y, p, t)
    model, everyone = ref[ref.model == 'p'].set_index('threshold'), ref[ref.model == 'all'].set_index('threshold')
    np.testing.assert_allclose(ours.model, model.net_benefit.loc[t], atol=1e-6)
    np.testing.assert_allclose(ours.treat_all, everyone.net_benefit.loc[t], atol=1e-6)
    np.testing.assert_allclose(ours.avoided_per, model.net_intervention_avoided.loc[t], atol=1e-6)
    np.testing.assert_allclose(ref[ref.model == 'none'].net_benefit, 0, atol=1e-12)
