"""Faults injected into real processes (benchmarks/faults.py, run here with shorter loads): a worker killed, SIGTERM
under load, reloads to bad models, MLflow down at start, the history store broken, the pipeline killed in every stage,
a full disk, and overload. The figures of the long runs are in benchmarks/results/faults.json."""
import hashlib, hmac, json, os, re, subprocess, sys
from pathlib import Path
import pytest
from conftest import ROOT, BIN

sys.path.insert(0, str(ROOT / 'benchmarks'))
import faults


@pytest.fixture(scope='module')
def work(tmp_path_factory):
    d = tmp_path_factory.mktemp('faults')
    faults.make_model(d)
    return d


def run(work, name, seconds):
    return faults.SCENARIOS[name](work, work / 'out' / 'model', seconds)


def test_worker_sigkill_under_load(work):
    r = run(work, 'worker_kill', 12)
    assert r['ok'] > 1000, r
    assert r['failed'] <= r['connections_on_killed_worker'] <= r['clients'], json.dumps({k: r[k] for k in ('failed', 'connections_on_killed_worker', 'status', 'around_kill')})  # at most the requests in flight on the killed worker
    assert r['replacement_pid'] and r['replacement_serving_seconds'] is not None, r


def test_sigterm_drains_in_flight_requests_and_exits_clean(work):
    r = run(work, 'sigterm', 5)
    assert r['sent_before_signal'] > 500 and r['answered_before_signal'] == r['sent_before_signal'], r
    assert r['exit_code'] == 0, r


def test_reload_to_a_bad_model_under_load_keeps_the_old_one(work):
    r = run(work, 'reload', 8)
    s = r['steps']
    assert r['load']['failed'] == 0 and r['load']['ok'] > 500, json.dumps(dict(load=r['load'], shed_by_reason=r['shed_by_reason'], failed_while=r['failed_while']))  # every status, and why any was shed
    for step, kind in (('corrupt', 'load_failed'), ('missing', 'load_failed'), ('different_spec', 'spec_changed')):
        assert s[step]['reload_status'] == 503 and s[step]['detail']['kind'] == kind, (step, s[step])
        assert s[step]['versions_serving'] == [r['original_version']], (step, s[step])  # the old model, in every worker
        assert s[step]['health_last_reload'] == [kind], (step, s[step])  # every worker's /health shows the refusal
    assert s['good']['reload_status'] == 200 and s['good']['health_last_reload'] == ['ok'], s['good']
    assert r['reloads_metric'] == {'refused:load_failed': 2.0, 'refused:spec_changed': 1.0, 'ok:': 1.0}, r['reloads_metric']


def test_mlflow_unreachable_at_start_then_back(work):
    r = run(work, 'mlflow_down', 0)
    assert r['health_while_down'] == 503 and ('Connection refused' in r['reason_while_down'] or 'Max retries' in r['reason_while_down']), r
    assert r['predict_while_down'] == 503, r
    assert r['predict_after'] == 200 and r['model_version_after'] == '1' and r['same_processes'], r


def test_history_store_missing_locked_corrupt_is_503_never_500(work):
    r = run(work, 'store', 0)
    assert r['ok']['status'] == {'200': 40} and r['ok']['health'] == 'healthy', r['ok']
    for ph, why in (('missing', 'no such file'), ('locked', 'database is locked'), ('corrupt', 'not a database')):
        p = r[ph]
        assert set(p['status']) == {'503'} and p['retry_after'] == '5', (ph, p)
        assert 'history store unavailable' in p['detail'] and why in p['detail'], (ph, p)
        assert p['health_status'] == 200 and p['health'] == 'degraded' and why in p['store_reason'], (ph, p)
    assert r['repaired']['status'] == {'200': 40} and r['repaired']['health'] == 'healthy', r['repaired']
    assert r['server_errors_5xx_other_than_503'] == 0


