"Helpers every test module shares: the project's paths, a free loopback port, the installed command, headless Chromium."
import os, shutil, socket, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]  # the project
BIN = Path(sys.executable).parent  # the environment's scripts (clinical-ml, dask, papermill, …)


def shared(*parts) -> Path:
    "A path under the workplace's shared folder (data sets, tools): beside the checkout, else /work/shared; None if neither has it."
    for base in (ROOT.parent / 'shared', Path('/work/shared')):
        if (p := base.joinpath(*parts)).exists(): return p


def free_port() -> int:
    "A TCP port free on 127.0.0.1 right now."
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]

@pytest.fixture
def cli():
    "Run the installed `clinical-ml` command in a real process; return the CompletedProcess."
    def run(*args, cwd=ROOT, timeout=600, env=None):
        return subprocess.run([str(BIN/'clinical-ml'), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                              timeout=timeout, env={**os.environ, **(env or {})})
    return run


@pytest.fixture
def dask_cluster():
    "A real Dask scheduler and two single-thread workers, separate processes, listening on 127.0.0.1 only."
    port = free_port()
    addr = f'tcp://127.0.0.1:{port}'
    sched = subprocess.Popen([str(BIN/'dask'), 'scheduler', '--host', '127.0.0.1', '--port', str(port), '--dashboard-address', f'127.0.0.1:{free_port()}'],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([str(BIN/'dask'), 'worker', addr, '--host', '127.0.0.1', '--nthreads', '1', '--nworkers', '2', '--no-dashboard'],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from distributed import Client
    try:
        with Client(addr, timeout=60) as c: c.wait_for_workers(2, timeout=60)
        yield addr
    finally:
        for p in (worker, sched):
            p.terminate()
            try: p.wait(20)
            except subprocess.TimeoutExpired: p.kill()


@pytest.fixture(scope='session')
def chromium():
    "Headless Chromium (Debian's package, installed here when missing)."
    exe = shutil.which('chromium') or shutil.which('chromium-browser')
    if not exe:
        subprocess.run(['apt-get', 'update', '-qq'], check=True, timeout=600, capture_output=True)
        subprocess.run(['apt-get', 'install', '-y', '-qq', 'chromium'], check=True, timeout=900, capture_output=True,
                       env={**os.environ, 'DEBIAN_FRONTEND': 'noninteractive'})
        exe = shutil.which('chromium')
    def render(url: str, screenshot=None) -> tuple[str, str]:
        "The DOM after the page's scripts ran, and Chromium's log (console messages included); optionally a screenshot."
        args = [exe, '--headless', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--enable-logging=stderr', '--v=0',
                '--virtual-time-budget=20000', '--window-size=1280,1600']
        if screenshot: subprocess.run([*args, f'--screenshot={screenshot}', url], capture_output=True, text=True, timeout=180)
        r = subprocess.run([*args, '--dump-dom', url], capture_output=True, text=True, timeout=180)
        return r.stdout, r.stderr
    return render
