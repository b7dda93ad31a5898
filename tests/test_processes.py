"""Processes and threads: fork after threaded steps, process pools, DataLoader workers, torch's
OpenMP beside fastopt's, concurrent ``step()`` on one optimizer, optimizers in parallel threads.

Every scenario runs as a script in a subprocess of its own, in a new session, with a timeout that
kills the whole process group: a hang (GNU OpenMP's pool after fork never returns) fails its test
instead of stalling the CI run. Each script prints ``OK`` as its last line when every check in it
passed; anything else (an assertion, a crash, a child that died) fails the test with its output.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 180  # seconds; each scenario takes a few seconds on an idle machine

# Shared by the scripts: a deterministic run of a few Adam steps, its result as bytes.
PRELUDE = '''
import os, sys, threading
import numpy as np
import fastopt

SIZE = 1 << 18  # above the default min_size: split across threads when threads are on

def gradient(step, size=SIZE, dtype=np.float32):
    return np.sin(np.arange(size, dtype=np.float64) * (step + 1) * 1e-3).astype(dtype)

def run(backend, steps=3, name="Adam", size=SIZE):
    param = np.linspace(-1, 1, size, dtype=np.float32)
    opt = getattr(fastopt, name)([param], lr=1e-2, backend=backend)
    for step in range(steps):
        opt.step([gradient(step, size)])
    return param.tobytes() + opt.state[0]["exp_avg"].tobytes() + opt.state[0]["exp_avg_sq"].tobytes()

def in_forked_child(checks):
    """Fork, run ``checks`` in the child, and fail here unless they passed there."""
    pid = os.fork()
    if pid == 0:
        try:
            checks()
        except BaseException as error:
            print("child failed:", repr(error), flush=True)
            os._exit(1)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
'''


def run_script(body: str, tmp_path, timeout: float = TIMEOUT) -> str:
    """Run PRELUDE + ``body`` as a script; return its output, failing on a hang or an error."""
    script = tmp_path / "scenario.py"
    script.write_text(PRELUDE + textwrap.dedent(body))
    process = subprocess.Popen(
        [sys.executable, str(script)], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,  # its own process group: children and all are killed
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        output, _ = process.communicate()
        pytest.fail(f"the scenario hung for {timeout} s (its process group was killed); output:\n{output}")
    finally:
        try:  # a forked grandchild that outlived the script
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert process.returncode == 0 and output.rstrip().endswith("OK"), f"exit code {process.returncode}; output:\n{output}"
    return output


@pytest.mark.parametrize("backend", ["cython", "numba"])
def test_fork_after_threaded_steps(backend, tmp_path):
    """The issue's case: threads on, a threaded step, fork; the child steps, on one thread, with
    the same bits as the parent's own threaded step, and may not turn threads back on."""
    run_script(f'''
    fastopt.set_num_threads(2, min_size=1024)
    param = np.linspace(-1, 1, 1 << 20, dtype=np.float32)
    opt = fastopt.Adam([param], lr=0.1, backend="{backend}")
    opt.step([np.ones_like(param)])  # threads started here (the OpenMP pool exists from now on)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            assert fastopt.get_num_threads() == 1, fastopt.get_num_threads()
            opt.step([np.full_like(param, 0.5)])
            os.write(write, param.tobytes())
            try:
                fastopt.set_num_threads(2)
            except RuntimeError as error:
                assert "forked" in str(error) and "spawn" in str(error), error
            else:
                raise AssertionError("set_num_threads(2) in the forked child did not raise")
            fastopt.set_num_threads(1)  # one thread stays allowed
        except BaseException as error:
            print("child failed:", repr(error), flush=True)
            os._exit(1)
        os._exit(0)
    os.close(write)
    opt.step([np.full_like(param, 0.5)])  # the parent's own step, on two threads
    received = b""
    while chunk := os.read(read, 1 << 20):
        received += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert received == param.tobytes(), "the child's step differs from the parent's"
    assert fastopt.get_num_threads() == 2  # the parent keeps its threads
    print("OK")
    ''', tmp_path)