def test_pipeline_killed_in_every_stage_resumes(work):
    r = run(work, 'pipeline_kill', 0)
    stages = ['generate', 'features', 'train', 'error_analysis']
    for k, (stage, kill) in enumerate(zip(stages, r['kills'])):  # run k resumes run k-1 (killed in stage k-1), and is killed in stage k
        assert kill['killed_in'] == stage and kill['killed_after_seconds'] is not None and not kill['marker_after_kill'], kill  # killed mid-stage
        assert kill['skipped'] == stages[:max(k - 1, 0)] and kill['ran'] == stages[max(k - 1, 0):k + 1], kill  # the killed stage ran again
    assert r['final'] == {'returncode': 0, 'ran': ['error_analysis'], 'skipped': stages[:3]}, r['final']
    assert r['tmp_leftovers'] == [], r['tmp_leftovers']
    assert r['features_rows'] == r['generated_rows'] and r['summary_roc_auc'] > 0.55, r


def test_full_disk_names_the_path_and_leaves_nothing(work):
    r = run(work, 'full_disk', 0)
    for stage in ('generate', 'features'):
        s = r[stage]
        assert s['returncode'] == 1 and s['names_path'] and 'no space left on the device of' in s['error'], (stage, s)
        assert s['left_in_output_location'] == [] and not s['traceback'], (stage, s)


def test_overload_is_shed_with_503_and_retry_after(work):
    "At twice capacity: 503s instead of timeouts, and sooner answers than without shedding; at 0.8 of the rate it answers with small batches (10 clients), (almost) nothing refused."
    r = faults.overload(work, work / 'out' / 'model', 8, compare=False)
    on, off, low = r['shedding'], r['no_shedding'], r['shedding_at_0.8']
    assert on['shed_503'] > 0 and on['timeouts_or_closed'] == 0, json.dumps(r)
    assert set(on['status']) <= {'200', '503'}, on
    assert set(on['shed_by_reason']) <= {'inflight', 'lag'} and sum(on['shed_by_reason'].values()) >= on['shed_503'], on  # the metric counts every refusal
    assert on['p99_ms'] < off['p99_ms'] and on['p99_ok_ms'] < off['p99_ok_ms'], json.dumps(r)  # every request is answered sooner than without shedding
    assert low['error_share'] < 0.1 and low['timeouts_or_closed'] == 0, json.dumps(r)


def test_log_pseudonyms_cannot_be_reversed_without_the_secret(work, tmp_path):
    "Every id of the data, hashed every unkeyed way, matches no pseudonym in the access log; with the secret, they match."
    import pandas as pd
    srv = faults.Server(tmp_path, {'MODEL_DIR': str(work / 'out' / 'model'), 'FEATURE_STORE': str(work / 'store.db')}, workers=1)
    ids = pd.read_parquet(work / 'raw', columns=['patient_id']).patient_id.unique()[:50].tolist()
    try:
        for pid in ids: assert faults.http('POST', srv.url + '/predict', {**faults.SEED, 'patient_id': pid})[0] == 200
    finally: srv.stop()
    logged = {json.loads(l)['patient'] for l in srv.text().splitlines() if l.startswith('{') and '"patient"' in l}
    assert len(logged) == len(ids)
    everyone = pd.read_parquet(work / 'raw', columns=['patient_id']).patient_id.unique()
    unkeyed = {f(p.encode()).hexdigest()[:n] for p in everyone for f in (hashlib.sha256, hashlib.md5, hashlib.sha1) for n in (12, 16)}
    assert not logged & unkeyed and not logged & set(everyone)
    key = (tmp_path / 'state' / 'log_secret').read_bytes().strip()
    assert {hmac.new(key, p.encode(), hashlib.sha256).hexdigest()[:16] for p in ids} == logged
    assert key.decode() not in srv.text()
    assert oct((tmp_path / 'state' / 'log_secret').stat().st_mode & 0o777) == '0o600'
