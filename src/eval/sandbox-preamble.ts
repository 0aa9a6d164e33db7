/**
 * The Python side of the HumanEval sandbox: run as `python3 -I -B preamble.py WORK MEM_BYTES CPU_S NPROC`, it
 * lowers resource limits, removes the in-process ways out (sockets, subprocesses, fork, ctypes, writes outside
 * WORK), then executes WORK/program.py as __main__. These guards are best effort — Python code can be clever —
 * which is why sandbox.ts adds OS-level walls (network and PID namespaces, an unprivileged uid) where it can.
 */
export const SANDBOX_PREAMBLE = String.raw`
import builtins, io, os, resource, sys
WORK = os.path.realpath(sys.argv[1])
MEM, CPU, NPROC = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])

def _limit(which, value):
    try:
        resource.setrlimit(which, (value, value))
    except (ValueError, OSError):
        pass

_limit(resource.RLIMIT_AS, MEM)
_limit(resource.RLIMIT_DATA, MEM)
_limit(resource.RLIMIT_CPU, CPU)
_limit(resource.RLIMIT_FSIZE, 16 << 20)
_limit(resource.RLIMIT_NPROC, NPROC)
_limit(resource.RLIMIT_CORE, 0)

with open(os.path.join(WORK, "program.py"), encoding="utf-8") as f:
    _source = f.read()

def _denied(what):
    def deny(*args, **kwargs):
        raise PermissionError(what + " is disabled in the xverse eval sandbox")
    return deny

# No network from Python (the network namespace, where available, is the real wall).
import socket
for _name in ("socket", "create_connection", "create_server", "socketpair", "fromfd", "getaddrinfo"):
    setattr(socket, _name, _denied("network access"))

# No new processes: a fork bomb or a shell-out stops here (RLIMIT_NPROC and the PID namespace back this up).
import subprocess
subprocess.Popen = _denied("subprocess")
for _name in ("fork", "forkpty", "system", "popen", "execv", "execve", "execvp", "execvpe", "execl", "execle",
              "execlp", "execlpe", "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "posix_spawn",
              "posix_spawnp", "kill", "killpg", "setsid", "setpgid", "setuid", "setgid", "chroot", "putenv"):
    if hasattr(os, _name):
        setattr(os, _name, _denied("os." + _name))
for _mod in ("ctypes", "_ctypes", "multiprocessing", "_posixsubprocess"):
    sys.modules[_mod] = None

# Writes only inside WORK.
def _inside(path):
    if isinstance(path, int):
        return True
    try:
        real = os.path.realpath(os.fsdecode(os.fspath(path)))
    except (TypeError, ValueError):
        return False
    return real == WORK or real.startswith(WORK + os.sep)

_open = builtins.open
def _guarded_open(file, mode="r", *args, **kwargs):
    if any(c in mode for c in "wax+") and not _inside(file):
        raise PermissionError("writing outside the sandbox directory is disabled: " + str(file))
    return _open(file, mode, *args, **kwargs)
builtins.open = _guarded_open
io.open = _guarded_open

_os_open = os.open
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
def _guarded_os_open(path, flags, *args, **kwargs):
    if flags & _WRITE_FLAGS and not _inside(path):
        raise PermissionError("writing outside the sandbox directory is disabled: " + str(path))
    return _os_open(path, flags, *args, **kwargs)
os.open = _guarded_os_open

def _paths_inside(name):
    original = getattr(os, name)
    def guarded(*args, **kwargs):
        for a in args[:2]:
            if isinstance(a, (str, bytes, os.PathLike)) and not _inside(a):
                raise PermissionError("os." + name + " outside the sandbox directory is disabled: " + str(a))
        return original(*args, **kwargs)
    return guarded
for _name in ("remove", "unlink", "rmdir", "mkdir", "makedirs", "rename", "replace", "renames", "chmod", "chown",
              "lchown", "symlink", "link", "truncate", "removedirs", "mkfifo", "mknod", "utime"):
    if hasattr(os, _name):
        setattr(os, _name, _paths_inside(_name))
import shutil
shutil.rmtree = _denied("shutil.rmtree")

os.chdir(WORK)
sys.argv = ["program.py"]
_globals = {"__name__": "__main__", "__builtins__": builtins}
exec(compile(_source, "program.py", "exec"), _globals)
`;
