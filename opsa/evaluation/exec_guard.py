"""The child side of `code_exec`: run one program file under an audit hook, then print a token.

Run as `python -I -B exec_guard.py PROGRAM MEMORY_BYTES FILE_BYTES CPU_SECONDS` in the
program's own working directory, with the run's token as the first line of stdin. It imports
only the standard library. It first sets the resource limits (address space, file size, CPU
time, no core files, no new processes or threads), then installs the audit hook: the program
may read files but write only inside its working directory, and may not start processes, send
signals, open sockets or load C code through ctypes; any of these raises PermissionError in
the program. The token is printed only when the program ran to its end, so
an early `sys.exit(0)` or `os._exit(0)` in a solution never counts as passing; the program
cannot read the token, which stdin held and the guard consumed.
"""

import os
import resource
import sys

DENIED = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.kill",
        "os.killpg",
        "pty.spawn",
        "socket.__new__",
        "socket.connect",
        "socket.bind",
        "socket.getaddrinfo",
        "socket.sendto",
        "ctypes.dlopen",
        "ctypes.dlsym",
        "ctypes.cdata",
        "ctypes.call_function",
    }
)
# events whose leading arguments are paths that get changed: only inside the working directory
PATH_EVENTS = {
    "os.remove": 1,
    "os.rename": 2,
    "os.mkdir": 1,
    "os.rmdir": 1,
    "os.chmod": 1,
    "os.chown": 1,
    "os.link": 2,
    "os.symlink": 2,
    "os.truncate": 1,
    "os.utime": 1,
    "shutil.rmtree": 1,
}
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def install(root: str) -> None:
    """The audit hook that confines the rest of this interpreter's life to `root`."""
    realpath, fsdecode, sep = os.path.realpath, os.fsdecode, os.sep

    def inside(path: object) -> bool:
        if isinstance(path, int):  # an open descriptor, already checked when it was opened
            return True
        full = realpath(fsdecode(path))  # type: ignore[arg-type]
        return full == root or full.startswith(root + sep) or full == "/dev/null"

    def hook(event: str, args: tuple) -> None:
        if event in DENIED:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writes = (flags or 0) & WRITE_FLAGS or (mode and any(c in mode for c in "wax+"))
            if writes and path is not None and not inside(path):
                raise PermissionError(f"sandbox: writing {path!r} is not allowed")
        elif event in PATH_EVENTS:
            for path in args[: PATH_EVENTS[event]]:
                if path is not None and not inside(path):
                    raise PermissionError(f"sandbox: {event} on {path!r} is not allowed")

    sys.addaudithook(hook)


def limit(memory: int, file_size: int, cpu: int) -> None:
    """Hard limits, which the program cannot raise again."""
    for kind, value in (
        (resource.RLIMIT_AS, memory),
        (resource.RLIMIT_FSIZE, file_size),
        (resource.RLIMIT_CPU, cpu),
        (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NPROC, 0),
    ):
        resource.setrlimit(kind, (value, value))


def main() -> None:
    program, memory, file_size, cpu = sys.argv[1], *map(int, sys.argv[2:5])
    limit(memory, file_size, cpu)
    token = sys.stdin.readline().strip()
    with open(program, encoding="utf-8") as f:
        code = compile(f.read(), program, "exec")
    sys.argv = [program]
    install(os.path.realpath(os.getcwd()))
    exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
    sys.stdout.flush()
    print(token, flush=True)


if __name__ == "__main__":
    main()
