"Shared helpers of the benchmarks: run a command, sample the RSS of its whole process tree, time it."
import json, statistics, subprocess, time, platform, os
from pathlib import Path
import psutil

RESULTS = Path(__file__).parent / 'results'

def run_tree(cmd: list, interval: float = 0.05, **kw) -> dict:
    "Run `cmd`; return wall seconds, peak RSS (MiB) summed over the process and all its descendants, and exit code."
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)
    proc, peak = psutil.Process(p.pid), 0
    while p.poll() is None:
        try:
            rss = proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True))
            peak = max(peak, rss)
        except psutil.Error: pass
        time.sleep(interval)
    out, err = p.communicate()
    return dict(seconds=time.perf_counter() - t0, peak_rss_mib=peak / 2**20, returncode=p.returncode, stdout=out[-2000:], stderr=err[-2000:])

def median(xs): return statistics.median(xs)

def machine() -> dict:
    return dict(cpus=os.cpu_count(), memory_gib=round(psutil.virtual_memory().total / 2**30, 1), python=platform.python_version(),
                platform=platform.platform())

def save(name: str, result: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f'{name}.json'
    path.write_text(json.dumps({'benchmark': name, 'when': time.strftime('%Y-%m-%dT%H:%M:%S'), 'machine': machine(), **result}, indent=1))
    return path

ROWS_PER_PATIENT = 3.36  # patient-years per generated patient (the default follow-up)

def train_cli(rows: int, data, config, work: Path) -> tuple:
    "Generate ~`rows` patient-years into `data` unless it exists, then `clinical-ml train` it into WORK/out with a SQLite MLflow store in WORK; (generate run or None, train run, metrics.json)."
    import sys
    cli = str(Path(sys.executable).parent / 'clinical-ml')
    data, gen = Path(data), None
    if not data.exists():
        gen = run_tree([cli, 'generate', '--num_patients', str(round(rows / ROWS_PER_PATIENT)), '--output_dir', str(data)])
        assert gen['returncode'] == 0, gen['stderr']
    env = {**os.environ, 'MLFLOW_TRACKING_URI': f'sqlite:///{work}/mlflow.db'}
    r = run_tree([cli, 'train', '--config', str(config), '--data', str(data), '--output', str(work / 'out')], env=env, cwd=work)
    assert r['returncode'] == 0, r['stderr'][-3000:]
    return gen, r, json.loads((work / 'out' / 'model' / 'metrics.json').read_text())
