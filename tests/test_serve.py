"The API on real servers: uvicorn, and gunicorn with 2 uvicorn workers (reload reaching both); 127.0.0.1 only, bounded load."
import json, os, re, socket, subprocess, sys, threading, time
from pathlib import Path
import httpx, pytest
from conftest import ROOT, BIN, free_port

SEED = json.loads((ROOT/'config'/'example_request.json').read_text())


@pytest.fixture(scope='module')
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp('serve')
    r = subprocess.run([str(BIN/'clinical-ml'), 'generate', '--num_patients', '2500', '--output_dir', str(d/'raw'), '--seed', '6'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    (d/'cfg.yaml').write_text('hpo: {n_trials: 2, algorithms: [lightgbm]}\ncross_validation: {n_splits: 2}\nevaluation: {bootstrap: 0}\nmlflow: {enabled: false}\n')
    r = subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(d/'cfg.yaml'), '--data', str(d/'raw'), '--output', str(d/'out')], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    return d/'out'/'model'

def start(args, env, port):
    "A real server; its output goes to a file (a pipe nobody reads would fill, and block the server's logging)."
    import tempfile
    log = tempfile.NamedTemporaryFile('w+', suffix='.log', delete=False)
    p = subprocess.Popen([str(BIN/'clinical-ml'), 'serve', '--host', '127.0.0.1', '--port', str(port), *args],
                         env={**os.environ, 'STATE_DIR': tempfile.mkdtemp(prefix='clinical-ml-state-'), **env}, stdout=log, stderr=subprocess.STDOUT, text=True)
    p.log = log.name
    url = f'http://127.0.0.1:{port}'
    deadline = time.monotonic() + 180  # generous: a loaded CI machine imports slowly
    while time.monotonic() < deadline:
        try:
            httpx.get(url + '/health', timeout=2); return p, url
        except httpx.HTTPError: time.sleep(0.25)
    p.kill(); raise RuntimeError(Path(p.log).read_text()[-3000:])

def stop(p):
    p.terminate()
    try: p.wait(20)
    except subprocess.TimeoutExpired: p.kill(); p.wait()
    return Path(p.log).read_text()

def test_uvicorn_endpoints_auth_and_logs(model_dir, tmp_path):
    p, url = start([], {'MODEL_DIR': str(model_dir), 'API_KEY': 'k', 'RELOAD_FILE': str(tmp_path/'r.json')}, free_port())
    try:
        h = {'X-API-Key': 'k'}
        assert httpx.get(url + '/health').json()['status'] == 'healthy'
        assert httpx.post(url + '/predict', json=SEED).status_code == 401
        r = httpx.post(url + '/predict', json=SEED, headers=h)
        assert r.status_code == 200 and set(r.json()) >= {'patient_id', 'probability', 'prediction', 'confidence', 'timestamp', 'model_version'}
        bad = httpx.post(url + '/predict', json={**SEED, 'gender': 'X'}, headers=h)
        assert bad.status_code == 422 and bad.json()['detail'][0]['field'] == 'gender'
        b = httpx.post(url + '/predict/batch', json={'patients': [SEED, {**SEED, 'bmi': 99}, {**SEED, 'patient_id': 'B'}]}, headers=h).json()
        assert [('error' in x) for x in b['predictions']] == [False, True, False] and b['predictions'][2]['patient_id'] == 'B'
        assert {'model_type', 'algorithm', 'version', 'threshold', 'training_config', 'metrics'} <= set(httpx.get(url + '/model/info').json())
        assert httpx.get(url + '/model/features').json()['count'] > 5
        assert 'clinical_ml_request_seconds_bucket' in httpx.get(url + '/metrics').text
        assert httpx.get(url + '/static/swagger/swagger-ui-bundle.js').status_code == 200
        assert 'cdn' not in httpx.get(url + '/docs').text.lower()
        assert httpx.post(url + '/predict', content=b'x' * (21 * 2**20), headers={**h, 'content-type': 'application/json'}).status_code == 413
    finally:
        logs = stop(p)
    assert 'TEST001' not in logs  # identifiers are hashed in logs
    lines = [json.loads(l) for l in logs.splitlines() if l.startswith('{')]
    assert any(l.get('path') == '/predict' and 'latency_ms' in l and 'request_id' in l for l in lines)

def test_no_model_503(tmp_path):
    p, url = start([], {'MODEL_DIR': str(tmp_path/'missing'), 'RELOAD_FILE': str(tmp_path/'r.json')}, free_port())
    try:
        h = httpx.get(url + '/health')
        assert h.status_code == 503 and 'no model.joblib' in h.json()['reason']
        assert httpx.post(url + '/predict', json=SEED).status_code == 503
    finally: stop(p)

def test_gunicorn_two_workers_reload_reaches_all_drops_nothing_and_metrics_sum_workers(model_dir, tmp_path):
    env = {'MODEL_DIR': str(model_dir), 'RELOAD_FILE': str(tmp_path/'r.json'), 'ADMIN_KEY': 'adm'}
    p, url = start(['--workers', '2'], env, free_port())
    errors, done, stop_flag = [], [], threading.Event()
    def load():
        with httpx.Client(timeout=10) as c:
            while not stop_flag.is_set() and len(done) < 2000:
                r = c.post(url + '/predict', json=SEED)
                (done if r.status_code == 200 else errors).append(r.status_code)
    try:
        ts = [threading.Thread(target=load) for _ in range(4)]
        for t in ts: t.start()
        time.sleep(1.0)
        r = httpx.post(url + '/admin/reload', headers={'X-Admin-Key': 'adm'}, timeout=60)
        assert r.status_code == 200 and r.json()['generation'] == 1
        time.sleep(2.5)
        gens = set()
        with httpx.Client(timeout=10) as c:
            for _ in range(40): gens.add(c.get(url + '/model/info').json()['generation'])
        stop_flag.set()
        for t in ts: t.join(30)
        assert gens == {1}, gens  # every worker took the reload
        assert errors == [] and len(done) > 20
        time.sleep(0.3)  # the last request is counted just after its answer went out
        for _ in range(6):  # whichever worker answers the scrape, it reports the requests of both
            m = httpx.get(url + '/metrics', timeout=10).text
            n = sum(float(v) for v in re.findall(r'clinical_ml_requests_total\{endpoint="/predict",status="200"\} (\S+)', m))
            assert n >= len(done), (n, len(done))
    finally:
        stop_flag.set(); stop(p)

def test_model_uri_from_registry(tmp_path):
    "MODEL_URI=models:/clinical-ml@champion: the alias is resolved through the MLflow registry at start-up."
    env = {'MLFLOW_TRACKING_URI': f'sqlite:///{tmp_path}/mlflow.db'}
    r = subprocess.run([str(BIN/'clinical-ml'), 'generate', '--num_patients', '1500', '--output_dir', str(tmp_path/'raw'), '--seed', '8'], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    (tmp_path/'cfg.yaml').write_text('hpo: {n_trials: 1, algorithms: [lightgbm], timeout_minutes: 30}\ncross_validation: {n_splits: 2}\nevaluation: {bootstrap: 0}\n')
    r = subprocess.run([str(BIN/'clinical-ml'), 'train', '--config', str(tmp_path/'cfg.yaml'), '--data', str(tmp_path/'raw'), '--output', str(tmp_path/'out')],
                       capture_output=True, text=True, env={**os.environ, **env}, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    p, url = start([], {**env, 'MODEL_URI': 'models:/clinical-ml@champion', 'RELOAD_FILE': str(tmp_path/'r.json')}, free_port())
    try:
        assert httpx.get(url + '/health').json()['model_version'] == '1'
        r = httpx.post(url + '/predict', json=SEED)
        assert r.status_code == 200 and r.json()['model_name'] == 'clinical-ml' and 0 <= r.json()['probability'] <= 1
    finally: stop(p)

def test_docs_page_renders_offline_in_chromium(model_dir, tmp_path, chromium):
    "The Swagger UI draws every operation from assets the app serves itself (this machine has no internet)."
    p, url = start([], {'MODEL_DIR': str(model_dir), 'RELOAD_FILE': str(tmp_path/'r.json')}, free_port())
    try: dom, log = chromium(url + '/docs', screenshot=tmp_path/'docs.png')
    finally: stop(p)
    assert 'swagger-ui' in dom and dom.count('opblock-summary-path') >= 7, dom[:2000]  # every endpoint is listed
    assert '/predict/batch' in dom
    assert (tmp_path/'docs.png').stat().st_size > 20_000
    assert not [l for l in log.splitlines() if 'CONSOLE' in l and ('error' in l.lower() or 'uncaught' in l.lower())]

@pytest.fixture(scope='module')
def live(model_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp('fuzz')
    p, url = start([], {'MODEL_DIR': str(model_dir), 'RELOAD_FILE': str(d/'r.json')}, free_port())
    yield url
    stop(p)

def test_fuzzed_requests_never_get_a_5xx(live):
    "Property-based: requests generated from the OpenAPI schema (valid and invalid) never make the server fail."
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    schema = schemathesis.openapi.from_url(live + '/openapi.json')
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {(o.method.upper(), o.path) for o in ops} >= {('POST', '/predict'), ('POST', '/predict/batch'), ('GET', '/health')}
    for op in ops:
        @settings(max_examples=int(os.environ.get('FUZZ_EXAMPLES', 40)), deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=op.as_strategy())
        def check(case):
            r = case.call(timeout=30)
            assert r.status_code < 500, (case.method, case.path, r.status_code, r.text[:500])
        check()

def test_chunked_body_over_the_limit_is_refused(model_dir, tmp_path):
    p, url = start([], {'MODEL_DIR': str(model_dir), 'RELOAD_FILE': str(tmp_path/'r.json'), 'MAX_BODY_BYTES': '100000'}, free_port())
    try:
        r = httpx.post(url + '/predict', content=iter([b'{"a": "' + b'x' * 60_000, b'y' * 60_000 + b'"}']), headers={'content-type': 'application/json'})
        assert r.status_code == 413 and 'larger than 100000 bytes' in r.json()['detail']
    finally: stop(p)


SERVING_IMPORTS = '''
import json, os, sys
from fastapi.testclient import TestClient
from clinical_ml.serve import create_app
with TestClient(create_app()) as c:
    r = c.post('/predict', json=json.loads(sys.argv[1]))
    assert r.status_code == 200, r.text
print(json.dumps(sorted(m for m in ('clinical_ml.train', 'clinical_ml.generate', 'clinical_ml.pipeline', 'optuna', 'papermill',
                                     'dask', 'distributed', 'shap') if m in sys.modules)))
'''

def test_serving_loads_no_training_stack(model_dir):
    "Importing the app, loading a model and answering a prediction import none of the training stack."
    r = subprocess.run([sys.executable, '-c', SERVING_IMPORTS, json.dumps(SEED)], capture_output=True, text=True, timeout=300,
                       env={**os.environ, 'MODEL_DIR': str(model_dir)})
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout.strip().splitlines()[-1]) == [], r.stdout