@pytest.mark.parametrize("method", ["fork", "spawn", "forkserver"])
def test_process_pool(method, tmp_path):
    """A multiprocessing pool whose workers step optimizers, after the parent stepped on threads:
    every worker's result is the parent's, bit for bit. Workers started by spawn or forkserver
    may use threads; forked ones run on one thread."""
    run_script(f'''
    import multiprocessing

    def worker(backend):
        threads_allowed = True
        try:
            fastopt.set_num_threads(2, min_size=1024)
        except RuntimeError:
            threads_allowed = False
        return threads_allowed, fastopt.get_num_threads(), run(backend)

    if __name__ == "__main__":
        fastopt.set_num_threads(2, min_size=1024)
        expected = {{backend: run(backend) for backend in ("cython", "numba")}}
        pool = multiprocessing.get_context("{method}").Pool(2)
        results = pool.map(worker, ["cython", "numba", "cython", "numba"])
        pool.close()  # closed and joined, not terminated: nothing left for the resource tracker
        pool.join()
        for backend, (threads_allowed, threads, result) in zip(["cython", "numba"] * 2, results):
            assert result == expected[backend], backend
            assert threads_allowed == ("{method}" != "fork"), threads_allowed
            assert threads == (1 if "{method}" == "fork" else 2), threads
        print("OK")
    ''', tmp_path)


def test_torch_dataloader_workers(tmp_path):
    """torch's DataLoader(num_workers=2) (forked workers) whose dataset steps a fastopt optimizer,
    after both torch and fastopt ran on threads in the parent."""
    pytest.importorskip("torch")  # CI installs torch; the backend guard in .ci/run fails without it
    run_script('''
    import torch
    from torch.utils.data import DataLoader, Dataset

    class Steps(Dataset):
        def __len__(self):
            return 4
        def __getitem__(self, index):
            backend = ("cython", "numba")[index % 2]
            return torch.frombuffer(bytearray(run(backend)), dtype=torch.uint8)

    if __name__ == "__main__":
        torch.set_num_threads(2)
        fastopt.set_num_threads(2, min_size=1024)
        a = torch.randn(512, 512)
        (a @ a).sum()  # torch's OpenMP threads started
        expected = [run(("cython", "numba")[i % 2]) for i in range(4)]  # fastopt's started
        loader = DataLoader(Steps(), batch_size=None, num_workers=2)
        got = [bytes(item.numpy()) for item in loader]
        assert got == expected
        print("OK")
    ''', tmp_path)


@pytest.mark.parametrize("order", ["torch first", "fastopt first"])
def test_torch_openmp_beside_fastopt(order, tmp_path):
    """torch's wheel and fastopt both use GNU OpenMP. Whatever the import order, the process maps
    one libgomp (one pool: no second set of threads to oversubscribe the cores), each library's
    thread count is its own, and after a fork the child steps fastopt on one thread; torch needs
    ``torch.set_num_threads(1)`` there (as its DataLoader workers do)."""
    pytest.importorskip("torch")
    first = "import torch" if order == "torch first" else 'run("cython", steps=1)  # fastopt\'s kernels loaded first'
    run_script(f'''
    {first}
    import torch
    torch.set_num_threads(2)
    fastopt.set_num_threads(2, min_size=1024)
    a = torch.randn(512, 512)
    (a @ a).sum()
    expected = run("cython")
    libraries = {{line.split()[-1] for line in open("/proc/self/maps") if "libgomp" in line}}
    assert len(libraries) == 1, libraries
    fastopt.set_num_threads(1)
    assert torch.get_num_threads() == 2  # fastopt's knob leaves torch's alone
    torch.set_num_threads(1)
    fastopt.set_num_threads(2, min_size=1024)
    assert fastopt.get_num_threads() == 2  # and the other way round
    torch.set_num_threads(2)
    def checks():
        torch.set_num_threads(1)
        assert fastopt.get_num_threads() == 1
        assert run("cython") == expected
        assert torch.allclose(a @ a, a @ a)
    in_forked_child(checks)
    print("OK")
    ''', tmp_path)


def test_fork_without_threads_keeps_threads_available(tmp_path):
    """A parent that never asked for threads (and imported neither torch nor Numba's threading
    layer) has no OpenMP pool to lose: its forked children may use threads."""
    run_script('''
    expected = run("cython")
    assert "torch" not in sys.modules
    def checks():
        fastopt.set_num_threads(2, min_size=1024)
        assert fastopt.get_num_threads() == 2
        assert run("cython") == expected
    in_forked_child(checks)
    print("OK")
    ''', tmp_path)


