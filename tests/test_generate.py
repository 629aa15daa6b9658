"`clinical-ml generate` end to end: real processes, a real Dask cluster, real files."
import hashlib, json
from pathlib import Path
import pyarrow.parquet as pq
from clinical_ml import schema, validation
from clinical_ml.generate import generate, read_data
from clinical_ml.cluster import dask_client

def digest(d: Path) -> dict:
    return {str(f.relative_to(d)): hashlib.sha256(f.read_bytes()).hexdigest() for f in sorted(d.rglob('*.parquet'))}

def test_cli_end_to_end(cli, tmp_path):
    out = tmp_path/'raw'
    r = cli('generate', '--num_patients', 3000, '--years_per_patient', 4, '--output_dir', out, '--prevalence', 0.08, '--seed', 5)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    df = read_data(out, oracle=True)
    assert len(df) == summary['rows'] > 3000
    assert sorted(p.name for p in out.iterdir()) == ['_dataset.yaml', '_oracle', '_params.json'] + sorted(f'year={y}' for y in df.year.unique())
    assert abs(df.target.mean() - 0.08) < 0.02
    assert df.p_true.between(0, 1).all() and df.p_true.notna().all()
    # the records carry no oracle column, and Parquet readers of the directory do not see _oracle/
    assert not {'p_true', 'onset_year'} & set(pq.read_table(out).column_names)
    problems = validation.problems(read_data(out).drop(columns=[]), schema.load_spec(out / '_dataset.yaml'), target=True)
    typo_cols = set(df.typo.dropna())
    assert {p['column'] for p in problems} == typo_cols
    assert json.loads((out/'_params.json').read_text())['seed'] == 5

def test_same_bytes_whatever_workers_and_chunks(cli, tmp_path):
    r = cli('generate', '--num_patients', 2500, '--output_dir', tmp_path/'procs', '--chunk_patients', 600)
    assert r.returncode == 0, r.stderr
    with dask_client(n_workers=1, processes=False) as c:
        generate(tmp_path/'thread', num_patients=2500, chunk_patients=2500, client=c)
    assert digest(tmp_path/'procs') == digest(tmp_path/'thread')

def test_bad_arguments_exit_2_and_write_nothing(cli, tmp_path):
    for args, msg in [(['--num_patients', 0], 'num_patients must be a positive integer'),
                      (['--prevalence', 1.5], 'prevalence must be in (0, 1)'),
                      (['--prevalence', 0], 'prevalence must be in (0, 1)'),
                      (['--years_per_patient', -2], 'years_per_patient must be at least 1')]:
        r = cli('generate', '--output_dir', tmp_path/'x', *args)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
    assert list(tmp_path.iterdir()) == []

def test_refuses_to_overwrite(cli, tmp_path):
    out = tmp_path/'raw'; out.mkdir(); (out/'keep.txt').write_text('mine')
    r = cli('generate', '--num_patients', 50, '--output_dir', out)
    assert r.returncode == 2 and 'already exists' in r.stderr and '--overwrite' in r.stderr
    assert (out/'keep.txt').read_text() == 'mine'
    r = cli('generate', '--num_patients', 50, '--output_dir', out, '--overwrite')
    assert r.returncode == 0 and not (out/'keep.txt').exists()
    assert [p.name for p in tmp_path.iterdir()] == ['raw']  # no temporary directory left behind
