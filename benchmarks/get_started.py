"""The Get-started walk, run for real as a new user runs it, recorded for the docs site: a fresh clone of this checkout's
HEAD, `make run` in it (the venv created and the project installed on the way), then the command the run prints to
serve the model, `/health` and a `/predict` of `config/example_request.json` with curl. Writes
benchmarks/results/get_started.json (every command, its output and its seconds) and the run's error-analysis summary
as benchmarks/results/example_report.{md,json}; the site's Get started and Example report pages are drawn from these
files when it renders, so they never drift from what was run.

    .venv/bin/python benchmarks/get_started.py [--work DIR] [--profile default]
"""
import argparse, json, os, re, shutil, signal, socket, subprocess, tempfile, time
from pathlib import Path

from _measure import RESULTS, machine

ROOT = Path(__file__).parents[1]


def _screen(text: str) -> list:
    "What a terminal shows of `text`: a progress bar's updates (carriage returns, or one line each off a terminal) keep only their last state; no colour codes."
    text = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', text)
    lines = [l.split('\r')[-1].rstrip() for l in text.replace('\r\n', '\n').split('\n') if l.split('\r')[-1].strip()]
    bar = lambda l: re.match(r'^[\w ]+:\s+\d+%\|', l)  # tqdm: 'Executing:  40%|████      | 17/42 ...'
    return [l for i, l in enumerate(lines) if not (bar(l) and i + 1 < len(lines) and bar(lines[i + 1]) and bar(lines[i + 1]).group() [:9] == bar(l).group()[:9])]


def step(cmd: str, cwd: Path, env: dict, timeout: float = 3600) -> dict:
    "Run one shell command as a user types it; its combined output as the terminal shows it, its exit code and seconds."
    t = time.monotonic()
    r = subprocess.run(['bash', '-c', cmd], cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)  # one stream, in the order a terminal shows it
    out = dict(command=cmd, returncode=r.returncode, seconds=round(time.monotonic() - t, 1), output=_screen(r.stdout))
    if r.returncode: raise RuntimeError(f'{cmd} exited {r.returncode}:\n' + '\n'.join(out['output'][-40:]))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument('--work', default=None, help='where the fresh clone goes (a new temporary folder by default)')
    ap.add_argument('--profile', default='default')
    a = ap.parse_args(argv)
    work = Path(a.work or tempfile.mkdtemp(prefix='clinical-ml-get-started-')); work.mkdir(parents=True, exist_ok=True)
    clone = work / 'clinical-ml'; shutil.rmtree(clone, ignore_errors=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('VIRTUAL_ENV', 'MLFLOW_', 'MODEL_', 'PYTHONPATH'))}
    env['PATH'] = ':'.join(p for p in env.get('PATH', '').split(':') if '.venv' not in p)  # a new user's shell: no venv of ours on it
    subprocess.run(['git', 'clone', '-q', str(ROOT), str(clone)], check=True)
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=clone, capture_output=True, text=True).stdout.strip()
    steps = [step('make run' + ('' if a.profile == 'default' else f' PROFILE={a.profile}'), clone, env)]
    serve = next(l.split('serve it:', 1)[1].strip() for l in steps[0]['output'] if 'serve it:' in l)
    with socket.socket() as s: s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    typed = serve.replace(str(clone) + '/', '').replace('--port 8000', f'--port {port}')  # as the user types it, from the clone
    srv = subprocess.Popen(['bash', '-c', f'source .venv/bin/activate && {typed} --host 127.0.0.1'], cwd=clone, env=env, start_new_session=True,
                           stdout=open(work / 'serve.log', 'w'), stderr=subprocess.STDOUT)
    try:
        t = time.monotonic()
        while subprocess.run(['curl', '-sf', f'http://127.0.0.1:{port}/health'], capture_output=True).returncode:
            if srv.poll() is not None or time.monotonic() - t > 120: raise RuntimeError((work / 'serve.log').read_text()[-3000:])
            time.sleep(0.5)
        up = round(time.monotonic() - t, 1)
        steps.append(dict(command='source .venv/bin/activate && ' + typed.replace(f'--port {port}', '--port 8000'), background=True, seconds_to_healthy=up))
        for cmd in (f'curl -s localhost:{port}/health', f'curl -s -X POST localhost:{port}/predict -H "Content-Type: application/json" -d @config/example_request.json'):
            r = step(cmd, clone, env, 60)
            r['command'] = r['command'].replace(f':{port}', ':8000')
            r['output'] = [json.dumps(json.loads('\n'.join(r['output'])), indent=1)]
            steps.append(r)
    finally:
        os.killpg(srv.pid, signal.SIGTERM); srv.wait(60)
    report = clone / 'runs' / a.profile / 'report'
    rel = lambda text: text.replace(str(clone) + '/', '')  # paths as the user sees them, from the clone
    for ext in ('md', 'json'): (RESULTS / f'example_report.{ext}').write_text(rel((report / f'error_analysis.{ext}').read_text()))
    out = dict(benchmark='get_started', when=time.strftime('%Y-%m-%dT%H:%M:%S'), machine=machine(), commit=commit, profile=a.profile,
               summary=json.loads((clone / 'runs' / a.profile / 'summary.json').read_text()), steps=steps)
    (RESULTS / 'get_started.json').write_text(rel(json.dumps(out, indent=1, default=str)))
    print('wrote', RESULTS / 'get_started.json', f"(make run: {steps[0]['seconds']:.0f} s)")


if __name__ == '__main__': main()
