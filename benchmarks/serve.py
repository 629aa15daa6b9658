"""Benchmark the API: throughput and latency of `clinical-ml serve --workers 2` (gunicorn + uvicorn workers, the feature
store configured) under a separate load-generator process on 127.0.0.1, `/predict/batch` of 1,000 patients, and side by
side the same app under `uvicorn --workers 2`, the same registered model under `mlflow models serve`, and the bare
in-process `predict_proba` per row (the floor).
Writes benchmarks/results/serve.json.

    .venv/bin/python benchmarks/serve.py [--seconds 60] [--workdir DIR]

Without --workdir it first makes the default model as `make run` does (20,000 patients → features → train with
config/training_config.yaml, registered in a SQLite MLflow store); with --workdir it reuses one made before.
"""
import argparse, http.client, json, os, signal, subprocess, sys, tempfile, time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _measure import save

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent


def sh(cmd, **kw):
    print('$', ' '.join(map(str, cmd)), flush=True)
    subprocess.run(list(map(str, cmd)), check=True, **kw)


def make_model(work: Path, env: dict):
    if (work / 'out' / 'model' / 'model.joblib').exists(): return
    sh([BIN / 'clinical-ml', 'generate', '--num_patients', '20000', '--output_dir', work / 'raw', '--overwrite'], env=env)
    sh([BIN / 'clinical-ml', 'train', '--config', ROOT / 'config' / 'training_config.yaml', '--data', work / 'raw', '--output', work / 'out'], env=env, cwd=work)


def bodies(work: Path, n: int) -> list[dict]:
    "Patient-years of the latest year, as API payloads (units included as the data has them)."
    from clinical_ml.generate import read_data
    df = read_data(work / 'raw', filters=[('year', '==', 2025)]).drop(columns='target').head(n)
    return [{k: (None if v is None or v != v else (v.item() if hasattr(v, 'item') else v)) for k, v in r.items()} for r in df.astype(object).to_dict('records')]


def wait_up(port: int, path: str, proc, timeout=180):
    t = time.time()
    while time.time() - t < timeout:
        if proc.poll() is not None: raise RuntimeError(f'server exited with {proc.returncode}')
        try:
            c = http.client.HTTPConnection('127.0.0.1', port, timeout=2); c.request('GET', path)
            if c.getresponse().status == 200: return
        except OSError: pass
        time.sleep(0.5)
    raise TimeoutError(f'no answer on :{port}{path}')


def load(url, body_file, seconds, **kw) -> dict:
    args = [sys.executable, Path(__file__).parent / '_load.py', '--url', url, '--bodies', body_file, '--seconds', seconds]
    for k, v in kw.items(): args += [f'--{k}', v]
    out = subprocess.run(list(map(str, args)), check=True, capture_output=True, text=True).stdout
    r = json.loads(out.strip().splitlines()[-1]); print(' ', r, flush=True)
    return r


def stop(proc):
    if proc.poll() is not None: return
    os.killpg(proc.pid, signal.SIGTERM)
    try: proc.wait(30)
    except subprocess.TimeoutExpired: os.killpg(proc.pid, signal.SIGKILL)


def batch_ms(port: int, items: list, reps: int = 20) -> dict:
    body = json.dumps({'patients': items}).encode()
    c = http.client.HTTPConnection('127.0.0.1', port, timeout=60)
    ts = []
    for i in range(reps + 2):
        t = time.perf_counter()
        c.request('POST', '/predict/batch', body, {'Content-Type': 'application/json'})
        r = c.getresponse(); data = json.loads(r.read())
        assert r.status == 200 and data['errors'] == 0, (r.status, str(data)[:300])
        if i >= 2: ts.append((time.perf_counter() - t) * 1000)
    return dict(patients=len(items), reps=reps, median_ms=round(float(np.median(ts)), 2), p90_ms=round(float(np.percentile(ts, 90)), 2),
                server_processing_ms=data['processing_ms'])


