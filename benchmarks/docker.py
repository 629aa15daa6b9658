"""Benchmark the images on the real engine: sizes (and what dominates them), build time cold (no cache) and warm (a code
change: the dependency layer is reused), time from `docker run` to a 200 on /health for the serving container (median
of --starts), the serving container's memory at rest and after 10,000 /predict requests, and the MLflow server's memory
at rest as docker-compose.yml runs it (one worker, MLflow's job runner off) and with MLflow's defaults.
Writes benchmarks/results/docker.json.

    .venv/bin/python benchmarks/docker.py [--starts 3] [--requests 10000] [--skip-cold]

Starts the engine with the shared script when none runs. Run it alone: a second heavy job on 2 cores skews every figure.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, threading, time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))
from _measure import save

ROOT = Path(__file__).parents[1]
BIN = Path(sys.executable).parent
IMAGES = {'serving': 'clinical-ml-serving:latest', 'training': 'clinical-ml-training:latest'}
EXAMPLE = json.loads((ROOT / 'config' / 'example_request.json').read_text())


def sh(*cmd, timeout=3600, check=True, **kw) -> subprocess.CompletedProcess:
    print('$', ' '.join(map(str, cmd)), flush=True)
    r = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=timeout, **kw)
    if check and r.returncode: raise RuntimeError(r.stdout[-2000:] + r.stderr[-3000:])
    return r


def engine():
    if sh('docker', 'info', check=False, timeout=60).returncode == 0: return
    for p in (ROOT.parent / 'shared' / 'tools' / 'docker-engine.sh', Path('/work/shared/tools/docker-engine.sh')):
        if p.exists(): sh('bash', p, timeout=2400); return
    sys.exit('no Docker engine, and no docker-engine.sh to start one')


def context_copy(d: Path) -> Path:
    "The build context (what .dockerignore lets through), copied, so a code change can be made without touching the checkout."
    d.mkdir(parents=True)
    for name in ('settings.ini', 'setup.py', 'README.md', 'clinical_ml', 'docker', 'config', 'nbs', '.dockerignore'):
        s = ROOT / name
        (shutil.copytree(s, d / name, ignore=shutil.ignore_patterns('__pycache__', '.ipynb_checkpoints', '_proc')) if s.is_dir() else shutil.copy(s, d / name))
    return d


def build(ctx: Path, name: str, tag: str, *extra) -> float:
    t0 = time.perf_counter()
    sh('docker', 'build', '-q', *extra, '-f', ctx / 'docker' / f'Dockerfile.{name}', '-t', tag, ctx)
    return time.perf_counter() - t0


def size(tag: str) -> int: return int(sh('docker', 'image', 'inspect', '--format', '{{.Size}}', tag).stdout)


def mem_mib(cid: str) -> float:
    "The container's memory (cgroup), as `docker stats` reports it."
    s = sh('docker', 'stats', '--no-stream', '--format', '{{.MemUsage}}', cid).stdout.split('/')[0].strip()
    num, unit = re.match(r'([\d.]+)\s*([KMG]i?B)', s).groups()
    return float(num) * {'KiB': 1 / 1024, 'MiB': 1, 'GiB': 1024, 'kB': 1 / 1024, 'MB': 1, 'GB': 1024}[unit]


def wait_http(url: str, seconds: float) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        try:
            if httpx.get(url, timeout=2).status_code == 200: return time.perf_counter() - t0
        except httpx.HTTPError: pass
        time.sleep(0.1)
    raise RuntimeError(f'{url}: not healthy after {seconds} s')


def free_port() -> int:
    import socket
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


def layers(tag: str) -> list:
    "The image's biggest layers and what made them."
    out = sh('docker', 'history', '--no-trunc', '--format', '{{.Size}}\t{{.CreatedBy}}', tag).stdout.splitlines()
    rows = [(l.split('\t')[0], l.split('\t')[1][-90:]) for l in out]
    return [r for r in rows if r[0] not in ('0B',)][:6]


def venv_top(tag: str) -> list:
    "The largest packages in the image's virtual environment (MiB)."
    r = sh('docker', 'run', '--rm', '--entrypoint', 'sh', tag, '-c', 'cd /opt/venv/lib/python3.11/site-packages && du -sm * | sort -rn | head -12')
    return [(l.split('\t')[1], int(l.split('\t')[0])) for l in r.stdout.splitlines()]


def serving_model(work: Path) -> Path:
    "A model directory trained on the host (the default training config, 20,000 patients), for the serving container."
    if not (work / 'out' / 'model' / 'model.joblib').exists():
        sh(BIN / 'clinical-ml', 'generate', '--num_patients', '20000', '--output_dir', work / 'raw', '--overwrite')
        sh(BIN / 'clinical-ml', 'train', '--config', ROOT / 'config' / 'training_config.yaml', '--data', work / 'raw', '--output', work / 'out',
           env={**os.environ, 'MLFLOW_TRACKING_URI': f"sqlite:///{work / 'mlflow.db'}"})  # its own store, not the project's
    return work / 'out' / 'model'


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--starts', type=int, default=3); ap.add_argument('--requests', type=int, default=10_000)
    ap.add_argument('--skip-cold', action='store_true', help='do not rebuild without cache (reuse the images there are)')
    ap.add_argument('--workdir', default=None, help='where the host-trained model lives (reused when present)')
    ap.add_argument('--only-mlflow', action='store_true', help='measure the MLflow server only; keep the rest of docker.json')
    a = ap.parse_args()
    engine()
    if a.only_mlflow:
        res = {k: v for k, v in json.loads((Path(__file__).parent / 'results' / 'docker.json').read_text()).items() if k not in ('benchmark', 'when', 'machine')}
        res['mlflow_server'] = mlflow_memory(); print('wrote', save('docker', res)); return
    res = {'engine': sh('docker', 'version', '--format', '{{.Server.Version}}').stdout.strip(),
           'base_image_bytes': size('python:3.11-slim-bookworm')}
    with tempfile.TemporaryDirectory() as d:
        ctx = context_copy(Path(d) / 'ctx')
        builds = {}
        for name, tag in IMAGES.items():
            b = {}
            if not a.skip_cold: b['cold_seconds'] = build(ctx, name, tag, '--no-cache')
            b['warm_unchanged_seconds'] = build(ctx, name, tag)
            init = ctx / 'clinical_ml' / '__init__.py'
            init.write_text(init.read_text() + f'# benchmark {time.time()}\n')  # a code change: every layer above the dependencies rebuilds
            b['warm_code_change_seconds'] = build(ctx, name, tag)
            builds[name] = b
        sh('docker', 'build', '-q', '-f', ROOT / 'docker' / 'Dockerfile.serving', '-t', IMAGES['serving'], ROOT)  # back to the checkout's code
        sh('docker', 'build', '-q', '-f', ROOT / 'docker' / 'Dockerfile.training', '-t', IMAGES['training'], ROOT)
    res['images'] = {name: {'bytes': size(tag), 'mb': round(size(tag) / 1e6), **builds[name], 'largest_layers': layers(tag),
                            'largest_packages_mib': venv_top(tag)} for name, tag in IMAGES.items()}

    work = Path(a.workdir or Path(tempfile.gettempdir()) / 'clinical-ml-docker-bench')
    work.mkdir(parents=True, exist_ok=True)
    model = serving_model(work)
    starts, port = [], free_port()
    for i in range(a.starts):
        t0 = time.perf_counter()
        cid = sh('docker', 'run', '-d', '-p', f'127.0.0.1:{port}:8000', '-v', f'{model}:/model:ro', '-e', 'MODEL_DIR=/model', IMAGES['serving']).stdout.strip()
        try:
            wait_http(f'http://127.0.0.1:{port}/health', 300)
            starts.append(time.perf_counter() - t0)
            if i == a.starts - 1:  # memory, on the last start
                time.sleep(5)
                rest = mem_mib(cid)
                n_threads, done, errors = 4, [0], [0]
                def load(k):
                    with httpx.Client(timeout=30) as c:
                        for _ in range(k):
                            r = c.post(f'http://127.0.0.1:{port}/predict', json=EXAMPLE)
                            done[0] += 1; errors[0] += r.status_code != 200
                t1 = time.perf_counter()
                ts = [threading.Thread(target=load, args=(a.requests // n_threads,)) for _ in range(n_threads)]
                for t in ts: t.start()
                for t in ts: t.join()
                load_s = time.perf_counter() - t1
                res['serving'] = {'workers': 2, 'memory_at_rest_mib': round(rest, 1), 'memory_after_requests_mib': round(mem_mib(cid), 1),
                                  'requests': done[0], 'errors': errors[0], 'requests_seconds': round(load_s, 1)}
        finally: sh('docker', 'rm', '-f', cid, check=False)
    res['serving']['start_to_healthy_seconds'] = [round(s, 2) for s in starts]
    res['serving']['start_to_healthy_median_seconds'] = round(statistics.median(starts), 2)

    res['mlflow_server'] = mlflow_memory()
    print(json.dumps(res, indent=1))
    print('wrote', save('docker', res))


def mlflow_memory() -> dict:
    "The MLflow server's start time and memory at rest: as docker-compose.yml runs it (one worker, no job runner), and with MLflow's defaults."
    mlflow = {}
    for label, workers, jobs in (('compose', ['--workers', '1'], 'false'), ('one_worker_jobs_on', ['--workers', '1'], 'true'), ('mlflow_default', [], 'true')):
        port = free_port()
        cid = sh('docker', 'run', '-d', '-p', f'127.0.0.1:{port}:5000', '-e', f'MLFLOW_SERVER_ENABLE_JOB_EXECUTION={jobs}', IMAGES['training'],
                 'mlflow', 'server', '--host', '0.0.0.0', '--port', '5000',
                 *workers, '--backend-store-uri', 'sqlite:////tmp/mlflow.db', '--artifacts-destination', '/tmp/artifacts',
                 '--allowed-hosts', '127.0.0.1:*,localhost:*').stdout.strip()
        try:
            mlflow[label] = {'start_to_healthy_seconds': round(wait_http(f'http://127.0.0.1:{port}/health', 300), 2)}
            time.sleep(10)
            mlflow[label]['memory_at_rest_mib'] = round(mem_mib(cid), 1)
        finally: sh('docker', 'rm', '-f', cid, check=False)
    return mlflow


if __name__ == '__main__':
    main()
