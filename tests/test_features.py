"`clinical-ml features` end to end, on a local cluster and on a real `dask scheduler` + `dask worker` started as processes."
import json, socket, subprocess, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from clinical_ml.features import features_for
from clinical_ml.featurize import read_feature_spec
from clinical_ml.generate import read_data
from conftest import BIN


@pytest.fixture(scope='module')
def raw(tmp_path_factory):
    d = tmp_path_factory.mktemp('data')/'raw'
    r = subprocess.run([str(BIN/'clinical-ml'), 'generate', '--num_patients', '1200', '--output_dir', str(d), '--seed', '9'],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return d


def test_features_cli_local_cluster(cli, raw, tmp_path):
    r = cli('features', '--data', raw, '--output', tmp_path/'f')
    assert r.returncode == 0, r.stderr
    s = json.loads(r.stdout.strip().splitlines()[-1])
    f = pd.read_parquet(tmp_path/'f')
    assert len(f) == s['rows'] == len(read_data(raw))
    assert {'_spec.json', '_summary.json'} <= {p.name for p in (tmp_path/'f').iterdir()}
    # code counts are compact integers, not a dense float explosion
    dx = [c for c in f.columns if c.startswith('dx_') and c != 'dx_n']
    assert len(dx) > 50 and all(f[c].dtype == np.uint8 for c in dx)
    assert all(f[c].dtype in (np.float32, np.uint8) or str(f[c].dtype) in ('category', 'str', 'string', 'Int8')
               for c in f.columns if c not in ('patient_id', 'year')), f.dtypes.value_counts()

def test_features_on_external_dask_cluster(cli, raw, tmp_path, dask_cluster):
    r = cli('features', '--data', raw, '--output', tmp_path/'ext', '--scheduler', dask_cluster)
    assert r.returncode == 0, r.stderr
    r2 = cli('features', '--data', raw, '--output', tmp_path/'env', env={'DASK_SCHEDULER_ADDRESS': dask_cluster})
    assert r2.returncode == 0, r2.stderr
    a = pd.read_parquet(tmp_path/'ext').sort_values(['patient_id', 'year']).reset_index(drop=True)
    b = pd.read_parquet(tmp_path/'env').sort_values(['patient_id', 'year']).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)

def test_online_equals_offline(cli, raw, tmp_path):
    assert cli('features', '--data', raw, '--output', tmp_path/'f').returncode == 0
    feats, spec, data = pd.read_parquet(tmp_path/'f'), read_feature_spec(tmp_path/"f"), read_data(raw)
    picks = feats.sample(200, random_state=1)[['patient_id', 'year']]
    for pid, y in picks.itertuples(index=False):
        hist = data[(data.patient_id == pid)].to_dict('records')  # future years included: features_for must ignore them
        on = features_for(hist, spec, year=int(y)).drop(columns='target')
        off = feats[(feats.patient_id == pid) & (feats.year == y)].drop(columns='target').reset_index(drop=True)
        pd.testing.assert_frame_equal(off, on, check_dtype=False, check_categorical=False)

def test_bad_input_exit_2_and_nothing_written(cli, raw, tmp_path):
    df = read_data(raw)
    (tmp_path/'nocol').mkdir(); df.drop(columns=['age']).to_parquet(tmp_path/'nocol'/'x.parquet')
    (tmp_path/'dtype').mkdir(); df.assign(bmi=df.bmi.astype(str)).to_parquet(tmp_path/'dtype'/'x.parquet')
    (tmp_path/'dup').mkdir(); pd.concat([df, df.head(2)]).to_parquet(tmp_path/'dup'/'x.parquet')
    for name, msg in [('nocol', 'age: required column is missing'), ('dtype', 'bmi: dtype'), ('dup', 'patient_id, year: duplicate key'),
                      ('nowhere', 'no such directory')]:
        r = cli('features', '--data', tmp_path/name, '--output', tmp_path/f'out-{name}', '--record', 'synthetic')  # a user's data: its spec given
        assert r.returncode == 2 and msg in r.stderr, (name, r.stderr[-500:])
        assert not (tmp_path/f'out-{name}').exists()
    r = cli('features', '--data', tmp_path/'dup', '--output', tmp_path/'out-nospec')  # no spec beside the data, none given
    assert r.returncode == 2 and 'no _dataset.yaml beside the data' in r.stderr and not (tmp_path/'out-nospec').exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith('.')]  # no temporary directory left behind