def saturation_of(cmd: list, env: dict, port: int, ping: str, path: str, body_file: Path, seconds: float, label: str) -> dict:
    "Start a server, warm it, and measure it at saturation with 10 clients."
    p = subprocess.Popen(list(map(str, cmd)), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_up(port, ping, p)
        url = f'http://127.0.0.1:{port}{path}'
        load(url, body_file, 5, clients=10, warmup=1)
        return dict(server=label, saturation=load(url, body_file, seconds, clients=10))
    finally: stop(p)


def floor(work: Path, items: list) -> dict:
    "In-process: the classifier's own predict_proba on one prepared row, and our whole score() of one request."
    from clinical_ml import features, lifecycle, scoring
    served = lifecycle.load_served(directory=str(work / 'out' / 'model'))
    m = served.model
    Predict = scoring.request_models(m.spec.record)[0]
    reqs = [Predict.model_validate(b) for b in items[:200]]
    groups = [[scoring.request_record(r)] for r in reqs]
    X = m.scorer().matrix(features.features_latest(groups, m.spec, keep=set(m.columns)))
    clf = m.pipeline.steps[-1][1]
    def per_call(f, k):
        for i in range(20): f(i % k)
        ts = []
        for i in range(600):
            t = time.perf_counter(); f(i % k); ts.append(time.perf_counter() - t)
        return float(np.median(ts)) * 1000
    return dict(algorithm=m.info.get('algorithm'), predict_proba_one_row_ms=round(per_call(lambda i: clf.predict_proba(X[i:i + 1]), len(X)), 4),
                score_one_request_ms=round(per_call(lambda i: scoring.score(m, [groups[i]]), len(groups)), 4),
                validate_one_request_ms=round(per_call(lambda i: Predict.model_validate(items[i]), len(groups)), 4))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--seconds', type=float, default=60)
    ap.add_argument('--workdir', default=None)
    ap.add_argument('--skip-mlflow', action='store_true')
    ap.add_argument('--skip-uvicorn-workers', action='store_true', help="skip the side-by-side run of 'uvicorn --workers 2'")
    a = ap.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(dir='/tmp', prefix='bench-serve-')); work.mkdir(exist_ok=True)
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{work}/mlflow.db', 'PATH': f"{BIN}:{os.environ.get('PATH', '')}"}  # mlflow runs 'uvicorn' from PATH
    make_model(work, env)
    items = bodies(work, 1000)
    (work / 'bodies.json').write_text(json.dumps(items[:500]))
    (work / 'mlflow_bodies.json').write_text(json.dumps([{'dataframe_records': [b]} for b in items[:500]]))
    if not (work / 'store.db').exists():
        from clinical_ml.store import build_store
        build_store(work / 'raw', work / 'store.db')
    res = dict(seconds_per_run=a.seconds, floor=floor(work, items))
    print('floor', res['floor'], flush=True)

    port = 8411
    senv = {**env, 'MODEL_DIR': str(work / 'out' / 'model'), 'FEATURE_STORE': str(work / 'store.db'), 'RELOAD_FILE': str(work / 'reload.json')}
    srv = subprocess.Popen([BIN / 'clinical-ml', 'serve', '--workers', '2', '--port', str(port), '--host', '127.0.0.1'], env=senv,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_up(port, '/health', srv)
        url = f'http://127.0.0.1:{port}/predict'
        load(url, work / 'bodies.json', 5, clients=10, warmup=1)  # warm the workers
        res['ours'] = dict(server='clinical-ml serve --workers 2 (gunicorn + uvicorn workers), FEATURE_STORE set',
                           saturation=load(url, work / 'bodies.json', a.seconds, clients=10),
                           fixed_200=load(url, work / 'bodies.json', a.seconds, rate=200),
                           batch_1000=batch_ms(port, items[:1000]))
        print('batch', res['ours']['batch_1000'], flush=True)
    finally: stop(srv)

    if not a.skip_uvicorn_workers:  # the other multi-worker server: why `clinical-ml serve --workers N` runs gunicorn
        res['uvicorn_workers_2'] = saturation_of(
            [BIN / 'uvicorn', 'clinical_ml.serve:app', '--workers', '2', '--host', '127.0.0.1', '--port', '8413', '--no-access-log'], senv,
            8413, '/health', '/predict', work / 'bodies.json', a.seconds, 'uvicorn clinical_ml.serve:app --workers 2, FEATURE_STORE set')

    if not a.skip_mlflow:
        res['mlflow_models_serve'] = saturation_of(
            [BIN / 'mlflow', 'models', 'serve', '-m', 'models:/clinical-ml@champion', '--env-manager', 'local', '-h', '127.0.0.1', '-p', '8412', '-w', '2'],
            env, 8412, '/ping', '/invocations', work / 'mlflow_bodies.json', a.seconds, 'mlflow models serve -w 2 --env-manager local, same registered model')
        res['throughput_ratio_vs_mlflow'] = round(res['ours']['saturation']['rps'] / res['mlflow_models_serve']['saturation']['rps'], 2)
    o = res['ours']
    res['overhead_over_floor_ms'] = round(o['saturation']['p50_ms'] - res['floor']['predict_proba_one_row_ms'], 3)
    print(f"ours: {o['saturation']['rps']} req/s at 10 clients (p50 {o['saturation']['p50_ms']} ms, errors {o['saturation']['errors']}); "
          f"200 req/s offered: p99 {o['fixed_200']['p99_ms']} ms; batch of 1000: {o['batch_1000']['median_ms']} ms; "
          f"uvicorn --workers 2: {res.get('uvicorn_workers_2', {}).get('saturation', {}).get('rps')} req/s; "
          f"mlflow serve: {res.get('mlflow_models_serve', {}).get('saturation', {}).get('rps')} req/s (ratio {res.get('throughput_ratio_vs_mlflow')}); "
          f"floor predict_proba {res['floor']['predict_proba_one_row_ms']} ms/row", flush=True)
    print('wrote', save('serve', res))


if __name__ == '__main__': main()