@pytest.mark.parametrize("front", ["numpy cython", "numpy numba", "numpy reference", "torch", "lbfgs"])
def test_concurrent_steps_on_one_optimizer(front, tmp_path):
    """The issue's second case: two threads call step() on the same optimizer, 25 times each.
    With the lock the steps run one after the other: step == 50 and the parameters are those of
    50 sequential steps, bit for bit (the same gradient every step, so order does not matter;
    L-BFGS's closure gives the same sequence whichever thread calls it)."""
    if front == "torch":
        pytest.importorskip("torch")  # CI's main pass has torch (its backend guard); the sanitizer pass has not
    backend = front.split()[-1] if front not in ("torch", "lbfgs") else "cython"
    run_script(f'''
    FRONT = "{front}"
    def make(param):
        if FRONT == "torch":
            import torch
            from fastopt import torch as fastopt_torch
            tensor = torch.from_numpy(param)
            tensor.grad = torch.from_numpy(gradient(0))
            opt = fastopt_torch.Adam([tensor], lr=1e-2, backend="{backend}")
            return opt, (lambda: opt.step()), (lambda: opt.state[tensor]["step"])
        if FRONT == "lbfgs":  # its own step(closure), outside the step engine
            curvature = np.geomspace(1, 1e4, SIZE)  # an ill-conditioned quadratic: far from converged after 50 steps
            def closure():
                return float(0.5 * np.sum(curvature * param.astype(np.float64) ** 2)), [(curvature * param).astype(np.float32)]
            opt = fastopt.LBFGS([param], max_iter=2, history_size=5, backend="cython")
            return opt, (lambda: opt.step(closure)), (lambda: opt.state[0]["n_iter"])
        opt = fastopt.Adam([param], lr=1e-2, backend="{backend}")
        grads = [gradient(0)]
        return opt, (lambda: opt.step(grads)), (lambda: opt.state[0]["step"])

    shared = np.linspace(-1, 1, SIZE, dtype=np.float32)
    opt, step, counter = make(shared)
    start = threading.Barrier(2)
    errors = []
    def steps():
        try:
            start.wait()
            for _ in range(25):
                step()
        except BaseException as error:
            errors.append(error)
    threads = [threading.Thread(target=steps) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    sequential = np.linspace(-1, 1, SIZE, dtype=np.float32)
    _, step_once, sequential_counter = make(sequential)
    for _ in range(50):
        step_once()
    assert int(counter()) == int(sequential_counter()) == 50, (counter(), sequential_counter())  # L-BFGS: n_iter, one a step here (max_eval 2)
    assert np.array_equal(shared, sequential), "concurrent steps lost or mixed updates"
    print("OK")
    ''', tmp_path)


@pytest.mark.parametrize("backend", ["cython", "numba"])
@pytest.mark.parametrize("threads_per_step", [1, 2])
def test_optimizers_in_parallel_threads(backend, threads_per_step, tmp_path):
    """Two optimizers stepped at the same time from two Python threads (the kernels release the
    GIL) give the bits of the same runs made one after the other, with and without fastopt's
    own threads inside each step."""
    run_script(f'''
    fastopt.set_num_threads({threads_per_step}, min_size=1024)
    names = ["Adam", "AdamW"]
    expected = [run("{backend}", steps=20, name=name) for name in names]
    results = [None, None]
    start = threading.Barrier(2)
    def work(index):
        start.wait()
        results[index] = run("{backend}", steps=20, name=names[index])
    threads = [threading.Thread(target=work, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == expected
    print("OK")
    ''', tmp_path)


def test_lock_excluded_from_pickles():
    """The lock is per optimizer object: a pickled fastopt.torch optimizer carries none (a lock
    cannot be pickled) and the unpickled one gets its own."""
    torch = pytest.importorskip("torch")
    import pickle

    import fastopt.torch

    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.ones(3)
    opt = fastopt.torch.Adam([param])
    opt.step()
    copy = pickle.loads(pickle.dumps(opt))
    assert copy._lock is not opt._lock
    assert copy.state_dict()["state"][0]["step"] == 1
